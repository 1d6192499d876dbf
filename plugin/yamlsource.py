"""Read a policy YAML file into plain data while remembering where each value came from.

The file is composed once with `yaml.compose` (``CSafeLoader`` when libyaml is there) and
the data is built from the node tree here, not by PyYAML's constructor, so that:

- every value and mapping key keeps its node, for ``file:line:column`` in messages
  (Home Assistant's ``find_annotation`` idea: follow the error's path through the nodes);
- a duplicate key is a problem naming both lines, not silently the last one;
- dates stay the strings that were written (``2026-02-30`` is then reported, not a crash);
- mapping keys are the text that was written (a ``no:`` key stays ``"no"``).

Scalars otherwise mean what YAML 1.1 says (``8:00`` is the integer 480, ``no`` is False);
policy validation tells the admin when that happened, using `Source.node`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Union

import yaml
from yaml.constructor import SafeConstructor

try:  # libyaml's parser is several times faster (pre-commit's yaml.py does the same)
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

__all__ = ["Path", "Problem", "Source", "YamlSyntaxError", "json_path", "load_yaml"]

#: A position inside a document: mapping keys and sequence indexes, from the root.
Path = tuple[Union[str, int], ...]

_TAG = "tag:yaml.org,2002:"
_scalars = SafeConstructor()


@dataclass(frozen=True)
class Problem:
    """Something wrong with the YAML itself, found while building the data."""

    path: Path
    line: int  # 1-based
    column: int  # 1-based
    message: str


class YamlSyntaxError(Exception):
    """The text is not YAML; ``line``/``column`` (1-based) are where the parser gave up."""

    def __init__(self, line: int, column: int, message: str) -> None:
        super().__init__(f"{line}:{column}: {message}")
        self.line = line
        self.column = column
        self.message = message


@dataclass
class Source:
    """One YAML document: its data, and the nodes every value and key came from."""

    data: Any
    #: The root node; ``None`` for an empty document.
    root: yaml.Node | None
    values: dict[Path, yaml.Node] = field(default_factory=dict)
    keys: dict[Path, yaml.Node] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    def node(self, path: Path) -> yaml.Node | None:
        """The node the value at ``path`` was read from, if that exact path exists."""
        return self.values.get(tuple(path))

    def position(self, path: Path, *, key: bool = False) -> tuple[int, int]:
        """1-based line and column of the value at ``path`` (of its key when ``key``).

        A path that does not exist (a missing key) falls back to its nearest existing parent.
        """
        path = tuple(path)
        if key and path in self.keys:
            return _position(self.keys[path])
        while path:
            if path in self.values:
                return _position(self.values[path])
            path = path[:-1]
        return _position(self.root) if self.root is not None else (1, 1)


def _position(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def json_path(path: Path) -> str:
    """``("plans", "pro", "first_response")`` -> ``$.plans.pro.first_response``."""
    out = ["$"]
    for part in path:
        if isinstance(part, int):
            out.append(f"[{part}]")
        elif part and all(c.isalnum() or c in "_-" for c in part):
            out.append(f".{part}")
        else:
            out.append("['" + part.replace("\\", "\\\\").replace("'", "\\'") + "']")
    return "".join(out)


def load_yaml(text: str) -> Source:
    """Parse one YAML document.

    :raises YamlSyntaxError: when the text is not YAML (or holds several documents).
    """
    try:
        root = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        message = error.problem or "not valid YAML"
        if error.context and error.context_mark is not None and error.context_mark is not mark:
            message += f" ({error.context} on line {error.context_mark.line + 1})"
        raise YamlSyntaxError(line, column, f"YAML syntax error: {message}") from None
    except yaml.YAMLError as error:  # e.g. a reader error on a control character
        raise YamlSyntaxError(1, 1, f"YAML syntax error: {error}") from None
    source = Source(data=None, root=root)
    if root is not None:
        source.data = _Builder(source).build(root, ())
    return source


class _Builder:
    def __init__(self, source: Source) -> None:
        self.source = source
        self.active: set[int] = set()  # ids of collection nodes being built (recursive aliases)

    def problem(self, path: Path, node: yaml.Node, message: str) -> None:
        line, column = _position(node)
        self.source.problems.append(Problem(path, line, column, message))

    def build(self, node: yaml.Node, path: Path) -> Any:
        self.source.values[path] = node
        if isinstance(node, yaml.ScalarNode):
            return self.scalar(node, path)
        if id(node) in self.active:
            self.problem(path, node, "an alias refers to the collection that contains it")
            return None
        self.active.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                return [self.build(item, path + (i,)) for i, item in enumerate(node.value)]
            return self.mapping(node, path)
        finally:
            self.active.discard(id(node))

    def scalar(self, node: yaml.ScalarNode, path: Path) -> Any:
        tag = node.tag
        if tag in (_TAG + "str", _TAG + "timestamp", _TAG + "binary"):
            return node.value  # dates stay exactly as written
        if tag == _TAG + "null":
            return None
        try:
            if tag == _TAG + "bool":
                return _scalars.construct_yaml_bool(node)
            if tag == _TAG + "int":
                return _scalars.construct_yaml_int(node)
            if tag == _TAG + "float":
                return _scalars.construct_yaml_float(node)
        except (ValueError, yaml.YAMLError):
            return node.value
        self.problem(path, node, f"unsupported YAML tag {tag}; policy files are plain YAML")
        return node.value

    def mapping(self, node: yaml.MappingNode, path: Path) -> dict[str, Any]:
        result: dict[str, Any] = {}
        first: dict[str, yaml.Node] = {}
        merges: list[tuple[yaml.Node, yaml.Node]] = []
        for key_node, value_node in node.value:
            if key_node.tag == _TAG + "merge":
                merges.append((key_node, value_node))
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                self.problem(path, key_node, "a mapping key must be a plain name, not a list or a mapping")
                continue
            key = key_node.value
            child = path + (key,)
            if key in first:
                self.problem(child, key_node, f'duplicate key "{key}" (first defined on line '
                                              f"{first[key].start_mark.line + 1})")
            else:
                first[key] = key_node
            self.source.keys[child] = key_node
            result[key] = self.build(value_node, child)
        # `<<: *defaults`: merged keys never override keys written in the mapping itself.
        for key_node, value_node in merges:
            sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
            for merged in sources:
                if not isinstance(merged, yaml.MappingNode):
                    self.problem(path, key_node, "<< must merge a mapping or a list of mappings")
                    continue
                for inner_key, inner_value in merged.value:
                    if isinstance(inner_key, yaml.ScalarNode) and inner_key.value not in result:
                        child = path + (inner_key.value,)
                        self.source.keys[child] = inner_key
                        result[inner_key.value] = self.build(inner_value, child)
        return result
