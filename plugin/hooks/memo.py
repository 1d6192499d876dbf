"""Answers that depend only on the policies and a small key, built once per policies.

A built-in's verdict is an immutable value; when its text depends on nothing but the
policies and a few inputs (a plan, a channel, a language), the engine need not format the
same sentences for every ticket. A cache belongs to one `Policies` object: a reload (a new
object) empties it; a cache that grows past its size starts again.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any, TypeVar

T = TypeVar("T")


class PolicyCache:
    """``get(policies, key, build, *args)``: ``build(*args)`` once per key for these policies.

    The arguments go to ``build`` instead of into a closure: a hit, the common case, then
    makes nothing.
    """

    __slots__ = ("_policies", "_items", "_size")

    def __init__(self, size: int = 4096) -> None:
        self._policies: Any = None
        self._items: dict[Hashable, Any] = {}
        self._size = size

    def get(self, policies: Any, key: Hashable, build: Callable[..., T], *args: Any) -> T:
        if policies is self._policies:
            value = self._items.get(key)
            if value is not None:
                return value  # type: ignore[no-any-return]
        return self._build(policies, key, build, args)

    def _build(self, policies: Any, key: Hashable, build: Callable[..., T], args: tuple[Any, ...]) -> T:
        if policies is not self._policies:
            self._policies, self._items = policies, {}
        items = self._items
        if len(items) >= self._size:
            items.clear()
        value = items[key] = build(*args)
        return value
