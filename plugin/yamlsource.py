"""Read a policy YAML file into plain data, remembering where each value came from; word schema errors.

The file is composed once with `yaml.compose` (``CSafeLoader`` when libyaml is there) and
the data is built from the node tree here, not by PyYAML's constructor, so that:

- every value and mapping key keeps its node, for ``file:line:column`` in messages
  (Home Assistant's ``find_annotation`` idea: follow the error's path through the nodes);
- a duplicate key is a problem naming both lines, not silently the last one;
- dates stay the strings that were written (``2026-02-30`` is then reported, not a crash);
- mapping keys are the text that was written (a ``no:`` key stays ``"no"``).

Scalars otherwise mean what YAML 1.1 says (``8:00`` is the integer 480, ``no`` is False;
``010`` is the octal 8, which is reported with a hint unless the schema already objects).
`schema_problems` validates a `Source` against a JSON Schema and words every error for an
admin, at its line, saying when one of those YAML readings is the cause.

Hostile input is refused before anything is built, by a first pass over the parser's
events (iterative, so it holds only the current path): nesting deeper than `MAX_DEPTH`,
more than `MAX_ALIASES` aliases, or more than `MAX_VALUES` values once aliases are
expanded ("billion laughs") each stop reading at once with a ``line:column`` error, in
time and memory proportional to the part of the file read. A control character such
as NUL is reported at its own line and column.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.constructor import SafeConstructor

try:  # libyaml's parser is several times faster (pre-commit's yaml.py does the same)
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

__all__ = ["Path", "Problem", "Source", "YamlSyntaxError", "did_you_mean", "expected", "json_path", "load_yaml",
           "schema_problems"]

#: A position inside a document: mapping keys and sequence indexes, from the root.
Path = tuple[str | int, ...]

_TAG = "tag:yaml.org,2002:"
_scalars = SafeConstructor()
_SEXAGESIMAL = re.compile(r"[-+]?[0-9][0-9_]*(:[0-5]?[0-9])+")
#: YAML 1.1 reads a plain integer with a leading zero as octal (``010`` is 8).
_OCTAL = re.compile(r"[-+]?0[0-7_]+")
#: What PyYAML's reader refuses (its ``Reader.NON_PRINTABLE``), found here to say where.
_NON_PRINTABLE = re.compile("[^\x09\x0A\x0D\x20-\x7E\x85\xA0-\uD7FF\uE000-\uFFFD\U00010000-\U0010FFFF]")

#: Deepest nesting of mappings and lists a policy file may have (the bundled ones reach 6).
MAX_DEPTH = 64
#: Most aliases (``*name``) in one file.
MAX_ALIASES = 200
#: Most values (scalars, mappings, lists) in one file, counting each alias as what it expands to.
MAX_VALUES = 100_000


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
    #: Plain integers written with a leading zero, which YAML 1.1 read as octal.
    octal: dict[Path, yaml.ScalarNode] = field(default_factory=dict)

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

    :raises YamlSyntaxError: when the text is not YAML (or holds several documents), or
        exceeds `MAX_DEPTH`, `MAX_ALIASES` or `MAX_VALUES`.
    """
    bad = _NON_PRINTABLE.search(text)
    if bad is not None:
        line = text.count("\n", 0, bad.start()) + 1
        column = bad.start() - (text.rfind("\n", 0, bad.start()) + 1) + 1
        raise YamlSyntaxError(line, column, f"YAML syntax error: the control character U+{ord(bad.group()):04X} is not "
                                            "allowed in YAML; remove it")
    try:
        _check_limits(text)
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


def _check_limits(text: str) -> None:
    """Walk the parser's events once; raise `YamlSyntaxError` at the first one past a limit.

    Each anchor's size (values, with the aliases inside it expanded) is kept, so an alias
    adds what it would expand to without expanding anything.
    """
    sizes: dict[str, int] = {}  # anchor -> values it stands for
    open_: list[tuple[str | None, int]] = []  # per open collection: its anchor, values before it began
    values = aliases = 0
    event: Any
    for event in yaml.parse(text, Loader=_Loader):
        kind = type(event)
        if kind is yaml.ScalarEvent:
            values += 1
            if event.anchor is not None:
                sizes[event.anchor] = 1
        elif kind is yaml.MappingStartEvent or kind is yaml.SequenceStartEvent:
            if len(open_) >= MAX_DEPTH:
                raise _limit(event, f"nested more than {MAX_DEPTH} levels deep; a policy file needs only a few")
            open_.append((event.anchor, values))
            values += 1
        elif kind is yaml.MappingEndEvent or kind is yaml.SequenceEndEvent:
            anchor, before = open_.pop()
            if anchor is not None:
                sizes[anchor] = values - before
        elif kind is yaml.AliasEvent:
            aliases += 1
            if aliases > MAX_ALIASES:
                raise _limit(event, f"more than {MAX_ALIASES} aliases (*name); write the values out or use fewer")
            values += sizes.get(event.anchor, 1)  # an unknown or recursive alias: composing reports it
        else:
            continue
        if values > MAX_VALUES:
            raise _limit(event, f"more than {MAX_VALUES:,} values once aliases are expanded; an alias that "
                                "refers to aliases over and over (a \"billion laughs\" file) is refused")


def _limit(event: yaml.Event, message: str) -> YamlSyntaxError:
    mark = event.start_mark
    line, column = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
    return YamlSyntaxError(line, column, f"refused: {message}")


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
            assert isinstance(node, yaml.MappingNode)  # compose makes scalars, sequences, mappings
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
                if not node.style and _OCTAL.fullmatch(node.value):
                    self.source.octal[path] = node
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


# --------------------------------------------------------------------------- schema errors, located and worded


def schema_problems(source: Source, validator: Any) -> list[Problem]:
    """Every error of ``validator`` (a jsonschema validator) on ``source.data``, as located problems.

    Messages come from the schema's own words where it has them: ``x-expected`` (what a
    value should be), ``x-expected-key`` (what a key should be), ``x-number-hint`` (what to
    do when YAML read a number).  For ``oneOf``/``anyOf`` only the best-fitting branch speaks.
    """
    problems: list[Problem] = []
    for error in validator.iter_errors(source.data):
        problems.extend(_explain(source, validator.schema, validator, error))
    spoken = {p.path for p in problems}
    for path, node in source.octal.items():  # octal the schema accepted: surely not what was meant
        if path not in spoken:
            text = node.value
            value = _scalars.construct_yaml_int(node)
            decimal = text.lstrip("+-").lstrip("0_").replace("_", "") or "0"
            problems.append(Problem(path, *_position(node), f"YAML 1.1 reads {text} as the octal number {value}; "
                                                            f"write {'-' if text.startswith('-') else ''}{decimal} "
                                                            f'(or "{text}" in quotes for a text)'))
    return problems


def _explain(source: Source, root: dict[str, Any], validator: Any, error: Any) -> Iterator[Problem]:
    """Turn one jsonschema error into messages an admin can act on."""
    path: Path = tuple(error.absolute_path)

    def problem(at: Path, message: str, *, key: bool = False) -> Problem:
        return Problem(at, *source.position(at, key=key), message)

    schema = error.schema if isinstance(error.schema, dict) else {}
    kind = error.validator
    if kind in ("oneOf", "anyOf") and error.context:
        branch = _best_branch(error)
        if branch is not None:
            for inner in branch:
                yield from _explain(source, root, validator, inner)
            return
        yield problem(path, _expected_got(source, path, error.instance, schema, validator))
    elif kind == "type":
        yield problem(path, _expected_got(source, path, error.instance, schema, validator))
    elif kind == "additionalProperties" and error.validator_value is False:
        allowed = list(schema.get("properties", {}))
        for key in error.instance:
            if key in allowed or any(re.search(p, key) for p in schema.get("patternProperties", {})):
                continue
            if "x-expected-key" in schema:
                message = f'unexpected key "{key}"; expected {schema["x-expected-key"]}'
            else:
                message = f'unknown key "{key}"{did_you_mean(key, allowed)}; ' + (
                    f"the keys allowed here are: {', '.join(allowed)}" if allowed else "no keys are allowed here"
                )
            yield problem(path + (key,), message, key=True)
    elif kind == "required":
        for key in error.validator_value:
            if isinstance(error.instance, dict) and key not in error.instance:
                what = expected(_resolve(root, schema.get("properties", {}).get(key, {})), default="")
                yield problem(path, f'missing required key "{key}"' + (f"; expected {what}" if what else ""))
    elif kind in ("pattern", "minLength", "const", "enum"):
        if kind == "pattern" or (kind == "minLength" and "x-expected" in schema):
            message = _expected_got(source, path, error.instance, schema, validator)
        elif kind == "minLength":
            message = "must not be empty"
        else:
            choices = [error.validator_value] if kind == "const" else list(error.validator_value)
            options = " or ".join(", ".join(_show(c) for c in choices).rsplit(", ", 1))
            message = f"expected {options}; got {_describe(error.instance)}"
        yield problem(path, message)
    elif kind == "minProperties":
        yield problem(path, f"must not be empty; expected {expected(schema)}")
    elif kind == "minimum":
        yield problem(path, f"expected at least {error.validator_value}; got {_describe(error.instance)}")
    elif kind == "maximum":
        yield problem(path, f"expected at most {error.validator_value}; got {_describe(error.instance)}")
    elif kind == "uniqueItems":
        seen: set[str] = set()
        for i, item in enumerate(error.instance):
            marker = json.dumps(item, sort_keys=True, default=str)
            if marker in seen:
                yield problem(path + (i,), f"{_show(item)} is listed twice")
            seen.add(marker)
    else:  # anything the schemas may grow later: jsonschema's own words
        yield problem(path, error.message)


def _best_branch(error: Any) -> list[Any] | None:
    """For ``oneOf``/``anyOf``: the errors of the branch that fits the value best.

    A branch fits when the value has the right kind (no type/const/enum mismatch at its
    root); among those, the one whose errors reach deepest (ansible-lint picks the deepest
    match too). ``None`` when no branch fits: the caller says what was expected instead.
    """
    branches: dict[Any, list[Any]] = {}
    for inner in error.context or ():
        branches.setdefault(inner.relative_schema_path[0], []).append(inner)

    def fits(errors: list[Any]) -> bool:
        return not any(not e.relative_path and e.validator in ("type", "const", "enum") for e in errors)

    fitting = [errors for errors in branches.values() if fits(errors)]
    if not fitting:
        return None
    return max(fitting, key=lambda errors: max(len(e.relative_path) for e in errors))


def _resolve(root: dict[str, Any], schema: Any) -> dict[str, Any]:
    """Follow local ``$ref``s (``#/$defs/...``) to the schema that carries the words."""
    while isinstance(schema, dict) and "x-expected" not in schema and str(schema.get("$ref", "")).startswith("#/"):
        target: Any = root
        for part in schema["$ref"][2:].split("/"):
            target = target.get(part, {}) if isinstance(target, dict) else {}
        schema = target
    return schema if isinstance(schema, dict) else {}


def expected(schema: Mapping[str, Any], default: str | None = None) -> str:
    """What a schema wants, in words: its ``x-expected``, else a description from its shape."""
    if "x-expected" in schema:
        return str(schema["x-expected"])
    if default is not None:
        return default
    if schema.get("required"):
        keys = list(schema["required"])
        return "a mapping with " + (f"{', '.join(keys[:-1])} and {keys[-1]}" if len(keys) > 1 else keys[0])
    kinds = schema.get("type", "a value")
    return " or ".join(_KIND.get(k, k) for k in ([kinds] if isinstance(kinds, str) else kinds))


_KIND = {"object": "a mapping", "array": "a list", "string": "a text", "integer": "a whole number",
         "number": "a number", "boolean": "true or false", "null": "null"}


def _expected_got(source: Source, path: Path, value: Any, schema: Mapping[str, Any], validator: Any) -> str:
    """``expected X; got Y``, or ``expected X; YAML read ... — put it in quotes`` for YAML traps.

    Quoting is suggested only when the quoted text would be valid there.
    """
    wanted = expected(schema)
    node = source.node(path)
    if isinstance(node, yaml.ScalarNode) and not node.style and not isinstance(value, str):
        text = node.value

        def valid(candidate: str) -> bool:
            return bool(validator.evolve(schema=schema).is_valid(candidate))

        if isinstance(value, int) and not isinstance(value, bool) and _SEXAGESIMAL.fullmatch(text):
            quoted = _padded_time(text)
            return (f"expected {wanted}; YAML read {text} as the number {value} (base 60) — put the time in "
                    f'quotes' + (f': "{quoted}"' if valid(quoted) else ""))
        if value is None and text == "":
            return f"expected {wanted}; got nothing (the value is empty)"
        if isinstance(value, (int, float)) and not isinstance(value, bool) and "x-number-hint" in schema:
            return f"expected {wanted}; got the number {text} — " + str(schema["x-number-hint"]).format(value=text)
        if value is not None and valid(text):
            return f'expected {wanted}; YAML read {text} as {_describe(value)} — put it in quotes: "{text}"'
    if isinstance(value, str) and _padded_time(value) != value and validator.evolve(schema=schema).is_valid(
        _padded_time(value)
    ):
        return f'expected {wanted}; got {_describe(value)} — write "{_padded_time(value)}"'
    return f"expected {wanted}; got {_describe(value)}"


def _padded_time(text: str) -> str:
    hours, _, rest = text.partition(":")
    return f"{hours.zfill(2)}:{rest}" if hours.isdigit() and len(hours) == 1 else text


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    if isinstance(value, str):
        return _show(value)
    return "a list" if isinstance(value, list) else "a mapping"


def _show(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False) if isinstance(value, str) else _describe(value)


def did_you_mean(name: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    return f' (did you mean "{close[0]}"?)' if close else ""
