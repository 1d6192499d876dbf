"""Values in a sync plan: how Zammad's records are compared with what the policies want,
how references between wanted objects resolve, and how values are shown (secrets hidden).
Pure: no HTTP."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Mapping

from integrations.zammad.sync_objects import Ref

# --------------------------------------------------------------------------- values

#: Fields whose values are never printed.
SECRET_FIELDS = frozenset({"signature_token"})


def show(value: Any) -> str:
    """A value as the plan prints it (compact JSON; references by name)."""
    if isinstance(value, Ref):
        return str(value)
    return json.dumps(_plain(value), separators=(",", ":"), ensure_ascii=False, default=str)


def _plain(value: Any) -> Any:
    if isinstance(value, Ref):
        return str(value)
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _hidden(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: "(hidden)" if k in SECRET_FIELDS else v for k, v in value.items()}
    return value


def _blank(value: Any) -> bool:
    return value is None or value == ""


def _same_scalar(current: Any, wanted: Any) -> bool:
    if _blank(current) and _blank(wanted):
        return True
    if isinstance(wanted, bool) or isinstance(current, bool):
        return current is wanted or (str(current).lower() == str(wanted).lower())
    if isinstance(wanted, int) and isinstance(current, (int, str)) and str(current).lstrip("-").isdigit():
        return int(current) == wanted
    return current == wanted


@dataclass(frozen=True)
class Change:
    """One field that differs: ``path`` (dotted), what Zammad has, what the policies want."""

    path: str
    old: Any
    new: Any

    def __str__(self) -> str:
        if self.path in SECRET_FIELDS:
            return f"{self.path} (hidden) -> (hidden, from the environment)"
        return f"{self.path} {show(self.old)} -> {show(self.new)}"


def diff(current: Any, wanted: Any, path: str = "", *, loose: bool = False) -> list[Change]:
    """The differences of ``current`` from ``wanted``.

    Mappings are compared key by key (keys only in ``current`` count unless ``loose``);
    lists and scalars as a whole.  ``None`` equals ``""``; ``"5"`` equals ``5``.
    """
    if isinstance(wanted, Mapping):
        if not isinstance(current, Mapping):
            return [] if (not wanted and _blank(current)) else [Change(path, current, wanted)]
        changes: list[Change] = []
        keys = list(wanted) + ([] if loose else [k for k in current if k not in wanted])
        for key in keys:
            sub = f"{path}.{key}" if path else str(key)
            changes += diff(current.get(key), wanted.get(key), sub)
        return changes
    if isinstance(wanted, (list, tuple)):
        if not isinstance(current, (list, tuple)) or len(current) != len(wanted) or any(
                diff(c, w) for c, w in zip(current, wanted)):
            return [] if (not wanted and _blank(current)) else [Change(path, current, wanted)]
        return []
    if isinstance(wanted, Ref):
        return [Change(path, current, wanted)]  # resolved refs are ints by now
    return [] if _same_scalar(current, wanted) else [Change(path, current, wanted)]


def resolve(value: Any, ids: Mapping[tuple[str, str], int]) -> Any:
    """``value`` with every `Ref` whose object exists replaced by its id."""
    if isinstance(value, Ref):
        return ids.get((value.kind, value.name), value)
    if isinstance(value, Mapping):
        return {k: resolve(v, ids) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, ids) for v in value]
    return value


def _unresolved(value: Any) -> list[Ref]:
    if isinstance(value, Ref):
        return [value]
    if isinstance(value, Mapping):
        return [r for v in value.values() for r in _unresolved(v)]
    if isinstance(value, list):
        return [r for v in value for r in _unresolved(v)]
    return []


