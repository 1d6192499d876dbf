"""The stand-in's tables and the helpers every model family uses.

Records are plain dicts holding Zammad's *columns* (schema.py); non-column data
(role and group ids of users) sits under ``_extra``.  Every write runs under one
re-entrant lock, as a Rails request runs in one database transaction.
"""

from __future__ import annotations

import copy
import datetime as dt
import threading
import time
from typing import Any, Callable, Mapping

from integrations.zammad_standin.errors import NotFound, Unprocessable
from integrations.zammad_standin.schema import (
    ATTRIBUTE_OBJECTS,
    BELONGS_TO,
    COLUMNS,
    DEFAULT_ARTICLE_TYPES,
    DEFAULT_PRIORITIES,
    DEFAULT_ROLES,
    DEFAULT_SENDERS,
    DEFAULT_STATE_TYPES,
    DEFAULT_STATES,
    MODEL_NAMES,
    STATE_CATEGORIES,
)

#: Columns param_cleanup never takes from a request (can_cleanup_param.rb#filter_unused_params).
UNUSED_PARAMS = frozenset({"id", "action", "controller", "created_at", "updated_at", "created_by_id",
                           "updated_by_id", "created_by", "updated_by"})


class Clock:
    """Zammad timestamps (``2025-05-13T09:11:07.140Z``), strictly increasing; ``offset`` moves
    the stand-in's "now" (seconds) so tests can let business time pass."""

    def __init__(self) -> None:
        self._last = 0
        self._lock = threading.Lock()
        self.offset = 0.0

    def now_ms(self) -> int:
        with self._lock:
            ms = int((time.time() + self.offset) * 1000)
            if ms <= self._last:
                ms = self._last + 1
            self._last = ms
            return ms

    def now(self) -> str:
        return format_ms(self.now_ms())

    def travel_to(self, instant: dt.datetime | None) -> None:
        """Make "now" ``instant`` (``None``: real time again), going back in time if asked:
        tests create tickets in a past month this way."""
        with self._lock:
            self.offset = 0.0 if instant is None else instant.timestamp() - time.time()
            self._last = 0

    def now_dt(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(time.time() + self.offset, tz=dt.timezone.utc)


def format_ms(ms: int) -> str:
    moment = dt.datetime.fromtimestamp(ms / 1000, tz=dt.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def format_instant(moment: dt.datetime) -> str:
    """A datetime as Zammad renders a timestamp (UTC, milliseconds)."""
    return format_ms(int(round(moment.timestamp() * 1000)))


def parse_instant(text: Any) -> dt.datetime | None:
    if not text:
        return None
    if isinstance(text, dt.datetime):
        return text if text.tzinfo else text.replace(tzinfo=dt.timezone.utc)
    value = dt.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


class Table(dict):  # type: ignore[type-arg]
    """One table's rows by id. With ``group_by``, the rows of one value of that column are
    found without a scan (`rows_with`): a ticket's articles, a record's histories. Kept
    in step by ``table[id] = row`` and ``del table[id]``; the column is not changed in place."""

    def __init__(self, group_by: str | None = None) -> None:
        super().__init__()
        self.group_by = group_by
        self.groups: dict[Any, dict[int, dict[str, Any]]] = {}

    def __setitem__(self, rid: int, record: dict[str, Any]) -> None:
        if self.group_by is not None:
            old = self.get(rid)
            if old is not None:
                self.groups.get(old.get(self.group_by), {}).pop(rid, None)
            self.groups.setdefault(record.get(self.group_by), {})[rid] = record
        super().__setitem__(rid, record)

    def __delitem__(self, rid: int) -> None:
        record = self[rid]
        super().__delitem__(rid)
        if self.group_by is not None:
            self.groups.get(record.get(self.group_by), {}).pop(rid, None)

    def pop(self, rid: int, *default: Any) -> Any:
        if rid not in self:
            return super().pop(rid, *default)
        record = self[rid]
        del self[rid]
        return record

    def rows_with(self, value: Any) -> list[dict[str, Any]]:
        """The rows whose ``group_by`` column is ``value``, by id."""
        group = self.groups.get(value, {})
        return [group[k] for k in sorted(group)]


#: Tables read by one column's value on every rendering: grouped by it.
GROUPED = {"articles": "ticket_id", "histories": "o_id"}


class Store:
    """The tables of one stand-in Zammad, its settings, logs and fault injector."""

    def __init__(self) -> None:
        from integrations.zammad_standin.faults import Faults, RequestLog  # noqa: PLC0415

        self.lock = threading.RLock()
        self.clock = Clock()
        self.tables: dict[str, dict[int, dict[str, Any]]] = {name: Table(GROUPED.get(name)) for name in COLUMNS}
        self.next_ids: dict[str, int] = {name: 1 for name in COLUMNS}
        #: (object, o_id) -> tags in insertion order.
        self.tags: dict[tuple[str, int], list[str]] = {}
        #: every tag item ever created (Tag::Item; app/models/tag.rb#tag_allowed? looks here).
        self.tag_items: list[str] = []
        self.tokens: dict[str, int] = {}
        self.passwords: dict[int, str] = {}
        #: custom columns per table, added by execute_migrations.
        self.custom_columns: dict[str, dict[str, Any]] = {t: {} for t in ATTRIBUTE_OBJECTS.values()}
        # tag_new: db/seeds/settings.rb (default true); es_url: lib/search_index_backend.rb#enabled?
        self.settings: dict[str, Any] = {"system_id": "77", "ticket_number_min_size": 5, "fqdn": "localhost",
                                         "http_type": "http", "tag_new": True,
                                         "es_url": "http://elasticsearch.invalid:9200"}
        self.ticket_counter = 0
        self.faults = Faults()
        self.requests = RequestLog()
        #: Set by the webhook dispatcher: called with each transaction.
        self.on_transaction: Callable[[dict[str, Any]], None] | None = None
        self.transactions: list[dict[str, Any]] = []
        self._seed_defaults()

    # ----------------------------------------------------------------- basics

    def _seed_defaults(self) -> None:
        now = self.clock.now()
        for table, rows in (("roles", DEFAULT_ROLES), ("ticket_state_types", DEFAULT_STATE_TYPES),
                            ("ticket_priorities", DEFAULT_PRIORITIES), ("article_types", DEFAULT_ARTICLE_TYPES),
                            ("article_senders", DEFAULT_SENDERS), ("signatures", [(1, "default")])):
            for rid, name in rows:
                extra = {"default_create": True} if table == "ticket_priorities" and rid == 2 else {}
                self.insert(table, {"id": rid, "name": name, "created_at": now, "updated_at": now, **extra})
        for rid, name, type_id, ignore, extra in DEFAULT_STATES:
            self.insert("ticket_states", {"id": rid, "name": name, "state_type_id": type_id,
                                          "ignore_escalation": ignore, "created_at": now, "updated_at": now,
                                          **extra})
        self.insert("users", {"id": 1, "login": "-", "firstname": "-", "email": "", "active": False,
                              "department": "", "address": "", "created_at": now, "updated_at": now},
                    role_ids=[])

    @property
    def elasticsearch(self) -> bool:
        """SearchIndexBackend.enabled? (lib/search_index_backend.rb): the es_url setting is present."""
        return bool(str(self.settings.get("es_url") or "").strip())

    def columns(self, table: str) -> dict[str, Any]:
        cols = dict(COLUMNS[table])
        cols.update(self.custom_columns.get(table, {}))
        return cols

    def insert(self, table: str, values: Mapping[str, Any], **extra: Any) -> dict[str, Any]:
        """Store a record (defaults filled in); ``extra`` holds non-column data (role_ids...)."""
        with self.lock:
            record = copy.deepcopy(self.columns(table))
            for key, value in values.items():
                record[key] = copy.deepcopy(value)
            if record.get("id") is None:
                record["id"] = self.next_ids[table]
            rid = int(record["id"])
            record["id"] = rid
            self.next_ids[table] = max(self.next_ids[table], rid + 1)
            now = self.clock.now()
            if "created_at" in record and record["created_at"] is None:
                record["created_at"] = now
            if "updated_at" in record and record["updated_at"] is None:
                record["updated_at"] = record.get("created_at") or now
            record["_extra"] = copy.deepcopy(extra)
            self.tables[table][rid] = record
            return record

    def get(self, table: str, rid: Any) -> dict[str, Any]:
        try:
            key = int(rid)
        except (TypeError, ValueError):
            key = None
        record = self.tables[table].get(key) if key is not None else None
        if record is None:
            raise NotFound(f"Couldn't find {MODEL_NAMES[table]} with 'id'={rid}")
        return record

    def find(self, table: str, rid: Any) -> dict[str, Any] | None:
        try:
            return self.tables[table].get(int(rid))
        except (TypeError, ValueError):
            return None

    def all(self, table: str) -> list[dict[str, Any]]:
        return [self.tables[table][k] for k in sorted(self.tables[table])]

    def by_name(self, table: str, name: Any) -> dict[str, Any] | None:
        for record in self.all(table):
            if record.get("name") == name:
                return record
        return None

    def user_by(self, key: Any) -> dict[str, Any] | None:
        """A user by id, login or e-mail (case-insensitive)."""
        if key is None:
            return None
        text = str(key).strip()
        if text.isdigit() and int(text) in self.tables["users"]:
            return self.tables["users"][int(text)]
        low = text.lower()
        for user in self.all("users"):
            if str(user.get("login") or "").lower() == low:
                return user
        for user in self.all("users"):
            if user.get("email") and str(user["email"]).lower() == low:
                return user
        return None

    def name_of(self, table: str, rid: Any) -> Any:
        record = self.find(table, rid)
        if record is None:
            return None
        return record["login"] if table == "users" else record.get("name")

    # ----------------------------------------------------------------- permissions

    def roles_of(self, user: Mapping[str, Any]) -> list[str]:
        return [self.name_of("roles", r) for r in user["_extra"].get("role_ids", [])]

    def is_admin(self, user: Mapping[str, Any]) -> bool:
        return "Admin" in self.roles_of(user)

    def is_agent(self, user: Mapping[str, Any]) -> bool:
        """permissions?('ticket.agent'): the Agent role (the Admin role alone has admin.* only,
        but the stand-in's seeds give admins the Agent role as Zammad's do)."""
        roles = self.roles_of(user)
        return "Agent" in roles or "Admin" in roles

    def group_access(self, user: Mapping[str, Any], group_id: Any, access: str) -> bool:
        """User#group_access? (app/models/user/assets + concerns/has_groups.rb): 'full' grants every access."""
        granted = user["_extra"].get("group_ids", {}).get(str(group_id), [])
        return "full" in granted or access in granted

    def agent_access(self, user: Mapping[str, Any], ticket: Mapping[str, Any], access: str) -> bool:
        """TicketPolicy#agent_access? (app/policies/ticket_policy.rb): ticket.agent and group access."""
        return self.is_agent(user) and bool(user.get("active", True)) and \
            self.group_access(user, ticket["group_id"], access)

    def customer_access(self, user: Mapping[str, Any], ticket: Mapping[str, Any]) -> bool:
        """TicketPolicy#customer_access?: own ticket, or a shared organization's."""
        if ticket.get("customer_id") == user["id"]:
            return True
        org_id = ticket.get("organization_id")
        if org_id is None or org_id not in ([user.get("organization_id")] + user["_extra"].get("organization_ids", [])):
            return False
        org = self.find("organizations", org_id)
        return bool(org and org.get("shared"))

    def ticket_readable(self, user: Mapping[str, Any], ticket: Mapping[str, Any]) -> bool:
        """TicketPolicy#show? (access?('read')) and TicketPolicy::ReadScope."""
        return self.agent_access(user, ticket, "read") or self.customer_access(user, ticket)

    def state_type(self, state_id: Any) -> str | None:
        state = self.find("ticket_states", state_id)
        return self.name_of("ticket_state_types", state["state_type_id"]) if state else None

    def state_ids(self, category: str) -> set[int]:
        """Ticket::State.by_category (app/models/ticket/state.rb)."""
        names = STATE_CATEGORIES[category]
        return {s["id"] for s in self.all("ticket_states") if self.state_type(s["id"]) in names}

    # ----------------------------------------------------------------- params

    def lookup_names(self, table: str, params: dict[str, Any]) -> dict[str, Any]:
        """``association_name_to_id_convert`` (app/models/application_model/can_lookup_search_index_attributes
        / can_associations.rb): ``"group": "Users"`` -> ``group_id``."""
        out = dict(params)
        for column, (target, key) in BELONGS_TO.get(table, {}).items():
            if key not in out or isinstance(out[key], (dict, list)):
                continue
            value = out.pop(key)
            if value is None or value == "":
                continue
            if isinstance(value, int) or (isinstance(value, str) and value.isdigit() and target != "users"):
                record = self.find(target, value) or (self.by_name(target, value) if target != "users" else None)
            elif target == "users":
                record = self.user_by(value)
            else:
                record = self.by_name(target, value)
            if record is None:
                raise Unprocessable(f"No lookup value found for '{key}': {_inspect(value)}")
            out[column] = record["id"]
        for key in ("created_by", "updated_by"):
            if key in out and not isinstance(out[key], (dict, list)):
                out.pop(key)
        return out

    def cleanup(self, table: str, params: Mapping[str, Any], *, new: bool) -> dict[str, Any]:
        """``param_cleanup`` (app/models/application_model/can_cleanup_param.rb): only the model's
        columns are kept (anything else, e.g. a calendar's ``note``, is dropped silently); ids,
        timestamps and created_by/updated_by are never taken from the request; a referenced
        ``*_id`` that does not exist is an ArgumentError (422)."""
        cols = self.columns(table)
        clean: dict[str, Any] = {}
        for key, value in params.items():
            if key not in cols or key in UNUSED_PARAMS:
                continue
            clean[key] = value
        for column, (target, _key) in BELONGS_TO.get(table, {}).items():
            if column in clean and clean[column] not in (None, ""):
                if self.find(target, clean[column]) is None:
                    raise Unprocessable(f"Invalid value for param '{column}': {clean[column]!r}")
                clean[column] = int(clean[column])
        return clean

    def touch(self, record: dict[str, Any], user_id: int) -> None:
        """A saved update: updated_at now and updated_by the acting user
        (app/models/concerns/has_default_model_user_relations.rb fills updated_by_id on save)."""
        record["updated_at"] = self.clock.now()
        if "updated_by_id" in record:
            record["updated_by_id"] = user_id

    def articles_of(self, ticket_id: int) -> list[dict[str, Any]]:
        return self.rows_with("articles", ticket_id)

    def rows_with(self, table: str, value: Any) -> list[dict[str, Any]]:
        """The rows of a grouped table (`GROUPED`) with that value in its column, by id."""
        rows = self.tables[table]
        assert isinstance(rows, Table) and rows.group_by is not None, table
        return rows.rows_with(value)

    def tags_of(self, object_name: str, o_id: int) -> list[str]:
        return list(self.tags.get((object_name, int(o_id)), []))


def _inspect(value: Any) -> str:
    """Ruby's ``inspect`` of a scalar (strings in double quotes)."""
    return f'"{value}"' if isinstance(value, str) else repr(value)
