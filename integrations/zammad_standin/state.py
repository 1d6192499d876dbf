"""In-memory Zammad: records, their JSON renderings, and the write operations.

Records are stored as plain dicts holding Zammad's *columns* (what
``attributes`` returns in Rails).  Three renderings mirror Zammad's:

- `State.attributes` -- the columns only (``render json: record``; ticket show/index);
- `State.with_ids`   -- plus association id lists (``attributes_with_association_ids``;
  most create/update/show answers);
- `State.with_names` -- plus, for every association whose id is set, the associated
  record's name (``attributes_with_association_names``; ``expand=true``).

Write operations raise `ApiError` subclasses that the WSGI app turns into Zammad's
error body ``{"error": ..., "error_human": ...}``.  Every write runs under one lock.
"""

from __future__ import annotations

import copy
import datetime as dt
import re
import threading
import time
import uuid
from typing import Any, Callable, Iterable, Mapping

# --------------------------------------------------------------------------- errors


class ApiError(Exception):
    """An error Zammad reports as JSON; ``human`` is ``error_human`` (None: key absent)."""

    status = 500

    def __init__(self, message: str, *, human: str | None | bool = True, headers: Mapping[str, str] | None = None):
        super().__init__(message)
        self.message = message
        self.human = message if human is True else (None if human is False else human)
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        data: dict[str, Any] = {"error": self.human if self.human else self.message}
        if self.human:
            data["error_human"] = self.human
        return data


class NotFound(ApiError):
    status = 404


class Unprocessable(ApiError):
    status = 422


class NotAuthorized(ApiError):  # Exceptions::NotAuthorized -> 401
    status = 401


class Forbidden(ApiError):  # Exceptions::Forbidden -> 403
    status = 403


class ServerError(ApiError):
    status = 500


def validation_failed(detail: str) -> Unprocessable:
    """ActiveRecord::RecordInvalid: Zammad's humanize_error keeps the text after
    ``Validation failed:`` up to the first comma as both ``error`` and ``error_human``."""
    human = detail.split(",")[0].strip()
    return Unprocessable(f"Validation failed: {detail}", human=human)


# --------------------------------------------------------------------------- time


class Clock:
    """Zammad timestamps (``2025-05-13T09:11:07.140Z``), strictly increasing."""

    def __init__(self) -> None:
        self._last = 0
        self._lock = threading.Lock()

    def now_ms(self) -> int:
        with self._lock:
            ms = int(time.time() * 1000)
            if ms <= self._last:
                ms = self._last + 1
            self._last = ms
            return ms

    def now(self) -> str:
        return format_ms(self.now_ms())


def format_ms(ms: int) -> str:
    moment = dt.datetime.fromtimestamp(ms / 1000, tz=dt.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


# --------------------------------------------------------------------------- schema

USER_COLUMNS: dict[str, Any] = {
    "id": None, "organization_id": None, "login": "", "firstname": "", "lastname": "", "email": "",
    "image": None, "image_source": None, "web": "", "phone": "", "fax": "", "mobile": "",
    "department": None, "street": "", "zip": "", "city": "", "country": "", "address": None,
    "vip": False, "verified": False, "active": True, "note": "", "last_login": None, "source": None,
    "login_failed": 0, "out_of_office": False, "out_of_office_start_at": None,
    "out_of_office_end_at": None, "out_of_office_replacement_id": None, "preferences": {},
    "updated_by_id": 1, "created_by_id": 1, "created_at": None, "updated_at": None,
}
ORGANIZATION_COLUMNS: dict[str, Any] = {
    "id": None, "name": "", "shared": True, "domain": "", "domain_assignment": False, "active": True,
    "vip": False, "note": "", "updated_by_id": 1, "created_by_id": 1, "created_at": None, "updated_at": None,
}
GROUP_COLUMNS: dict[str, Any] = {
    "id": None, "signature_id": None, "email_address_id": None, "name": "", "name_last": "",
    "parent_id": None, "assignment_timeout": None, "follow_up_possible": "yes", "reopen_time_in_days": None,
    "follow_up_assignment": True, "active": True, "shared_drafts": True, "note": None,
    "updated_by_id": 1, "created_by_id": 1, "created_at": None, "updated_at": None,
}
TICKET_COLUMNS: dict[str, Any] = {
    "id": None, "group_id": None, "priority_id": None, "state_id": None, "organization_id": None,
    "number": "", "title": "", "owner_id": 1, "customer_id": None, "note": None,
    "first_response_at": None, "first_response_escalation_at": None, "first_response_in_min": None,
    "first_response_diff_in_min": None, "close_at": None, "close_escalation_at": None, "close_in_min": None,
    "close_diff_in_min": None, "update_escalation_at": None, "update_in_min": None, "update_diff_in_min": None,
    "last_close_at": None, "last_contact_at": None, "last_contact_agent_at": None,
    "last_contact_customer_at": None, "last_owner_update_at": None, "create_article_type_id": None,
    "create_article_sender_id": None, "article_count": 0, "escalation_at": None, "pending_time": None,
    "type": None, "time_unit": None, "preferences": {}, "updated_by_id": 1, "created_by_id": 1,
    "created_at": None, "updated_at": None,
}
ARTICLE_COLUMNS: dict[str, Any] = {
    "id": None, "ticket_id": None, "type_id": None, "sender_id": None, "from": None, "to": None, "cc": None,
    "subject": None, "reply_to": None, "message_id": None, "message_id_md5": None, "in_reply_to": None,
    "content_type": "text/plain", "references": None, "body": "", "internal": False, "preferences": {},
    "updated_by_id": 1, "created_by_id": 1, "origin_by_id": None, "created_at": None, "updated_at": None,
}
MENTION_COLUMNS: dict[str, Any] = {
    "id": None, "mentionable_type": "Ticket", "mentionable_id": None, "user_id": None,
    "updated_by_id": 1, "created_by_id": 1, "created_at": None, "updated_at": None,
}
CALENDAR_COLUMNS: dict[str, Any] = {
    "id": None, "name": "", "timezone": "Europe/Berlin", "business_hours": {}, "default": False,
    "ical_url": None, "public_holidays": {}, "last_log": None, "last_sync": None, "note": None,
    "updated_by_id": 1, "created_by_id": 1, "created_at": None, "updated_at": None,
}
SLA_COLUMNS: dict[str, Any] = {
    "id": None, "calendar_id": None, "name": "", "first_response_time": None, "update_time": None,
    "response_time": None, "solution_time": None, "condition": {}, "updated_by_id": 1, "created_by_id": 1,
    "created_at": None, "updated_at": None,
}
TRIGGER_COLUMNS: dict[str, Any] = {
    "id": None, "name": "", "condition": {}, "perform": {}, "disable_notification": True, "note": None,
    "activator": "action", "execution_condition_mode": "selective", "localization": "system",
    "timezone": "system", "active": True, "updated_by_id": 1, "created_by_id": 1, "created_at": None,
    "updated_at": None,
}
WEBHOOK_COLUMNS: dict[str, Any] = {
    "id": None, "name": "", "endpoint": "", "signature_token": None, "ssl_verify": True,
    "basic_auth_username": None, "basic_auth_password": None, "bearer_token": None,
    "customized_payload": False, "custom_payload": None, "pre_defined_webhook_type": None,
    "preferences": {}, "note": None, "active": True, "updated_by_id": 1, "created_by_id": 1,
    "created_at": None, "updated_at": None,
}
ATTRIBUTE_COLUMNS: dict[str, Any] = {
    "id": None, "object_lookup_id": None, "name": "", "display": "", "data_type": "input",
    "data_option": {}, "data_option_new": {}, "editable": True, "active": True, "screens": {},
    "to_create": False, "to_migrate": False, "to_delete": False, "to_config": False, "position": 1550,
    "created_by_id": 1, "updated_by_id": 1, "created_at": None, "updated_at": None,
}
NAMED_COLUMNS: dict[str, Any] = {  # states, priorities, article types/senders, roles, signatures
    "id": None, "name": "", "note": None, "active": True, "updated_by_id": 1, "created_by_id": 1,
    "created_at": None, "updated_at": None,
}

COLUMNS: dict[str, dict[str, Any]] = {
    "users": USER_COLUMNS, "organizations": ORGANIZATION_COLUMNS, "groups": GROUP_COLUMNS,
    "tickets": TICKET_COLUMNS, "articles": ARTICLE_COLUMNS, "mentions": MENTION_COLUMNS,
    "calendars": CALENDAR_COLUMNS, "slas": SLA_COLUMNS, "triggers": TRIGGER_COLUMNS,
    "webhooks": WEBHOOK_COLUMNS, "attributes": ATTRIBUTE_COLUMNS, "ticket_states": NAMED_COLUMNS,
    "ticket_priorities": NAMED_COLUMNS, "article_types": NAMED_COLUMNS, "article_senders": NAMED_COLUMNS,
    "roles": NAMED_COLUMNS, "signatures": NAMED_COLUMNS, "email_addresses": NAMED_COLUMNS,
}
#: Rails class names, for "Couldn't find <Model> with 'id'=N".
MODEL_NAMES = {
    "users": "User", "organizations": "Organization", "groups": "Group", "tickets": "Ticket",
    "articles": "Ticket::Article", "mentions": "Mention", "calendars": "Calendar", "slas": "Sla",
    "triggers": "Trigger", "webhooks": "Webhook", "attributes": "ObjectManager::Attribute",
    "ticket_states": "Ticket::State", "ticket_priorities": "Ticket::Priority",
    "article_types": "Ticket::Article::Type", "article_senders": "Ticket::Article::Sender", "roles": "Role",
    "signatures": "Signature", "email_addresses": "EmailAddress",
}
#: belongs_to associations: column -> (table, expanded key).
BELONGS_TO: dict[str, dict[str, tuple[str, str]]] = {
    "users": {"organization_id": ("organizations", "organization"),
              "out_of_office_replacement_id": ("users", "out_of_office_replacement")},
    "organizations": {},
    "groups": {"signature_id": ("signatures", "signature"), "email_address_id": ("email_addresses", "email_address"),
               "parent_id": ("groups", "parent")},
    "tickets": {"group_id": ("groups", "group"), "organization_id": ("organizations", "organization"),
                "state_id": ("ticket_states", "state"), "priority_id": ("ticket_priorities", "priority"),
                "owner_id": ("users", "owner"), "customer_id": ("users", "customer"),
                "create_article_type_id": ("article_types", "create_article_type"),
                "create_article_sender_id": ("article_senders", "create_article_sender")},
    "articles": {"type_id": ("article_types", "type"), "sender_id": ("article_senders", "sender"),
                 "origin_by_id": ("users", "origin_by")},
    "slas": {"calendar_id": ("calendars", "calendar")},
}
#: Tables whose objects can carry custom attributes (ObjectManager objects).
ATTRIBUTE_OBJECTS = {"Ticket": "tickets", "User": "users", "Organization": "organizations", "Group": "groups"}
OBJECT_LOOKUP_IDS = {"Ticket": 2, "User": 1, "Organization": 3, "Group": 4, "TicketArticle": 5}
DATA_TYPES = {"input", "textarea", "select", "multiselect", "tree_select", "multi_tree_select", "boolean",
              "integer", "date", "datetime", "autocompletion_ajax", "autocompletion_ajax_customer_organization",
              "user_autocompletion"}
RESERVED_ATTRIBUTE_NAMES = {"id", "type", "action", "object", "tags", "article", "created_by", "updated_by",
                            "organization", "customer", "owner", "group", "state", "priority"}

DEFAULT_ROLES = [(1, "Admin"), (2, "Agent"), (3, "Customer")]
DEFAULT_STATES = [(1, "new"), (2, "open"), (3, "pending reminder"), (4, "closed"), (5, "merged"),
                  (6, "removed"), (7, "pending close")]
DEFAULT_PRIORITIES = [(1, "1 low"), (2, "2 normal"), (3, "3 high")]
DEFAULT_ARTICLE_TYPES = [(1, "email"), (2, "sms"), (3, "chat"), (4, "fax"), (5, "phone"), (6, "twitter status"),
                         (7, "twitter direct-message"), (8, "facebook feed post"), (9, "facebook feed comment"),
                         (10, "note"), (11, "web"), (12, "telegram personal-message"),
                         (13, "facebook direct-message")]
DEFAULT_SENDERS = [(1, "Agent"), (2, "Customer"), (3, "System")]

# --------------------------------------------------------------------------- the store


class State:
    """All records of one stand-in Zammad, plus its logs and fault injector."""

    def __init__(self) -> None:
        from integrations.zammad_standin.faults import Faults, RequestLog  # noqa: PLC0415

        self.lock = threading.RLock()
        self.clock = Clock()
        self.tables: dict[str, dict[int, dict[str, Any]]] = {name: {} for name in COLUMNS}
        self.next_ids: dict[str, int] = {name: 1 for name in COLUMNS}
        #: (object, o_id) -> tags in insertion order.
        self.tags: dict[tuple[str, int], list[str]] = {}
        #: API token -> user id.
        self.tokens: dict[str, int] = {}
        #: login -> password (basic auth).
        self.passwords: dict[int, str] = {}
        #: custom columns per table, added by execute_migrations.
        self.custom_columns: dict[str, dict[str, Any]] = {t: {} for t in ATTRIBUTE_OBJECTS.values()}
        self.settings: dict[str, Any] = {"system_id": "77", "ticket_number_min_size": 5,
                                         "fqdn": "localhost", "http_type": "http"}
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
        for table, rows in (("roles", DEFAULT_ROLES), ("ticket_states", DEFAULT_STATES),
                            ("ticket_priorities", DEFAULT_PRIORITIES), ("article_types", DEFAULT_ARTICLE_TYPES),
                            ("article_senders", DEFAULT_SENDERS), ("signatures", [(1, "default")])):
            for rid, name in rows:
                self.insert(table, {"id": rid, "name": name, "created_at": now, "updated_at": now})
        self.insert("users", {"id": 1, "login": "-", "firstname": "-", "email": "", "active": False,
                              "department": "", "address": "", "created_at": now, "updated_at": now},
                    role_ids=[])

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

    def roles_of(self, user: Mapping[str, Any]) -> list[str]:
        return [self.name_of("roles", r) for r in user["_extra"].get("role_ids", [])]

    def is_admin(self, user: Mapping[str, Any]) -> bool:
        return "Admin" in self.roles_of(user)

    def is_agent(self, user: Mapping[str, Any]) -> bool:
        roles = self.roles_of(user)
        return "Agent" in roles or "Admin" in roles

    # ----------------------------------------------------------------- renderings

    def attributes(self, table: str, record: Mapping[str, Any]) -> dict[str, Any]:
        out = {k: copy.deepcopy(v) for k, v in record.items() if k != "_extra" and not k.startswith("_")}
        return out

    def with_ids(self, table: str, record: Mapping[str, Any]) -> dict[str, Any]:
        out = self.attributes(table, record)
        extra = record["_extra"]
        if table == "users":
            out["role_ids"] = list(extra.get("role_ids", []))
            out["two_factor_preference_ids"] = []
            out["organization_ids"] = list(extra.get("organization_ids", []))
            out["authorization_ids"] = []
            out["overview_sorting_ids"] = []
            out["group_ids"] = copy.deepcopy(extra.get("group_ids", {}))
        elif table == "groups":
            out["user_ids"] = [u["id"] for u in self.all("users")
                               if str(record["id"]) in u["_extra"].get("group_ids", {})]
        elif table == "tickets":
            out["article_ids"] = [a["id"] for a in self.articles_of(record["id"])]
            out["ticket_time_accounting_ids"] = []
        elif table == "organizations":
            out["member_ids"] = [u["id"] for u in self.all("users") if u.get("organization_id") == record["id"]]
            out["secondary_member_ids"] = [u["id"] for u in self.all("users")
                                           if record["id"] in u["_extra"].get("organization_ids", [])]
        elif table == "articles":
            out["attachments"] = []
        elif table == "roles":
            out["user_ids"] = [u["id"] for u in self.all("users") if record["id"] in u["_extra"].get("role_ids", [])]
        return out

    def with_names(self, table: str, record: Mapping[str, Any]) -> dict[str, Any]:
        out = self.with_ids(table, record)
        if table == "users":
            out["roles"] = [self.name_of("roles", r) for r in out["role_ids"]]
            out["two_factor_preferences"] = []
            out["organizations"] = [self.name_of("organizations", o) for o in out["organization_ids"]]
            out["authorizations"] = []
            out["overview_sortings"] = []
        if table == "tickets":
            out["ticket_time_accounting"] = []
        for column, (target, key) in BELONGS_TO.get(table, {}).items():
            if table == "tickets" and column in ("state_id", "priority_id"):
                continue  # rendered after ticket_time_accounting, as Zammad does
            if out.get(column) is not None:
                name = self.name_of(target, out[column])
                if name is not None:
                    out[key] = name
        if table == "tickets":
            for column in ("state_id", "priority_id", "owner_id", "customer_id"):
                target, key = BELONGS_TO["tickets"][column]
                out.pop(key, None)
                if out.get(column) is not None:
                    out[key] = self.name_of(target, out[column])
        if table == "users":
            out["groups"] = {self.name_of("groups", g): perms for g, perms in out["group_ids"].items()
                             if self.find("groups", g)}
        if table == "groups":
            out["users"] = [self.name_of("users", u) for u in out["user_ids"]]
        if table == "organizations":
            out["members"] = [self.name_of("users", u) for u in out["member_ids"]]
            out["secondary_members"] = [self.name_of("users", u) for u in out["secondary_member_ids"]]
        for key in ("created_by", "updated_by"):
            if out.get(f"{key}_id") is not None:
                name = self.name_of("users", out[f"{key}_id"])
                if name is not None:
                    out[key] = name
        if table == "tickets":  # Zammad renders the article type/sender names last
            for key in ("create_article_type", "create_article_sender"):
                if key in out:
                    out[key] = out.pop(key)
        if table == "users":
            out.pop("password", None)
        return out

    def articles_of(self, ticket_id: int) -> list[dict[str, Any]]:
        return [a for a in self.all("articles") if a["ticket_id"] == ticket_id]

    def tags_of(self, object_name: str, o_id: int) -> list[str]:
        return list(self.tags.get((object_name, int(o_id)), []))

    # ----------------------------------------------------------------- param helpers

    def lookup_names(self, table: str, params: dict[str, Any]) -> dict[str, Any]:
        """Zammad's ``association_name_to_id_convert``: ``"group": "Users"`` -> ``group_id``."""
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
        """Zammad's ``param_cleanup``: keep known columns only (unknown keys are ignored),
        drop ids/timestamps, and check that referenced records exist."""
        cols = self.columns(table)
        clean: dict[str, Any] = {}
        for key, value in params.items():
            if key not in cols or key in ("id", "created_at", "updated_at", "created_by_id", "updated_by_id"):
                continue
            clean[key] = value
        for column, (target, _key) in BELONGS_TO.get(table, {}).items():
            if column in clean and clean[column] not in (None, ""):
                if self.find(target, clean[column]) is None:
                    raise Unprocessable(f"Invalid value for param '{column}': {clean[column]!r}")
                clean[column] = int(clean[column])
        return clean

    def touch(self, record: dict[str, Any], user_id: int) -> None:
        record["updated_at"] = self.clock.now()
        if "updated_by_id" in record:
            record["updated_by_id"] = user_id

    # ----------------------------------------------------------------- users / orgs / groups

    def create_user(self, params: Mapping[str, Any], actor: int) -> dict[str, Any]:
        with self.lock:
            params = self.lookup_names("users", dict(params))
            clean = self.cleanup("users", params, new=True)
            if not any(str(clean.get(k) or "").strip() for k in ("firstname", "lastname", "email", "phone", "mobile")):
                raise Unprocessable("At least one identifier (firstname, lastname, phone, mobile or email) "
                                    "for user is required.")
            email = str(clean.get("email") or "").strip().lower()
            clean["email"] = email
            if email and any(str(u.get("email") or "").lower() == email for u in self.all("users")):
                raise Unprocessable(f"Email address '{email}' is already used for another user.")
            login = str(params.get("login") or email or f"auto-{uuid.uuid4()}").strip().lower()
            if self.user_by(login) is not None and self.user_by(login).get("login") == login:
                raise validation_failed(f"Login '{login}' is already used")
            clean["login"] = login
            clean.setdefault("preferences", {"locale": "en-us"})
            if isinstance(clean["preferences"], dict):
                clean["preferences"].setdefault("locale", "en-us")
            clean["created_by_id"] = clean["updated_by_id"] = actor
            role_ids = self._role_ids(params) or [3]
            extra = {"role_ids": role_ids, "group_ids": self._group_ids(params) or {},
                     "organization_ids": list(params.get("organization_ids") or [])}
            user = self.insert("users", clean, **extra)
            if params.get("password"):
                self.passwords[user["id"]] = str(params["password"])
            return user

    def _role_ids(self, params: Mapping[str, Any]) -> list[int] | None:
        if params.get("role_ids") is not None:
            return [int(r) for r in params["role_ids"]]
        if params.get("roles") is not None:
            ids = []
            for name in params["roles"]:
                role = self.by_name("roles", name)
                if role is None:
                    raise Unprocessable(f"No lookup value found for 'roles': {name!r}")
                ids.append(role["id"])
            return ids
        return None

    def _group_ids(self, params: Mapping[str, Any]) -> dict[str, list[str]] | None:
        if isinstance(params.get("group_ids"), dict):
            return {str(k): list(v) for k, v in params["group_ids"].items()}
        if isinstance(params.get("group_ids"), list):
            return {str(k): ["full"] for k in params["group_ids"]}
        if isinstance(params.get("groups"), dict):
            out = {}
            for name, perms in params["groups"].items():
                group = self.by_name("groups", name)
                if group is None:
                    raise Unprocessable(f"No lookup value found for 'groups': {name!r}")
                out[str(group["id"])] = list(perms)
            return out
        return None

    def update_user(self, rid: Any, params: Mapping[str, Any], actor: int) -> dict[str, Any]:
        with self.lock:
            user = self.get("users", rid)
            params = self.lookup_names("users", dict(params))
            clean = self.cleanup("users", params, new=False)
            if "email" in clean:
                clean["email"] = str(clean["email"] or "").strip().lower()
            if "login" in clean:
                clean["login"] = str(clean["login"]).strip().lower()
            if "preferences" in clean and isinstance(clean["preferences"], dict):
                merged = dict(user.get("preferences") or {})
                merged.update(clean["preferences"])
                clean["preferences"] = merged
            user.update(copy.deepcopy(clean))
            roles = self._role_ids(params)
            if roles is not None:
                user["_extra"]["role_ids"] = roles
            groups = self._group_ids(params)
            if groups is not None:
                user["_extra"]["group_ids"] = groups
            if params.get("organization_ids") is not None:
                user["_extra"]["organization_ids"] = [int(o) for o in params["organization_ids"]]
            if params.get("password"):
                self.passwords[user["id"]] = str(params["password"])
            self.touch(user, actor)
            return user

    def delete_user(self, rid: Any) -> None:
        with self.lock:
            user = self.get("users", rid)
            if any(t["customer_id"] == user["id"] or t["owner_id"] == user["id"] for t in self.all("tickets")):
                raise Unprocessable("Can't delete, object has references.")
            del self.tables["users"][user["id"]]
            for mention in [m for m in self.all("mentions") if m["user_id"] == user["id"]]:
                del self.tables["mentions"][mention["id"]]

    def create_named(self, table: str, params: Mapping[str, Any], actor: int) -> dict[str, Any]:
        """Create an organization or group (name required and unique)."""
        with self.lock:
            params = self.lookup_names(table, dict(params))
            clean = self.cleanup(table, params, new=True)
            name = str(clean.get("name") or "").strip()
            if not name:
                raise validation_failed("Name can't be blank")
            if self.by_name(table, name) is not None:
                raise validation_failed("Name has already been taken")
            clean["name"] = name
            if table == "groups":
                clean["name_last"] = name.split("›")[-1].strip()
            clean["created_by_id"] = clean["updated_by_id"] = actor
            return self.insert(table, clean)

    def update_named(self, table: str, rid: Any, params: Mapping[str, Any], actor: int) -> dict[str, Any]:
        with self.lock:
            record = self.get(table, rid)
            params = self.lookup_names(table, dict(params))
            clean = self.cleanup(table, params, new=False)
            if "name" in clean:
                name = str(clean["name"] or "").strip()
                if not name:
                    raise validation_failed("Name can't be blank")
                other = self.by_name(table, name)
                if other is not None and other["id"] != record["id"]:
                    raise validation_failed("Name has already been taken")
                clean["name"] = name
                if table == "groups":
                    clean["name_last"] = name.split("›")[-1].strip()
            record.update(copy.deepcopy(clean))
            self.touch(record, actor)
            return record

    def delete_group(self, rid: Any) -> None:
        with self.lock:
            group = self.get("groups", rid)
            if any(t["group_id"] == group["id"] for t in self.all("tickets")):
                raise Unprocessable("Can't delete, object has references.")
            del self.tables["groups"][group["id"]]
            for user in self.all("users"):
                user["_extra"].get("group_ids", {}).pop(str(group["id"]), None)

    def delete_organization(self, rid: Any) -> None:
        with self.lock:
            org = self.get("organizations", rid)
            if any(t["organization_id"] == org["id"] for t in self.all("tickets")) or any(
                u["organization_id"] == org["id"] for u in self.all("users")
            ):
                raise Unprocessable("Can't delete, object has references.")
            del self.tables["organizations"][org["id"]]

    # ----------------------------------------------------------------- tickets

    def next_ticket_number(self) -> str:
        self.ticket_counter += 1
        system_id = str(self.settings.get("system_id", ""))
        counter = str(self.ticket_counter)
        size = int(self.settings.get("ticket_number_min_size", 5))
        return system_id + "0" * max(0, size - len(system_id) - len(counter)) + counter

    def create_ticket(self, params: Mapping[str, Any], actor: int) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """Ticket (and first article when ``article`` is given); runs a ``create`` transaction."""
        with self.lock:
            params = dict(params)
            article_params = params.pop("article", None)
            tags = params.pop("tags", None)
            mentions = params.pop("mentions", None)
            if isinstance(params.get("customer"), dict):
                customer_params = params.pop("customer")
                found = self.user_by(customer_params.get("id") or customer_params.get("email")
                                     or customer_params.get("login"))
                params["customer_id"] = (found or self.create_user(customer_params, actor))["id"]
            if isinstance(params.get("customer_id"), str) and params["customer_id"].startswith("guess:"):
                email = params["customer_id"][len("guess:"):]
                if not re.match(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", email):
                    raise Unprocessable(f"Invalid email '{email}' of customer", human=False)
                found = self.user_by(email)
                params["customer_id"] = (found or self.create_user({"email": email}, actor))["id"]
            params = self.lookup_names("tickets", params)
            clean = self.cleanup("tickets", params, new=True)
            actor_user = self.get("users", actor)
            if not self.is_agent(actor_user):
                for key in ("owner_id", "customer_id", "preferences"):
                    clean.pop(key, None)
                clean["customer_id"] = actor
            if not str(clean.get("title") or "").strip():
                raise validation_failed("Title can't be blank")
            if clean.get("group_id") is None:
                raise validation_failed("Group can't be blank")
            clean.setdefault("state_id", self.by_name("ticket_states", "new")["id"])
            clean.setdefault("priority_id", self.by_name("ticket_priorities", "2 normal")["id"])
            if clean.get("customer_id") is None:
                clean["customer_id"] = actor
            if clean.get("owner_id") is None:
                clean["owner_id"] = 1
            if "organization_id" not in clean:
                clean["organization_id"] = self.get("users", clean["customer_id"]).get("organization_id")
            clean["number"] = self.next_ticket_number()
            clean["created_by_id"] = clean["updated_by_id"] = actor
            ticket = self.insert("tickets", clean)
            if tags:
                for tag in (tags.split(",") if isinstance(tags, str) else tags):
                    if tag.strip() and tag.strip() not in self.tags.setdefault(("Ticket", ticket["id"]), []):
                        self.tags[("Ticket", ticket["id"])].append(tag.strip())
            for user_id in (mentions or []):
                self._add_mention(ticket["id"], int(user_id), actor)
            article = None
            if article_params:
                article = self._create_article(ticket, dict(article_params), actor)
            snapshot = copy.deepcopy(ticket)
        self._transaction("create", ticket, article, actor, changes=set(clean), before=None, after=snapshot)
        return ticket, article

    def update_ticket(self, rid: Any, params: Mapping[str, Any], actor: int) -> tuple[dict[str, Any], dict[str, Any] | None]:
        with self.lock:
            ticket = self.get("tickets", rid)
            before = copy.deepcopy(ticket)
            params = dict(params)
            article_params = params.pop("article", None)
            params = self.lookup_names("tickets", params)
            clean = self.cleanup("tickets", params, new=False)
            clean.pop("number", None)
            if not self.is_agent(self.get("users", actor)):
                for key in ("owner_id", "customer_id", "organization_id", "preferences"):
                    clean.pop(key, None)
            if "title" in clean and not str(clean["title"] or "").strip():
                raise validation_failed("Title can't be blank")
            if "group_id" in clean and clean["group_id"] in (None, ""):
                raise validation_failed("Group can't be blank")
            if "preferences" in clean and isinstance(clean["preferences"], dict):
                merged = dict(ticket.get("preferences") or {})
                merged.update(clean["preferences"])
                clean["preferences"] = merged
            if "customer_id" in clean and "organization_id" not in clean:
                clean["organization_id"] = self.get("users", clean["customer_id"]).get("organization_id")
            changed = {k for k, v in clean.items() if ticket.get(k) != v}
            ticket.update(copy.deepcopy(clean))
            if "owner_id" in changed:
                ticket["last_owner_update_at"] = self.clock.now()
            article = None
            if article_params:
                article = self._create_article(ticket, dict(article_params), actor)
            # Rails' update! saves (and stamps updated_by_id) even when nothing changed
            self.touch(ticket, actor)
            snapshot = copy.deepcopy(ticket)
        self._transaction("update", ticket, article, actor, changes=changed, before=before, after=snapshot)
        return ticket, article

    def delete_ticket(self, rid: Any) -> None:
        with self.lock:
            ticket = self.get("tickets", rid)
            del self.tables["tickets"][ticket["id"]]
            for article in self.articles_of(ticket["id"]):
                del self.tables["articles"][article["id"]]
            for mention in [m for m in self.all("mentions") if m["mentionable_id"] == ticket["id"]]:
                del self.tables["mentions"][mention["id"]]
            self.tags.pop(("Ticket", ticket["id"]), None)

    # ----------------------------------------------------------------- articles

    def _create_article(self, ticket: dict[str, Any], params: dict[str, Any], actor: int) -> dict[str, Any]:
        actor_user = self.get("users", actor)
        params.pop("ticket_id", None)
        if "type" in params and not isinstance(params["type"], dict):
            kind = self.by_name("article_types", params.pop("type"))
            if kind is None:
                raise Unprocessable("No lookup value found for 'type'")
            params["type_id"] = kind["id"]
        if "sender" in params and not isinstance(params["sender"], dict):
            sender = self.by_name("article_senders", params.pop("sender"))
            if sender is None:
                raise Unprocessable("No lookup value found for 'sender'")
            params["sender_id"] = sender["id"]
        params.pop("attachments", None)
        clean = self.cleanup("articles", params, new=True)
        clean.setdefault("type_id", self.by_name("article_types", "note")["id"])
        if clean.get("sender_id") is None:
            clean["sender_id"] = self.by_name("article_senders", "Agent" if self.is_agent(actor_user) else "Customer")["id"]
        if clean.get("body") is None:
            clean["body"] = ""
        if clean.get("from") is None:
            name = f"{actor_user.get('firstname') or ''} {actor_user.get('lastname') or ''}".strip()
            clean["from"] = name or actor_user.get("email") or actor_user.get("login")
        if isinstance(clean.get("internal"), str):
            clean["internal"] = clean["internal"].lower() == "true"
        clean["internal"] = bool(clean.get("internal") or False)
        clean["ticket_id"] = ticket["id"]
        clean["created_by_id"] = clean["updated_by_id"] = actor
        article = self.insert("articles", clean)
        now = article["created_at"]
        sender = self.name_of("article_senders", article["sender_id"])
        kind = self.name_of("article_types", article["type_id"])
        if ticket.get("create_article_type_id") is None:
            ticket["create_article_type_id"] = article["type_id"]
            ticket["create_article_sender_id"] = article["sender_id"]
        ticket["article_count"] = len(self.articles_of(ticket["id"]))
        if not article["internal"] and kind != "note":
            ticket["last_contact_at"] = now
            if sender == "Customer":
                ticket["last_contact_customer_at"] = now
            elif sender == "Agent":
                ticket["last_contact_agent_at"] = now
                # Zammad: the first public answer of an agent is the ticket's first response.
                if ticket.get("first_response_at") is None:
                    ticket["first_response_at"] = now
        return article

    def create_article(self, params: Mapping[str, Any], actor: int) -> dict[str, Any]:
        with self.lock:
            params = dict(params)
            if params.get("ticket_id") is None:
                raise NotFound("Couldn't find Ticket without an ID")
            ticket = self.get("tickets", params["ticket_id"])
            before = copy.deepcopy(ticket)
            article = self._create_article(ticket, params, actor)
            self.touch(ticket, actor)
            snapshot = copy.deepcopy(ticket)
        self._transaction("update", ticket, article, actor, changes={"article"}, before=before, after=snapshot)
        return article

    # ----------------------------------------------------------------- tags

    def tag_add(self, object_name: str, o_id: Any, item: str, actor: int) -> bool:
        return self._tag_change(object_name, o_id, item, actor, add=True)

    def tag_remove(self, object_name: str, o_id: Any, item: str, actor: int) -> bool:
        return self._tag_change(object_name, o_id, item, actor, add=False)

    def _tag_change(self, object_name: str, o_id: Any, item: str, actor: int, *, add: bool) -> bool:
        item = str(item or "").strip()
        if not object_name or o_id in (None, "") or not item:
            raise Unprocessable("Need object, o_id and item.")
        table = ATTRIBUTE_OBJECTS.get(object_name)
        with self.lock:
            record = self.get(table, o_id) if table else None
            tags = self.tags.setdefault((object_name, int(o_id)), [])
            present = item in tags
            if add and not present:
                tags.append(item)
            elif not add and present:
                tags.remove(item)
            else:
                return True  # idempotent: nothing changed, no transaction
            if table != "tickets" or record is None:
                return True
            before = copy.deepcopy(record)
            record["updated_at"] = self.clock.now()  # Tag touches its object (updated_by_id is kept)
            snapshot = copy.deepcopy(record)
        self._transaction("update", record, None, actor, changes={"tags"}, before=before, after=snapshot)
        return True

    # ----------------------------------------------------------------- mentions

    def _add_mention(self, ticket_id: int, user_id: int, actor: int) -> dict[str, Any]:
        for mention in self.all("mentions"):
            if mention["mentionable_id"] == ticket_id and mention["user_id"] == user_id:
                raise validation_failed("User has already been taken")
        return self.insert("mentions", {"mentionable_type": "Ticket", "mentionable_id": ticket_id,
                                        "user_id": user_id, "created_by_id": actor, "updated_by_id": actor})

    def add_mention(self, mentionable_type: Any, mentionable_id: Any, user_id: int) -> dict[str, Any]:
        with self.lock:
            if mentionable_type != "Ticket":
                raise ServerError("The parameter 'mentionable_type' is invalid.", human=False)
            ticket = self.get("tickets", mentionable_id)
            if not self.is_agent(self.get("users", user_id)):
                raise Forbidden("Not authorized")
            return self._add_mention(ticket["id"], user_id, user_id)

    def remove_mention(self, rid: Any, user_id: int) -> dict[str, Any]:
        with self.lock:
            mention = self.find("mentions", rid)
            if mention is None or mention["user_id"] != user_id:
                # Mention.find_by(user: current_user, id:).destroy on nil: NoMethodError -> 500
                raise ServerError("undefined method `destroy' for nil:NilClass", human=False)
            del self.tables["mentions"][mention["id"]]
            return mention

    # ----------------------------------------------------------------- object manager

    def add_attribute(self, params: Mapping[str, Any], actor: int) -> dict[str, Any]:
        with self.lock:
            object_name = params.get("object")
            name = str(params.get("name") or "")
            if object_name not in OBJECT_LOOKUP_IDS:
                raise Unprocessable(f"Invalid object '{object_name}'!")
            if self.attribute_by(object_name, name) is not None:
                raise Unprocessable("already exists")
            if not re.fullmatch(r"[a-z][a-z0-9_]*", name) or name in RESERVED_ATTRIBUTE_NAMES or name.endswith("_id"):
                raise Unprocessable(f"Name '{name}' is invalid or reserved")
            if name in COLUMNS.get(ATTRIBUTE_OBJECTS.get(object_name, ""), {}):
                raise Unprocessable(f"{name} is a reserved word")
            data_type = params.get("data_type")
            if data_type not in DATA_TYPES:
                raise Unprocessable(f"Invalid data_type param '{data_type}'")
            values = {
                "object_lookup_id": OBJECT_LOOKUP_IDS[object_name], "name": name,
                "display": params.get("display") or name, "data_type": data_type,
                "data_option": _data_option(params), "active": params.get("active", True),
                "screens": params.get("screens") or {}, "position": params.get("position", 1550),
                "editable": True, "to_create": True, "to_migrate": True,
                "created_by_id": actor, "updated_by_id": actor,
            }
            return self.insert("attributes", values)

    def update_attribute(self, rid: Any, params: Mapping[str, Any], actor: int) -> dict[str, Any]:
        with self.lock:
            record = self.get("attributes", rid)
            object_name = params.get("object") or self.attribute_object(record)
            if self.attribute_by(object_name, params.get("name") or record["name"]) is None:
                raise Unprocessable("does not exist")
            if "data_type" in params and params["data_type"] not in DATA_TYPES:
                raise Unprocessable(f"Invalid data_type param '{params['data_type']}'")
            for key in ("display", "active", "screens", "position", "data_type"):
                if key in params:
                    record[key] = copy.deepcopy(params[key])
            if "data_option" in params:
                record["data_option_new"] = _data_option(params)
                record["to_config"] = True
                record["to_migrate"] = True
            self.touch(record, actor)
            return record

    def remove_attribute(self, rid: Any, actor: int) -> None:
        with self.lock:
            record = self.get("attributes", rid)
            if record["to_create"]:
                del self.tables["attributes"][record["id"]]
                return
            record["to_delete"] = True
            record["to_migrate"] = True
            self.touch(record, actor)

    def execute_migrations(self) -> None:
        """Apply pending attribute changes: add/remove custom columns (existing rows get null)."""
        with self.lock:
            for record in self.all("attributes"):
                table = ATTRIBUTE_OBJECTS.get(self.attribute_object(record))
                if record["to_delete"]:
                    del self.tables["attributes"][record["id"]]
                    if table:
                        self.custom_columns[table].pop(record["name"], None)
                        for row in self.tables[table].values():
                            row.pop(record["name"], None)
                    continue
                if record["to_config"]:
                    record["data_option"] = record["data_option_new"] or record["data_option"]
                    record["data_option_new"] = {}
                if record["to_create"] and table:
                    self.custom_columns[table][record["name"]] = None
                    for row in self.tables[table].values():
                        row.setdefault(record["name"], None)
                record["to_create"] = record["to_migrate"] = record["to_config"] = False

    def discard_attribute_changes(self) -> None:
        with self.lock:
            for record in self.all("attributes"):
                if record["to_create"]:
                    del self.tables["attributes"][record["id"]]
                else:
                    record.update(to_delete=False, to_config=False, to_migrate=False, data_option_new={})

    def attribute_object(self, record: Mapping[str, Any]) -> str:
        return next((k for k, v in OBJECT_LOOKUP_IDS.items() if v == record["object_lookup_id"]), "")

    def attribute_by(self, object_name: Any, name: Any) -> dict[str, Any] | None:
        lookup = OBJECT_LOOKUP_IDS.get(object_name)
        for record in self.all("attributes"):
            if record["object_lookup_id"] == lookup and record["name"] == name:
                return record
        return None

    def attribute_full(self, record: Mapping[str, Any]) -> dict[str, Any]:
        out = self.with_ids("attributes", record)
        out["object"] = self.attribute_object(record)
        return out

    # ----------------------------------------------------------------- generic admin objects

    def create_generic(self, table: str, params: Mapping[str, Any], actor: int) -> dict[str, Any]:
        with self.lock:
            params = self.lookup_names(table, dict(params))
            clean = self.cleanup(table, params, new=True)
            _validate_generic(self, table, clean, None)
            clean["created_by_id"] = clean["updated_by_id"] = actor
            return self.insert(table, clean)

    def update_generic(self, table: str, rid: Any, params: Mapping[str, Any], actor: int) -> dict[str, Any]:
        with self.lock:
            record = self.get(table, rid)
            params = self.lookup_names(table, dict(params))
            clean = self.cleanup(table, params, new=False)
            _validate_generic(self, table, clean, record)
            record.update(copy.deepcopy(clean))
            self.touch(record, actor)
            return record

    def delete_generic(self, table: str, rid: Any) -> None:
        with self.lock:
            record = self.get(table, rid)
            if table == "calendars" and any(s["calendar_id"] == record["id"] for s in self.all("slas")):
                raise Unprocessable("Can't delete, object has references.")
            del self.tables[table][record["id"]]

    # ----------------------------------------------------------------- transactions

    def _transaction(self, action: str, ticket: Mapping[str, Any], article: Mapping[str, Any] | None,
                     actor: int, *, changes: Iterable[str], before: Mapping[str, Any] | None,
                     after: Mapping[str, Any]) -> None:
        event = {"object": "Ticket", "type": action, "ticket_id": ticket["id"],
                 "article_id": article["id"] if article else None, "user_id": actor,
                 "changes": set(changes), "before": before, "after": after,
                 "tags": self.tags_of("Ticket", ticket["id"])}
        self.transactions.append(event)
        if self.on_transaction is not None:
            self.on_transaction(event)


def _inspect(value: Any) -> str:
    """Ruby's ``inspect`` of a scalar (strings in double quotes)."""
    return f'"{value}"' if isinstance(value, str) else repr(value)


def _data_option(params: Mapping[str, Any]) -> dict[str, Any]:
    option = copy.deepcopy(params.get("data_option") or {})
    data_type = params.get("data_type") or ""
    if not isinstance(option, dict):
        option = {}
    if "default" not in option:
        option["default"] = "" if data_type in ("input", "select", "tree_select") else None
    if option.get("null") is None:
        option["null"] = True
    if not isinstance(option.get("options"), (dict, list)):
        option["options"] = {}
    if not isinstance(option.get("relation"), str):
        option["relation"] = ""
    return option


def _validate_generic(state: State, table: str, clean: dict[str, Any], record: Mapping[str, Any] | None) -> None:
    merged = dict(state.columns(table))
    merged.update(record or {})
    merged.update(clean)
    if not str(merged.get("name") or "").strip():
        raise validation_failed("Name can't be blank")
    other = state.by_name(table, merged["name"])
    if other is not None and (record is None or other["id"] != record["id"]):
        raise validation_failed("Name has already been taken")
    if table == "webhooks":
        if not re.match(r"^https?://", str(merged.get("endpoint") or "")):
            raise Unprocessable("Invalid endpoint (no http/https)!")
    if table == "slas":
        if merged.get("calendar_id") in (None, ""):
            raise validation_failed("Calendar can't be blank")
        for key in ("first_response_time", "update_time", "response_time", "solution_time"):
            if merged.get(key) not in (None, "") and not str(merged[key]).lstrip("-").isdigit():
                raise validation_failed(f"{key} is not a number")
    if table == "triggers":
        if not isinstance(merged.get("condition"), dict) or not merged["condition"]:
            raise validation_failed("Condition can't be blank")
        if not isinstance(merged.get("perform"), dict) or not merged["perform"]:
            raise validation_failed("Perform can't be blank")
        if merged.get("activator") not in ("action", "time"):
            raise Unprocessable(f"Invalid activator '{merged.get('activator')}'")
        if merged.get("execution_condition_mode") not in ("selective", "always"):
            raise Unprocessable(f"Invalid execution_condition_mode '{merged.get('execution_condition_mode')}'")
    if table == "calendars" and merged.get("timezone"):
        try:
            from zoneinfo import ZoneInfo  # noqa: PLC0415

            ZoneInfo(str(merged["timezone"]))
        except Exception:  # noqa: BLE001
            raise validation_failed(f"Timezone {merged['timezone']} is invalid") from None
