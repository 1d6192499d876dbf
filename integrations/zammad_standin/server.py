"""Seeding, and running the stand-in with waitress (in a background thread for tests).

::

    from integrations.zammad_standin import running_standin

    with running_standin() as zammad:                 # the bundled seed.yaml desk
        requests.get(zammad.url + "/api/v1/users/me",
                     headers={"Authorization": f"Token token={zammad.admin_token}"})
        zammad.state.faults.fail_next(1, status=503)
        zammad.wait_for_deliveries()

``seed`` may be None (the bundled ``seed.yaml``), ``"empty"`` (only Zammad's built-in
records plus an admin), a path to a YAML/JSON file, or a dict of the same shape.
"""

from __future__ import annotations

import contextlib
import copy
import json
import threading
from pathlib import Path
from typing import Any, Iterator, Mapping

import yaml

from integrations.zammad_standin.app import ZammadApp
from integrations.zammad_standin.state import (
    ATTRIBUTE_OBJECTS,
    COLUMNS,
    State,
)
from integrations.zammad_standin.webhooks import Delivery, WebhookDispatcher

DEFAULT_SEED = Path(__file__).with_name("seed.yaml")
DEFAULT_ADMIN_TOKEN = "standin-admin-token"

# --------------------------------------------------------------------------- seeding


def load_seed_data(seed: Any) -> dict[str, Any]:
    if seed is None:
        seed = DEFAULT_SEED
    if isinstance(seed, Mapping):
        return copy.deepcopy(dict(seed))
    if seed == "empty":
        return {}
    path = Path(seed)
    text = path.read_text(encoding="utf-8")
    data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    return dict(data or {})


def apply_seed(state: State, data: Mapping[str, Any]) -> str | None:
    """Fill ``state`` from seed data; returns the admin token the seed names (if any).

    Records may carry explicit ``id``s and timestamps (e.g. copied from a recording);
    names may stand for ids (``group: Users``, ``customer: nicole@example.com``,
    ``organization: Acme``, ``roles: [Admin, Agent]``, ``groups: {Users: [full]}``).
    """
    state.settings.update(data.get("settings") or {})
    admin_token = data.get("admin_token")
    for record in data.get("signatures") or []:
        state.insert("signatures", record)
    # Attributes first, so that seeded records can carry their custom columns.
    for record in data.get("attributes") or []:
        rec = dict(record)
        migrated = rec.pop("migrated", True)
        state.add_attribute(rec, 1)
        if migrated:
            state.execute_migrations()
    for record in data.get("organizations") or []:
        rec = dict(record)
        state.insert("organizations", _columns(state, "organizations", rec))
    for record in data.get("groups") or []:
        rec = dict(record)
        rec.setdefault("name_last", str(rec.get("name", "")).split("›")[-1].strip())
        if rec.get("signature") and not rec.get("signature_id"):
            sig = state.by_name("signatures", rec["signature"])
            rec["signature_id"] = sig["id"] if sig else None
        state.insert("groups", _columns(state, "groups", rec))
    for record in data.get("users") or []:
        rec = dict(record)
        if rec.get("id") == 1 or rec.get("login") == "-":
            state.tables["users"].get(1, {}).update(_columns(state, "users", rec))
            continue
        if "organization" in rec and not rec.get("organization_id"):
            org = state.by_name("organizations", rec.pop("organization"))
            rec["organization_id"] = org["id"] if org else None
        rec.setdefault("email", "")
        rec["login"] = str(rec.get("login") or rec.get("email") or f"user{len(state.tables['users']) + 1}").lower()
        role_ids = state._role_ids(rec) or [3]
        group_ids = state._group_ids(rec) or {}
        rec.setdefault("preferences", {"locale": "en-us"})
        user = state.insert("users", _columns(state, "users", rec), role_ids=role_ids, group_ids=group_ids,
                            organization_ids=list(rec.get("organization_ids") or []))
        if rec.get("password"):
            state.passwords[user["id"]] = str(rec["password"])
        for token in _as_list(rec.get("token")) + _as_list(rec.get("tokens")):
            state.tokens[str(token)] = user["id"]
            if admin_token is None and state.is_admin(user):
                admin_token = str(token)
    for token, who in (data.get("tokens") or {}).items():
        user = state.user_by(who)
        if user is None:
            raise ValueError(f"seed: token for unknown user {who!r}")
        state.tokens[str(token)] = user["id"]
    for record in data.get("tickets") or []:
        _seed_ticket(state, dict(record))
    for table in ("calendars", "slas", "webhooks", "triggers"):
        for record in data.get(table) or []:
            rec = state.lookup_names(table, dict(record))
            state.insert(table, _columns(state, table, rec))
    for table, value in (data.get("next_ids") or {}).items():
        state.next_ids[table] = max(state.next_ids[table], int(value))
    if data.get("ticket_counter") is not None:
        state.ticket_counter = max(state.ticket_counter, int(data["ticket_counter"]))
    return admin_token


def _seed_ticket(state: State, rec: dict[str, Any]) -> None:
    articles = rec.pop("articles", None) or []
    if rec.get("article"):
        articles.insert(0, rec.pop("article"))
    tags = rec.pop("tags", None) or []
    mentions = rec.pop("mentions", None) or []
    rec = state.lookup_names("tickets", rec)
    if rec.get("group_id") is None:
        rec["group_id"] = state.all("groups")[0]["id"]
    rec.setdefault("state_id", state.by_name("ticket_states", "new")["id"])
    rec.setdefault("priority_id", state.by_name("ticket_priorities", "2 normal")["id"])
    rec.setdefault("customer_id", 1)
    if "organization_id" not in rec:
        customer = state.find("users", rec["customer_id"])
        rec["organization_id"] = customer.get("organization_id") if customer else None
    if not rec.get("number"):
        rec["number"] = state.next_ticket_number()
    else:
        system_id = str(state.settings.get("system_id", ""))
        tail = str(rec["number"])[len(system_id):]
        if tail.isdigit():
            state.ticket_counter = max(state.ticket_counter, int(tail))
    actor = rec.get("created_by_id", 1)
    rec.setdefault("updated_by_id", actor)
    ticket = state.insert("tickets", _columns(state, "tickets", rec))
    for article in articles:
        art = dict(article)
        created_by = art.pop("created_by", None)
        user = state.user_by(created_by) if created_by else None
        art_actor = user["id"] if user else art.get("created_by_id", actor)
        keep = {k: art[k] for k in ("created_at", "updated_at", "id") if k in art}
        with state.lock:
            created = state._create_article(ticket, art, art_actor)
            created.update(keep)
            if "id" in keep and keep["id"] != created["id"]:
                del state.tables["articles"][created["id"]]
                state.tables["articles"][keep["id"]] = created
                state.next_ids["articles"] = max(state.next_ids["articles"], keep["id"] + 1)
    if articles and "article_count" in rec:
        ticket["article_count"] = rec["article_count"]
    for key in ("create_article_type_id", "create_article_sender_id", "last_contact_at",
                "last_contact_customer_at", "last_contact_agent_at", "updated_at"):
        if key in rec:
            ticket[key] = rec[key]
    state.tags[("Ticket", ticket["id"])] = [str(t) for t in tags]
    state.tag_items.extend(str(t) for t in tags if str(t) not in state.tag_items)
    for who in mentions:
        user = state.user_by(who)
        if user is not None:
            state.insert("mentions", {"mentionable_id": ticket["id"], "user_id": user["id"],
                                      "created_by_id": user["id"], "updated_by_id": user["id"]})


def _columns(state: State, table: str, rec: Mapping[str, Any]) -> dict[str, Any]:
    cols = state.columns(table)
    return {k: v for k, v in rec.items() if k in cols}


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def ensure_admin(state: State, token: str | None) -> str:
    """The admin token to use: the seed's, or a new admin user with `DEFAULT_ADMIN_TOKEN`."""
    if token and token in state.tokens:
        return token
    for existing, user_id in state.tokens.items():
        user = state.find("users", user_id)
        if user and state.is_admin(user) and user.get("active"):
            return existing
    user = state.user_by("admin@example.com")
    if user is None:
        user = state.insert("users", {"login": "admin@example.com", "email": "admin@example.com",
                                      "firstname": "Stand-in", "lastname": "Admin",
                                      "preferences": {"locale": "en-us"}},
                            role_ids=[1, 2], group_ids={str(g["id"]): ["full"] for g in state.all("groups")},
                            organization_ids=[])
    token = token or DEFAULT_ADMIN_TOKEN
    state.tokens[token] = user["id"]
    return token


def build_state(seed: Any = None, *, webhook_backoff: float = 10.0, webhook_timeout: float = 30.0,
                elasticsearch: bool | None = None, escalation_interval: float = 0.0,
                ) -> tuple[State, str, WebhookDispatcher]:
    """A seeded State; ``elasticsearch=False`` clears the ``es_url`` setting (search runs on the
    database, see search.py), True sets one, None keeps the seed's (default: configured)."""
    state = State()
    token = apply_seed(state, load_seed_data(seed))
    if elasticsearch is not None:
        state.settings["es_url"] = "http://elasticsearch.invalid:9200" if elasticsearch else ""
    token = ensure_admin(state, token)
    dispatcher = WebhookDispatcher(state, backoff=webhook_backoff, timeout=webhook_timeout,
                                   escalation_interval=escalation_interval)
    return state, token, dispatcher


# --------------------------------------------------------------------------- serving


class StandIn:
    """A running stand-in: ``url`` (no trailing slash; the API is at ``url + "/api/v1"``),
    ``admin_token``, ``state`` (records, ``faults``, ``requests``), ``deliveries``.

    Options: ``elasticsearch`` (False: a Zammad without a search index), ``call_delay``
    (seconds spent on every API request, e.g. 0.03 for a realistic Zammad),
    ``webhook_backoff`` (seconds per attempt number between webhook retries; Zammad: 10),
    ``webhook_timeout`` (read timeout per delivery attempt; Zammad: 30), ``escalation_interval``
    (seconds between time-event runs, see escalation.py; default 0: only when
    ``state.process_escalation()`` / ``process_pending()`` is called; a real Zammad runs them all the time)."""

    def __init__(self, seed: Any = None, *, host: str = "127.0.0.1", port: int = 0, threads: int = 16,
                 webhook_backoff: float = 10.0, webhook_timeout: float = 30.0, elasticsearch: bool | None = None,
                 call_delay: float = 0.0, escalation_interval: float = 0.0) -> None:
        from integrations.serving import create_server  # noqa: PLC0415 - the one way policydesk serves WSGI

        self.state, self.admin_token, self.dispatcher = build_state(
            seed, webhook_backoff=webhook_backoff, webhook_timeout=webhook_timeout, elasticsearch=elasticsearch,
            escalation_interval=escalation_interval)
        self.app = ZammadApp(self.state, call_delay=call_delay)
        self._server = create_server(self.app, host, port, threads=threads, ident="nginx",
                                     clear_untrusted_proxy_headers=True)
        self.host = host
        self.port = int(self._server.effective_port)
        self.url = f"http://{host}:{self.port}"
        self.api_url = self.url + "/api/v1"
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    @property
    def deliveries(self) -> list[Delivery]:
        return self.dispatcher.deliveries

    def headers(self, token: str | None = None, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Token token={token or self.admin_token}", **extra}

    def token_for(self, who: str | int) -> str:
        """A (new) API token of the user ``who`` (id, login or e-mail)."""
        user = self.state.user_by(who)
        if user is None:
            raise KeyError(who)
        for token, user_id in self.state.tokens.items():
            if user_id == user["id"]:
                return token
        token = f"standin-token-{user['id']}"
        self.state.tokens[token] = user["id"]
        return token

    def wait_for_deliveries(self, timeout: float = 5.0, *, count: int | None = None) -> list[Delivery]:
        return self.dispatcher.wait(timeout, count=count)

    def start(self) -> "StandIn":
        self._thread = threading.Thread(target=self.serve_forever, name=f"standin-{self.port}", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """waitress' loop, stoppable: `stop` sets a flag; the loop closes every channel
        (kept-alive client connections included) in its own thread, then returns."""
        from integrations.serving import run_until

        run_until(self._server, self._stopping)

    def stop(self) -> None:
        self.state.faults.release()
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.dispatcher.stop()

    def __enter__(self) -> "StandIn":
        return self.start() if self._thread is None else self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


@contextlib.contextmanager
def running_standin(seed: Any = None, **options: Any) -> Iterator[StandIn]:
    """A stand-in serving on a free loopback port for the duration of the block."""
    standin = StandIn(seed, **options).start()
    try:
        yield standin
    finally:
        standin.stop()


def seed_tables() -> list[str]:  # pragma: no cover - documentation helper
    return sorted(COLUMNS) + sorted(ATTRIBUTE_OBJECTS)


__all__ = ["StandIn", "running_standin", "build_state", "apply_seed", "load_seed_data", "DEFAULT_SEED",
           "DEFAULT_ADMIN_TOKEN"]
