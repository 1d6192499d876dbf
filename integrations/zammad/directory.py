"""What the adapter looks up in Zammad and remembers for a while: users, customers' locales,
ticket states that pause escalation, article types and priorities.

Every lookup is cached with a time to live, misses too (a person who is no Zammad user is
not searched again on every event); nothing walks a whole collection per event.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable, Generic, Hashable, Mapping, TypeVar

from integrations.zammad.errors import ZammadError, ZammadNotFound
from integrations.zammad.resources import iter_all

log = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

#: Seconds a found user, a customer's locale or the list of states is trusted.
HIT_TTL = 600.0
#: Seconds a person who is not a Zammad user is not looked up again.
MISS_TTL = 300.0
#: Entries kept per cache (oldest dropped first).
MAX_ENTRIES = 20_000


class TimedCache(Generic[K, V]):
    """A small thread-safe map whose entries expire (hits and misses have their own TTL)."""

    def __init__(self, hit_ttl: float = HIT_TTL, miss_ttl: float = MISS_TTL, clock: Callable[[], float] = time.monotonic,
                 max_entries: int = MAX_ENTRIES) -> None:
        self.hit_ttl, self.miss_ttl, self.clock, self.max_entries = hit_ttl, miss_ttl, clock, max_entries
        self._items: dict[K, tuple[float, V | None]] = {}
        self._lock = threading.Lock()

    def get(self, key: K) -> tuple[bool, V | None]:
        """(known, value): ``known`` is False when never looked up or expired."""
        with self._lock:
            item = self._items.get(key)
            if item is None or item[0] < self.clock():
                return False, None
            return True, item[1]

    def put(self, key: K, value: V | None) -> V | None:
        ttl = self.hit_ttl if value is not None else self.miss_ttl
        with self._lock:
            if len(self._items) >= self.max_entries:
                self._items.pop(next(iter(self._items)))
            self._items[key] = (self.clock() + ttl, value)
        return value

    def forget(self, key: K) -> None:
        with self._lock:
            self._items.pop(key, None)


class Directory:
    """Cached lookups through one `ZammadClient`."""

    def __init__(self, client: Any, clock: Callable[[], float] = time.monotonic) -> None:
        self.client = client
        self.users: TimedCache[str, dict[str, Any]] = TimedCache(clock=clock)
        self.locales: TimedCache[int, str] = TimedCache(clock=clock)
        self._lists: TimedCache[str, Any] = TimedCache(clock=clock, miss_ttl=60.0)
        #: Article type id -> name (the channel), as payloads and expanded reads tell them.
        self._article_types: dict[int, str] = {}

    # ----------------------------------------------------------------- users

    def find_user(self, person: str | int) -> dict[str, Any] | None:
        """The Zammad user whose id, login or e-mail is ``person``, or ``None`` (both cached)."""
        key = str(person).strip().lower()
        known, user = self.users.get(key)
        if known:
            return user
        if key.isdigit():
            try:
                user = self.client.users.find(int(key))
            except ZammadNotFound:
                user = None
        else:
            # users/search is SQL LIKE on login/e-mail/names without Elasticsearch
            # (app/models/user/search.rb); keep only an exact login or e-mail.
            try:
                found = self.client.users.search_exact(key)
            except ZammadNotFound:
                found = []
            user = next((u for u in found if key in (str(u.get("login") or "").lower(),
                                                      str(u.get("email") or "").lower())), None)
        if user is None:
            log.info("%r is not a Zammad user (not looked up again for %.0f s)", key, self.users.miss_ttl)
        return self.users.put(key, user)

    def customer_locale(self, customer_id: int | None) -> str | None:
        """The customer's ``preferences.locale`` (cached: it is read once, not per event)."""
        if not customer_id:
            return None
        known, locale = self.locales.get(int(customer_id))
        if known:
            return locale
        try:
            record = self.client.users.find(int(customer_id))
        except ZammadNotFound:
            record = None
        preferences = (record or {}).get("preferences") or {}
        value = preferences.get("locale") if isinstance(preferences, Mapping) else None
        return self.locales.put(int(customer_id), str(value) if value else None)

    # ----------------------------------------------------------------- lists

    def _list(self, name: str, load: Callable[[], Any]) -> Any:
        known, value = self._lists.get(name)
        if known:
            return value
        try:
            value = load()
        except ZammadError as error:
            log.warning("cannot read %s from Zammad (%s); using defaults for a minute", name, error)
            value = None
        return self._lists.put(name, value)

    def pause_states(self) -> frozenset[str] | None:
        """Names of the ticket states whose ``ignore_escalation`` is set: Zammad's escalation
        clock stops in them (lib/escalation/ticket_biz_break.rb). ``None`` if unreadable."""
        flags = self._state_flags()
        return None if flags is None else frozenset(name for name, paused in flags.items() if paused)

    def ignore_escalation(self, state: str | None) -> bool | None:
        """The state's ``ignore_escalation`` as Zammad has it (read once, cached); ``None`` if unknown."""
        flags = self._state_flags()
        return None if flags is None or state not in flags else flags[state]

    def _state_flags(self) -> dict[str, bool] | None:
        return self._list("state_flags", lambda: {
            str(s.get("name")): bool(s.get("ignore_escalation")) for s in iter_all(self.client.ticket_states)})

    def article_type_name(self, type_id: Any) -> str | None:
        """The name of a ticket article type (the ticket's channel), ``None`` until learnt.

        Zammad's API has no list of article types (config/routes/ticket.rb), so the names
        are learnt from what Zammad sends anyway: a webhook's article (``type_id`` and
        ``type``), a ticket read with ``expand=true`` (``create_article_type_id`` and
        ``create_article_type``). There are a handful of types, and they never change.
        """
        try:
            return self._article_types.get(int(type_id))
        except (TypeError, ValueError):
            return None

    def learn_article_type(self, type_id: Any, name: Any) -> None:
        """Remember that article type ``type_id`` is called ``name``."""
        if isinstance(name, str) and name and len(self._article_types) < 1000:
            try:
                self._article_types[int(type_id)] = name
            except (TypeError, ValueError):
                pass

    def priority_ids(self) -> dict[str, int]:
        return self._list("priorities", lambda: {
            str(p["name"]): int(p["id"]) for p in iter_all(self.client.ticket_priorities)}) or {}
