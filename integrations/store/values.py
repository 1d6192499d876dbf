"""What the store refuses to hold, the same on SQLite and PostgreSQL.

PostgreSQL cannot store a NUL character in ``TEXT`` or ``JSONB``, nor a lone surrogate
(not valid Unicode), nor NaN/Infinity in ``JSONB``; SQLite would keep some of them and
hand them back. Either way such a value is the caller's mistake and retrying cannot
help, so both stores refuse it up front with :class:`StoreValueError` (HTTP 422), never
with a database error that looks transient (503, retried for ever). Error texts the
store keeps for diagnosis (``last_error``) are made storable instead of refused.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from integrations.store.records import StoreValueError

#: The largest integer both stores hold (PostgreSQL BIGINT, SQLite INTEGER).
MAX_INT = 2**63 - 1
#: How deep JSON data the store accepts may nest.
MAX_JSON_DEPTH = 64


def text_problem(value: str) -> str | None:
    """Why ``value`` cannot be stored as text, or ``None`` if it can."""
    if "\x00" in value:
        return "contains a NUL character (\\u0000), which the store cannot hold"
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "contains a lone surrogate (not valid Unicode)"
    return None


def check_text(value: str, field: str) -> str:
    """``value`` if the store can hold it as text, else :class:`StoreValueError`."""
    if not isinstance(value, str):
        raise StoreValueError(field, f"expected text, got {type(value).__name__}")
    problem = text_problem(value)
    if problem is not None:
        raise StoreValueError(field, problem)
    return value


def check_optional_text(value: str | None, field: str) -> str | None:
    return None if value is None else check_text(value, field)


def check_json(value: Any, field: str) -> Any:
    """``value`` if the store can hold it as JSON (strings, finite numbers, integers in
    range, lists, objects with text keys, nested at most :data:`MAX_JSON_DEPTH`)."""
    stack: list[tuple[Any, str, int]] = [(value, field, 0)]
    while stack:
        item, path, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise StoreValueError(path, f"nested deeper than {MAX_JSON_DEPTH} levels")
        if isinstance(item, str):
            problem = text_problem(item)
            if problem is not None:
                raise StoreValueError(path, problem)
        elif isinstance(item, bool) or item is None:
            continue
        elif isinstance(item, int):
            if not -MAX_INT - 1 <= item <= MAX_INT:
                raise StoreValueError(path, "integer out of range")
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise StoreValueError(path, "not a finite number")
        elif isinstance(item, Mapping):
            for key, child in item.items():
                if not isinstance(key, str):
                    raise StoreValueError(path, "object keys must be text")
                problem = text_problem(key)
                if problem is not None:
                    raise StoreValueError(path, f"a key {problem}")
                stack.append((child, f"{path}.{key[:40]}", depth + 1))
        elif isinstance(item, Sequence) and not isinstance(item, (bytes, bytearray)):
            for index, child in enumerate(item):
                stack.append((child, f"{path}[{index}]", depth + 1))
        else:
            raise StoreValueError(path, f"{type(item).__name__} is not JSON")
    return value


def check_params(params: Sequence[Any]) -> None:
    """The last line of defence in every statement: text and integers both stores hold."""
    for index, value in enumerate(params):
        if isinstance(value, str):
            if "\x00" in value or not value.isascii():
                problem = text_problem(value)
                if problem is not None:
                    raise StoreValueError(f"value {index + 1} of a statement", problem)
        elif isinstance(value, int) and not isinstance(value, bool):
            if not -MAX_INT - 1 <= value <= MAX_INT:
                raise StoreValueError(f"value {index + 1} of a statement", "integer out of range")


def storable_error(text: str, limit: int = 2000) -> str:
    """An error message made storable: NULs and lone surrogates replaced, cut to ``limit``."""
    text = text[:limit].replace("\x00", "\ufffd")
    if not text.isascii():
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text
