"""The Zammad adapter over real HTTP on loopback.

Runs against a small fake Zammad defined here (`FakeZammad`): it answers the endpoints
the adapter uses the way Zammad does (token auth, ``{"error", "error_human"}`` bodies,
``expand=true`` names, ``page``/``per_page`` with caps, mentions created for the current
or on-behalf-of user), keeps a request log and injects faults.
"""

from __future__ import annotations

import datetime as dt
import json
import socketserver
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator
from urllib.parse import parse_qs
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest

from integrations.zammad import mapping
from integrations.zammad.errors import is_contention
from integrations.zammad.adapter import AppliedChanges, ZammadAdapter, ZammadClient, ZammadSettings, api_url
from integrations.zammad.errors import (
    ZammadAuthError,
    ZammadError,
    ZammadNotFound,
    ZammadUnavailable,
    ZammadValidationError,
)
from integrations.zammad.resources import RetryPolicy, iter_all
from plugin.model import (
    Contribution,
    Decision,
    EmergencyVerdict,
    EscalationState,
    EscalationStep,
    ScopeVerdict,
    Verdict,
)

UTC = dt.timezone.utc
TOKEN = "policydesk-token"
FAST = RetryPolicy(attempts=3, base_delay=0.001, max_delay=0.01)


# --------------------------------------------------------------------------- fake Zammad


@dataclass
class Fault:
    method: str
    path: str  # prefix of the path after /api/v1/
    status: int | None = None  # None: delay past the client timeout
    delay: float = 0.0
    apply_first: bool = False  # for a delay: carry out the request, then stall
    times: int = 1


@dataclass
class FakeZammad:
    users: dict[int, dict] = field(default_factory=dict)
    organizations: dict[int, dict] = field(default_factory=dict)
    tickets: dict[int, dict] = field(default_factory=dict)
    tags: dict[int, list[str]] = field(default_factory=dict)
    mentions: list[dict] = field(default_factory=list)
    articles: list[dict] = field(default_factory=list)
    priorities: dict[int, str] = field(default_factory=lambda: {1: "1 low", 2: "2 normal", 3: "3 high"})
    tokens: dict[str, int] = field(default_factory=dict)
    faults: list[Fault] = field(default_factory=list)
    log: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    next_id: int = 100
    clock: int = 0

    # ---- seeding
    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id

    def add_user(self, login: str, *, email: str = "", roles=("Agent",), locale: str | None = None, org: int | None = None) -> dict:
        uid = self.new_id()
        user = {"id": uid, "login": login, "email": email or login, "firstname": login.split("@")[0],
                "lastname": "", "organization_id": org, "roles": list(roles), "active": True,
                "preferences": {"locale": locale} if locale else {}}
        self.users[uid] = user
        return user

    def writes(self) -> list[tuple[str, str]]:
        return [entry for entry in self.log if entry[0] != "GET"]

    # ---- WSGI
    def __call__(self, environ, start_response):
        method = environ["REQUEST_METHOD"]
        path = environ["PATH_INFO"]
        query = {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        body = json.loads(raw) if raw else {}
        with self.lock:
            self.log.append((method, path))
        status, payload = self.handle(method, path, query, body, environ)
        data = b"" if payload is None else json.dumps(payload).encode()
        start_response(f"{status} X", [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
        return [data]

    def _fault(self, method: str, rel: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.method == method and rel.startswith(fault.path) and fault.times > 0:
                    fault.times -= 1
                    return fault
        return None

    def handle(self, method, path, query, body, environ):
        if not path.startswith("/api/v1/"):
            return 404, {"error": "No route matches"}
        rel = path[len("/api/v1/"):]
        auth = environ.get("HTTP_AUTHORIZATION", "")
        if not auth:
            return 403, {"error": "Authentication required", "error_human": "Authentication required"}
        token = auth.removeprefix("Token token=")
        if token not in self.tokens:
            return 401, {"error": "Invalid token!", "error_human": "Invalid token!"}
        me = self.users[self.tokens[token]]
        actor = me
        if environ.get("HTTP_X_ON_BEHALF_OF"):
            ref = environ["HTTP_X_ON_BEHALF_OF"]
            actor = next((u for u in self.users.values() if ref in (str(u["id"]), u["login"], u["email"])), None)
            if actor is None:
                return 422, {"error": f"No such user '{ref}'", "error_human": f"No such user '{ref}'"}
        fault = self._fault(method, rel)
        if fault is not None and fault.status is not None:
            return fault.status, {"error": f"injected {fault.status}", "error_human": f"injected {fault.status}"}
        if fault is not None and not fault.apply_first:
            time.sleep(fault.delay)
        result = self.route(method, rel, query, body, actor)
        if fault is not None and fault.apply_first:
            time.sleep(fault.delay)
        return result

    def _page(self, items: list, query: dict, cap: int) -> list:
        per_page = min(int(query.get("per_page", 100)), cap)
        page = int(query.get("page", 1))
        return items[(page - 1) * per_page: page * per_page]

    def _expand_ticket(self, t: dict) -> dict:
        out = dict(t)
        out["priority"] = self.priorities[t["priority_id"]]
        out["state"] = "new"
        out["create_article_type"] = t["_create_article_type"]
        out.pop("_create_article_type")
        org = self.organizations.get(t.get("organization_id"))
        out["organization"] = org["name"] if org else None
        out["customer"] = self.users[t["customer_id"]]["login"]
        return out

    def route(self, method, rel, query, body, actor):  # noqa: C901 - a router
        parts = rel.split("/")
        head = parts[0]
        with self.lock:
            if head == "users":
                if rel == "users/me":
                    return 200, self.users[actor["id"]]
                if rel == "users/search":
                    q = query.get("query", "").lower()
                    return 200, [u for u in self.users.values() if q in u["login"].lower() or q in u["email"].lower()]
                if len(parts) == 2:
                    user = self.users.get(int(parts[1]))
                    return (200, user) if user else (404, {"error": "Couldn't find User", "error_human": "Couldn't find User"})
                return 200, self._page(sorted(self.users.values(), key=lambda u: u["id"]), query, 500)
            if head == "organizations" and len(parts) == 2:
                org = self.organizations.get(int(parts[1]))
                return (200, org) if org else (404, {"error": "Couldn't find Organization"})
            if head == "ticket_priorities":
                items = [{"id": k, "name": v} for k, v in sorted(self.priorities.items())]
                return 200, self._page(items, query, 500)
            if head == "tickets":
                if len(parts) == 1:
                    items = [self._expand_ticket(t) for _, t in sorted(self.tickets.items())]
                    return 200, self._page(items, query, 100)
                ticket = self.tickets.get(int(parts[1]))
                if ticket is None:
                    return 404, {"error": "Couldn't find Ticket with 'id'=" + parts[1],
                                 "error_human": "Couldn't find Ticket with 'id'=" + parts[1]}
                if method == "PUT":
                    for key, value in body.items():
                        if key == "priority":
                            ids = {v: k for k, v in self.priorities.items()}
                            if value not in ids:
                                return 422, {"error": "Invalid priority", "error_human": "Invalid priority"}
                            ticket["priority_id"] = ids[value]
                        elif key == "priority_id":
                            ticket["priority_id"] = int(value)
                        elif key.startswith("policydesk_"):
                            ticket[key] = value
                        elif key == "article":  # tickets_controller.rb#update: inside the same update
                            self.articles.append(dict(value, ticket_id=ticket["id"], id=self.new_id(),
                                                      created_by_id=actor["id"]))
                        else:
                            return 422, {"error": f"unknown attribute '{key}' for Ticket."}
                    ticket["updated_by_id"] = actor["id"]
                    self.clock += 1
                    ticket["updated_at"] = f"2026-11-27T09:{self.clock // 60 % 60:02d}:{self.clock % 60:02d}.000Z"
                return 200, self._expand_ticket(ticket)
            if head == "tags":
                if method == "GET":
                    return 200, {"tags": list(self.tags.get(int(query["o_id"]), []))}
                tags = self.tags.setdefault(int(body["o_id"]), [])
                if rel == "tags/add":
                    if body["item"] not in tags:
                        tags.append(body["item"])
                    return 201, True
                if body["item"] in tags:
                    tags.remove(body["item"])
                return 200, True
            if head == "mentions":
                if method == "GET":
                    tid = int(query["mentionable_id"])
                    return 200, {"mentions": [m for m in self.mentions if m["mentionable_id"] == tid]}
                if method == "DELETE":  # Zammad: only the current user's own mention
                    mine = [m for m in self.mentions if m["id"] == int(parts[1]) and m["user_id"] == actor["id"]]
                    if not mine:
                        return 500, {"error": "undefined method `destroy' for nil:NilClass"}
                    self.mentions.remove(mine[0])
                    return 200, mine[0]
                tid = int(body["mentionable_id"])
                if actor.get("no_access"):  # lib/validations/mention_validator.rb
                    return 422, {"error": "Validation failed: A mentioned user has no agent access to this ticket",
                                 "error_human": "A mentioned user has no agent access to this ticket"}
                if any(m["mentionable_id"] == tid and m["user_id"] == actor["id"] for m in self.mentions):
                    return 422, {"error": "User is already mentioned.", "error_human": "User is already mentioned."}
                mention = {"id": self.new_id(), "mentionable_type": "Ticket", "mentionable_id": tid,
                           "user_id": actor["id"], "created_by_id": actor["id"]}
                self.mentions.append(mention)
                return 201, mention
            if head == "ticket_articles":
                if parts[1:2] == ["by_ticket"]:
                    return 200, [a for a in self.articles if a["ticket_id"] == int(parts[2])]
                article = dict(body, id=self.new_id(), created_by_id=actor["id"])
                self.articles.append(article)
                return 201, article
        return 404, {"error": f"No route matches [{method}] /api/v1/{rel}"}


class _ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def serve(app: FakeZammad) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, app, server_class=_ThreadingServer, handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Desk:
    app: FakeZammad
    url: str
    client: ZammadClient
    adapter: ZammadAdapter
    ticket_id: int
    ana: dict
    tom: dict
    bot: dict


@pytest.fixture
def desk() -> Iterator[Desk]:
    app = FakeZammad()
    bot = app.add_user("policydesk", email="policydesk@provider.example", roles=("Admin", "Agent"))
    app.tokens[TOKEN] = bot["id"]
    ana = app.add_user("ana", email="ana@provider.example")
    tom = app.add_user("tom", email="tom@provider.example")
    org_id = app.new_id()
    app.organizations[org_id] = {
        "id": org_id, "name": "Acme SA", mapping.ORG_SUPPORT_PLAN: "pro",
        mapping.ORG_ACCOUNT_MANAGER: "ana@provider.example", mapping.ORG_TECHNICAL_ACCOUNT_MANAGER: "",
        mapping.ORG_COMMITMENT_END: "2026-12-31", mapping.ORG_PARTNER: False,
    }
    customer = app.add_user("claire@acme.example", roles=("Customer",), locale="fr-fr", org=org_id)
    tid = app.new_id()
    app.tickets[tid] = {
        "id": tid, "number": "31001", "title": "Serveur injoignable", "group_id": 1,
        "customer_id": customer["id"], "organization_id": org_id, "priority_id": 2, "state_id": 1,
        "_create_article_type": "email", "created_at": "2026-11-27T08:00:00.000Z",
        "updated_at": "2026-11-27T08:00:00.000Z", "updated_by_id": customer["id"],
        "first_response_at": None, mapping.TICKET_CATEGORY: "infrastructure",
        mapping.TICKET_EMERGENCY: False, mapping.TICKET_PLAN: None,
        mapping.TICKET_FIRST_RESPONSE_DUE: None, mapping.TICKET_FINGERPRINT: None,
    }
    app.tags[tid] = ["billing", "hours:phone"]  # one foreign tag, one stale policydesk tag
    with serve(app) as url:
        client = ZammadClient(url, TOKEN, timeout=0.5, retry=FAST)
        yield Desk(app, url, client, ZammadAdapter(client), tid, ana, tom, bot)


NOW = dt.datetime(2026, 11, 27, 8, 5, tzinfo=UTC)
DUE = dt.datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


def pro_decision(**changes: Any) -> Decision:
    src = "test"
    decision = Decision(
        now=NOW,
        plan=Verdict("pro", src, "organization is on Pro"),
        scope=Verdict(ScopeVerdict(True, "infrastructure"), src, "infrastructure is in scope"),
        emergency=Verdict(EmergencyVerdict(False, False, ("not requested",)), src, "not requested"),
        calendar=Verdict("email", src, "came in by e-mail"),
        first_response_due=Verdict(DUE, src, "2h of e-mail hours"),
        account_managers=Verdict({"account_manager": "ana@provider.example"}, src, "Pro has one"),
        escalation=Verdict(EscalationState(step=None, due={}), src, "nothing due"),
        priority=Verdict("3 high", src, "Pro is high"),
        tags=(Contribution("plan:pro", src, "plan"), Contribution("hours:email", src, "calendar")),
        notes=(Contribution("Pro plan: first response due Fri 27 Nov 2026 11:00 CET (2h, e-mail hours).", src, "sla"),),
    )
    return decision.with_(**changes)


# --------------------------------------------------------------------------- reading


def test_load_context_maps_ticket_organization_and_customer(desk: Desk) -> None:
    ticket, organization, state = desk.adapter.load_context(desk.ticket_id)
    assert ticket.id == desk.ticket_id
    assert ticket.channel == "email"
    assert ticket.language is None  # only an emergency needs it: no customer read
    assert ticket.category == "infrastructure"
    assert ticket.emergency_requested is False
    assert ticket.created_at == dt.datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
    assert ticket.priority == "2 normal"
    assert ticket.tags == frozenset() and not state.tags_known  # the engine does not read tags
    assert sorted(desk.app.log) == sorted([("GET", f"/api/v1/tickets/{desk.ticket_id}"),
                                           ("GET", f"/api/v1/organizations/{organization.id}")])
    assert organization.plan == "pro"
    assert organization.name == "Acme SA"
    assert dict(organization.account_managers) == {"account_manager": "ana@provider.example"}
    assert organization.commitment_end == dt.date(2026, 12, 31)
    assert organization.partner is False
    assert state.fingerprint is None and state.mentioned_user_ids == frozenset()
    assert all(method == "GET" for method, _ in desk.app.log)


def test_language_comes_from_the_request_then_the_customer(desk: Desk) -> None:
    app, tid = desk.app, desk.ticket_id
    app.tickets[tid][mapping.TICKET_EMERGENCY] = True
    assert desk.adapter.load_context(tid)[0].language == "fr"  # the customer's locale (read once)
    desk.adapter.load_context(tid)
    assert sum(1 for m, p in app.log if p.startswith("/api/v1/users/")) == 1  # cached, not per event
    app.tickets[tid][mapping.TICKET_LANGUAGE] = "en"  # an agent took a call in English
    assert desk.adapter.load_context(tid)[0].language == "en"
    assert mapping.request_language({}, {"detected_language": "de"}) == ("de", "article")


# --------------------------------------------------------------------------- applying


def test_apply_decision_writes_everything_once_then_nothing(desk: Desk) -> None:
    app, tid = desk.app, desk.ticket_id
    changes = desk.adapter.apply_decision(tid, pro_decision())

    # Never decided before: policydesk contributed nothing, so it removes nothing.
    assert set(app.tags[tid]) == {"billing", "hours:phone", "plan:pro", "hours:email"}
    assert changes.tags_added == ["hours:email", "plan:pro"] and changes.tags_removed == []
    assert app.priorities[app.tickets[tid]["priority_id"]] == "3 high"
    assert [m["user_id"] for m in app.mentions] == [desk.ana["id"]]
    assert mapping.parse_instant(app.tickets[tid][mapping.TICKET_FIRST_RESPONSE_DUE]) == DUE
    assert app.tickets[tid][mapping.TICKET_PLAN] == "pro"
    notes = [a for a in app.articles if a["ticket_id"] == tid]
    assert len(notes) == 1
    note = notes[0]
    assert (note["type"], note["internal"], note["sender"], note["subject"]) == ("note", True, "Agent", "policydesk")
    assert note["body"] == pro_decision().note_text
    assert note["preferences"] == {mapping.NOTE_PREFERENCE: mapping.decision_fingerprint(pro_decision())}
    assert changes.note_posted and changes.write_calls == len(app.writes())
    assert ("POST", "/api/v1/ticket_articles") not in app.writes()  # the note rides in the ticket update
    assert changes.applied.tags == {"plan:pro", "hours:email"} and changes.applied.updated_at

    # Loop guard: the update was made by policydesk's own user.
    assert desk.adapter.is_own_change({"ticket": {"id": tid, "updated_by_id": app.tickets[tid]["updated_by_id"]}})

    app.log.clear()
    again = desk.adapter.apply_decision(tid, pro_decision(now=NOW + dt.timedelta(minutes=1)),
                                        state=remembered(desk, tid, changes))
    assert not again and again.write_calls == 0
    assert app.writes() == []
    assert len(app.articles) == 1


def remembered(desk: Desk, tid: int, changes: AppliedChanges, record: dict | None = None) -> mapping.ZammadTicketState:
    """The state the processor hands over: Zammad's record (no tag read) plus what was applied."""
    record = record if record is not None else desk.client.tickets.find(tid, expand=True)
    return mapping.ticket_state_from_record(record, tags_known=False, applied=changes.applied)


def test_a_stale_payload_after_our_write_causes_no_write(desk: Desk) -> None:
    """An echo rendered before policydesk's ticket update arrives after it: the memory wins."""
    app, tid = desk.app, desk.ticket_id
    before = desk.client.tickets.find(tid, expand=True)
    changes = desk.adapter.apply_decision(tid, pro_decision())
    app.log.clear()
    again = desk.adapter.apply_decision(tid, pro_decision(), state=remembered(desk, tid, changes, before))
    assert not again and app.log == []


def test_removes_only_what_it_contributed(desk: Desk) -> None:
    app, tid = desk.app, desk.ticket_id
    app.tags[tid].append("plan:enterprise")  # an agent's tag: policydesk never contributed it
    first = desk.adapter.apply_decision(tid, pro_decision())
    plus = pro_decision(plan=Verdict("plus", "test", "downgraded"),
                        account_managers=Verdict({}, "test", "Plus has none"),
                        tags=(Contribution("plan:plus", "test", "plan"), Contribution("hours:email", "test", "x")))
    changes = desk.adapter.apply_decision(tid, plus, state=remembered(desk, tid, first))
    assert changes.tags_removed == ["plan:pro"] and changes.tags_added == ["plan:plus"]
    assert {"plan:enterprise", "hours:phone", "billing"} <= set(app.tags[tid])
    assert changes.mentions_removed == ["ana@provider.example"] and app.mentions == []  # a former manager


def test_a_refused_mention_is_a_warning_and_the_rest_is_applied(desk: Desk) -> None:
    app, tid = desk.app, desk.ticket_id
    desk.ana["no_access"] = True  # ana has no agent access to the ticket's group
    changes = desk.adapter.apply_decision(tid, pro_decision())
    assert changes.warnings and "no agent access" in changes.warnings[0]
    assert changes.note_posted and app.tickets[tid][mapping.TICKET_PLAN] == "pro"
    assert {"plan:pro", "hours:email"} <= set(app.tags[tid])
    assert changes.mentions_added == [] and app.mentions == []


def test_contention_422_is_retried() -> None:
    body = {"error": "Error ID 8hW_Jx3k: Please contact your administrator."}
    assert is_contention(body)
    assert is_contention({"error": "PG::TRDeadlockDetected: ERROR:  deadlock detected"})
    assert not is_contention({"error": "Validation failed: x", "error_human": "x"})


def test_changed_decision_writes_only_the_difference_and_one_new_note(desk: Desk) -> None:
    app, tid = desk.app, desk.ticket_id
    first = desk.adapter.apply_decision(tid, pro_decision())
    app.log.clear()

    warning = EscalationStep("warning", 80.0, tags=("sla:warning",))
    changed = pro_decision(
        escalation=Verdict(EscalationState(step=warning, due={"warning": DUE}), "test", "80% passed"),
        tags=pro_decision().tags + (Contribution("sla:warning", "test", "escalation"),),
        notes=(Contribution("First response is due soon (80% of the target used).", "test", "escalation"),),
    )
    state = remembered(desk, tid, first)
    app.log.clear()
    changes = desk.adapter.apply_decision(tid, changed, state=state)
    assert changes.tags_added == ["sla:warning"] and changes.tags_removed == []
    assert changes.mentions_added == []
    assert set(changes.fields) == {mapping.TICKET_FINGERPRINT}  # priority, plan, due unchanged
    assert sorted(app.writes()) == sorted([("POST", "/api/v1/tags/add"), ("PUT", f"/api/v1/tickets/{tid}")])
    assert [a["body"] for a in app.articles] == [pro_decision().note_text, changed.note_text]


def test_dropping_owned_tags_and_new_manager(desk: Desk) -> None:
    app, tid = desk.app, desk.ticket_id
    first = desk.adapter.apply_decision(tid, pro_decision())
    app.log.clear()
    enterprise = pro_decision(
        plan=Verdict("enterprise", "test", "upgraded"),
        account_managers=Verdict({"account_manager": "ana@provider.example", "technical_account_manager": "tom"},
                                 "test", "Enterprise has two"),
        tags=(Contribution("plan:enterprise", "test", "plan"), Contribution("hours:email", "test", "calendar")),
    )
    changes = desk.adapter.apply_decision(tid, enterprise, state=remembered(desk, tid, first))
    assert changes.tags_added == ["plan:enterprise"] and changes.tags_removed == ["plan:pro"]
    assert changes.mentions_added == ["tom"]
    assert sorted(m["user_id"] for m in app.mentions) == sorted([desk.ana["id"], desk.tom["id"]])
    assert app.tickets[tid][mapping.TICKET_PLAN] == "enterprise"
    assert len(app.articles) == 2


def test_unknown_account_manager_is_reported_not_fatal(desk: Desk) -> None:
    decision = pro_decision(account_managers=Verdict({"account_manager": "nobody@nowhere"}, "test", "typo"))
    changes = desk.adapter.apply_decision(desk.ticket_id, decision)
    assert changes.unknown_persons == ["nobody@nowhere"] and desk.app.mentions == []


def test_note_not_duplicated_when_the_update_times_out_after_taking_effect(desk: Desk) -> None:
    app, tid = desk.app, desk.ticket_id
    app.faults.append(Fault("PUT", f"tickets/{tid}", delay=1.0, apply_first=True))
    changes = desk.adapter.apply_decision(tid, pro_decision())
    assert len(app.articles) == 1
    assert changes.note_posted
    assert app.log.count(("PUT", f"/api/v1/tickets/{tid}")) == 1  # found landed, not sent again
    assert app.tickets[tid][mapping.TICKET_FINGERPRINT] == mapping.decision_fingerprint(pro_decision())


def test_note_not_posted_when_the_final_update_fails(desk: Desk) -> None:
    app, tid = desk.app, desk.ticket_id
    app.faults.append(Fault("PUT", f"tickets/{tid}", status=422))  # the final ticket update fails for good
    with pytest.raises(ZammadValidationError):
        desk.adapter.apply_decision(tid, pro_decision())
    assert app.articles == []  # note and fingerprint travel together
    changes = desk.adapter.apply_decision(tid, pro_decision())  # the next run finishes the job
    assert changes.note_posted and len(app.articles) == 1
    assert app.tickets[tid][mapping.TICKET_FINGERPRINT] == mapping.decision_fingerprint(pro_decision())


def test_is_own_change(desk: Desk) -> None:
    adapter = desk.adapter
    assert adapter.is_own_change({"ticket": {"updated_by_id": desk.bot["id"]}})
    assert adapter.is_own_change({"ticket": {"updated_by": {"id": desk.bot["id"], "login": "policydesk"}}})
    assert adapter.is_own_change({"id": 1, "updated_by_id": str(desk.bot["id"])})
    assert not adapter.is_own_change({"ticket": {"updated_by_id": desk.ana["id"]}})
    assert not adapter.is_own_change({"ticket": {}})
    assert desk.app.log.count(("GET", "/api/v1/users/me")) == 1  # cached


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "token, exc, status",
    [("wrong", ZammadAuthError, 401), ("", ZammadAuthError, 403)],
)
def test_auth_errors(desk: Desk, token: str, exc: type, status: int) -> None:
    client = ZammadClient(desk.url, "placeholder", timeout=0.5, retry=FAST)
    if token:
        client.session.headers["Authorization"] = f"Token token={token}"
    else:
        del client.session.headers["Authorization"]
    with pytest.raises(exc) as info:
        client.tickets.find(desk.ticket_id)
    assert info.value.status == status
    assert info.value.message in ("Invalid token!", "Authentication required")
    assert len(desk.app.log) == 1  # not retried


@pytest.mark.parametrize("status, exc", [(401, ZammadAuthError), (403, ZammadAuthError), (404, ZammadNotFound),
                                         (422, ZammadValidationError)])
def test_non_transient_statuses_are_not_retried(desk: Desk, status: int, exc: type) -> None:
    desk.app.faults.append(Fault("GET", "tickets/", status=status, times=5))
    with pytest.raises(exc) as info:
        desk.client.tickets.find(desk.ticket_id)
    assert info.value.status == status and info.value.message == f"injected {status}"
    assert len(desk.app.log) == 1


def test_not_found_message(desk: Desk) -> None:
    with pytest.raises(ZammadNotFound, match="Couldn't find Ticket"):
        desk.adapter.load_context(999_999)


def test_validation_error_on_write_is_not_retried(desk: Desk) -> None:
    desk.app.faults.append(Fault("PUT", "tickets/", status=422, times=5))
    with pytest.raises(ZammadValidationError):
        desk.client.tickets.update(desk.ticket_id, {"policydesk_plan": "pro"})
    assert desk.app.log == [("PUT", f"/api/v1/tickets/{desk.ticket_id}")]


@pytest.mark.parametrize("status", [500, 502, 503, 429])
def test_transient_statuses_are_retried_until_recovery(desk: Desk, status: int) -> None:
    desk.app.faults.append(Fault("GET", "tickets/", status=status, times=2))
    record = desk.client.tickets.find(desk.ticket_id, expand=True)
    assert record["id"] == desk.ticket_id
    assert len(desk.app.log) == 3


def test_transient_failure_gives_up_after_the_bounded_attempts(desk: Desk) -> None:
    desk.app.faults.append(Fault("GET", "tickets/", status=503, times=10))
    with pytest.raises(ZammadUnavailable) as info:
        desk.client.tickets.find(desk.ticket_id)
    assert info.value.status == 503 and info.value.transient
    assert len(desk.app.log) == FAST.attempts


def test_post_is_retried_only_where_safe(desk: Desk) -> None:
    # tags/add is idempotent: the adapter retries it through the RetryPolicy.
    desk.app.faults.append(Fault("POST", "tags/add", status=500, times=1))
    desk.adapter.apply_decision(desk.ticket_id, pro_decision())
    assert "plan:pro" in desk.app.tags[desk.ticket_id]
    # A raw POST, or an update carrying a note, is never retried behind the caller's back.
    desk.app.faults.append(Fault("POST", "ticket_articles", status=503, times=1))
    desk.app.log.clear()
    with pytest.raises(ZammadUnavailable):
        desk.client.ticket_articles.create({"ticket_id": desk.ticket_id, "body": "x"})
    assert len(desk.app.log) == 1


def test_timeout_is_retried_then_succeeds(desk: Desk) -> None:
    desk.app.faults.append(Fault("GET", "tickets/", delay=1.0))
    started = time.monotonic()
    record = desk.client.tickets.find(desk.ticket_id)
    assert record["id"] == desk.ticket_id
    assert time.monotonic() - started < 1.0
    assert len(desk.app.log) == 2


def test_timeout_every_time_raises_unavailable(desk: Desk) -> None:
    desk.app.faults.append(Fault("GET", "tickets/", delay=0.8, times=FAST.attempts))
    with pytest.raises(ZammadUnavailable, match="timed out") as info:
        desk.client.tickets.find(desk.ticket_id)
    assert info.value.status is None


def test_connection_refused_is_unavailable() -> None:
    client = ZammadClient("http://127.0.0.1:9", TOKEN, timeout=0.2, retry=FAST)
    with pytest.raises(ZammadUnavailable, match="connection failed"):
        client.users.me()


def test_error_message_prefers_error_human() -> None:
    import requests

    response = requests.Response()
    response.status_code = 422
    response._content = json.dumps({"error": "Validation failed: Name is taken", "error_human": "Name is taken"}).encode()
    from integrations.zammad.errors import error_from_response

    error = error_from_response(response)
    assert isinstance(error, ZammadValidationError) and error.message == "Name is taken" and not error.transient
    assert isinstance(error, ZammadError)


# --------------------------------------------------------------------------- pagination


def test_pagination_walks_every_page(desk: Desk) -> None:
    for i in range(7):
        desk.app.add_user(f"customer{i}@example.com", roles=("Customer",))
    expected = sorted(desk.app.users)
    desk.app.log.clear()
    seen = [u["id"] for u in iter_all(desk.client.users, per_page=2)]
    assert seen == expected  # 11 users
    pages = [p for m, p in desk.app.log]
    assert len(pages) == 6  # 5 full pages of 2, then a short one


def test_pagination_stops_on_an_empty_page(desk: Desk) -> None:
    for i in range(3):
        desk.app.add_user(f"c{i}@example.com", roles=("Customer",))
    desk.app.log.clear()
    total = len(desk.app.users)  # 8: four full pages of 2, then an empty one
    assert len(list(iter_all(desk.client.users, per_page=2))) == total
    assert len(desk.app.log) == total // 2 + 1


def test_pagination_respects_the_server_cap(desk: Desk) -> None:
    for _ in range(150):
        tid = desk.app.new_id()
        desk.app.tickets[tid] = dict(desk.app.tickets[desk.ticket_id], id=tid)
    desk.app.log.clear()
    tickets = list(iter_all(desk.client.tickets, per_page=1000))  # Zammad caps tickets at 100
    assert len(tickets) == 151
    assert len(desk.app.log) == 2


# --------------------------------------------------------------------------- mapping and settings


@pytest.mark.parametrize("zammad, ours", [
    ("email", "email"), ("phone", "phone"), ("web", "web"), ("chat", "chat"), ("sms", "sms"),
    ("twitter status", "twitter"), ("twitter direct-message", "twitter"), ("facebook feed post", "facebook"),
    ("telegram personal-message", "telegram"), ("note", "other"), ("fax", "other"), (None, "other"),
])
def test_channel_of(zammad: str | None, ours: str) -> None:
    assert mapping.channel_of(zammad) == ours


def test_language_and_tags() -> None:
    assert mapping.language_of("fr-fr") == "fr" and mapping.language_of("de_CH") == "de"
    assert mapping.language_of(None) is None
    add, remove = mapping.tag_changes(
        frozenset({"plan:plus", "sla:warning", "emergency", "vip", "billing"}), frozenset({"plan:pro"})
    )
    assert add == ("plan:pro",) and remove == ("emergency", "plan:plus", "sla:warning")


def test_fingerprint_ignores_reasons_and_now() -> None:
    base = pro_decision()
    assert mapping.decision_fingerprint(base) == mapping.decision_fingerprint(
        base.with_(now=NOW + dt.timedelta(hours=1), plan=Verdict("pro", "other", "other reason"))
    )
    assert mapping.decision_fingerprint(base) != mapping.decision_fingerprint(
        base.with_(first_response_due=Verdict(DUE + dt.timedelta(minutes=1), "t", "r"))
    )


def test_settings_from_env_token_file_and_config(tmp_path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("from-file\n")
    settings = ZammadSettings.load({"ZAMMAD_URL": "https://desk.example", "ZAMMAD_TOKEN_FILE": str(token_file)})
    assert settings.token == "from-file" and "from-file" not in repr(settings)
    assert api_url(settings.url) == "https://desk.example/api/v1/"
    config = tmp_path / "policydesk.toml"
    config.write_text(f'[zammad]\nurl = "https://cfg.example/api/v1"\ntoken_file = "{token_file}"\ntimeout = 3\n')
    settings = ZammadSettings.load({"POLICYDESK_CONFIG": str(config), "ZAMMAD_TOKEN": "env-wins"})
    assert (settings.url, settings.token, settings.timeout) == ("https://cfg.example/api/v1", "env-wins", 3.0)
    with pytest.raises(ValueError, match="ZAMMAD_URL"):
        ZammadSettings.load({})
    with pytest.raises(ValueError, match="token"):
        ZammadSettings.load({"ZAMMAD_URL": "https://desk.example"})


def test_applied_changes_is_falsy_when_empty() -> None:
    assert not AppliedChanges(ticket_id=1)
    assert AppliedChanges(ticket_id=1, tags_added=["plan:pro"]).write_calls == 1


# --------------------------------------------------------------------------- against the stand-in

STANDIN_TOKEN = "policydesk-standin-token"
STANDIN_SEED: dict[str, Any] = {
    "groups": [{"name": "Users"}],
    "organizations": [{"name": "Acme SA"}],
    "users": [
        {"login": "policydesk", "email": "policydesk@provider.example", "roles": ["Admin", "Agent"],
         "groups": {"Users": ["full"]}, "token": STANDIN_TOKEN},
        {"login": "ana", "email": "ana@provider.example", "roles": ["Agent"], "groups": {"Users": ["full"]}},
        {"email": "claire@acme.example", "roles": ["Customer"], "organization": "Acme SA",
         "preferences": {"locale": "fr-fr"}},
    ],
    "attributes": [
        {"object": "Organization", "name": mapping.ORG_SUPPORT_PLAN, "display": "Support plan", "data_type": "select",
         "data_option": {"options": {"plus": "Plus", "pro": "Pro"}, "default": "", "null": True}},
        {"object": "Organization", "name": mapping.ORG_ACCOUNT_MANAGER, "display": "Account manager",
         "data_type": "input", "data_option": {"type": "text", "maxlength": 200, "null": True}},
        {"object": "Ticket", "name": mapping.TICKET_PLAN, "display": "Plan", "data_type": "input",
         "data_option": {"type": "text", "maxlength": 50, "null": True}},
        {"object": "Ticket", "name": mapping.TICKET_FIRST_RESPONSE_DUE, "display": "First response due",
         "data_type": "datetime", "data_option": {"future": True, "past": True, "diff": 0, "null": True}},
        {"object": "Ticket", "name": mapping.TICKET_FINGERPRINT, "display": "policydesk fingerprint",
         "data_type": "input", "data_option": {"type": "text", "maxlength": 64, "null": True}},
    ],
    "tickets": [{"title": "Serveur injoignable", "group": "Users", "customer": "claire@acme.example",
                 "tags": ["billing", "hours:phone"],
                 "article": {"type": "email", "sender": "Customer", "subject": "Serveur injoignable",
                             "body": "Notre serveur ne répond plus.", "created_by": "claire@acme.example"}}],
}


@dataclass
class StandInDesk:
    zammad: Any
    client: ZammadClient
    adapter: ZammadAdapter
    ticket_id: int

    def writes(self) -> list[tuple[str, str]]:
        return [(e.method, e.path) for e in self.zammad.state.requests.writes()]


@pytest.fixture
def standin() -> Iterator[StandInDesk]:
    from integrations.zammad_standin import running_standin

    with running_standin(STANDIN_SEED) as zammad:
        client = ZammadClient(zammad.url, STANDIN_TOKEN, timeout=0.5, retry=FAST)
        org = next(iter_all(client.organizations))
        # Organizations are seeded before attributes exist: set policydesk's values through the API.
        client.organizations.update(org["id"], {mapping.ORG_SUPPORT_PLAN: "pro",
                                                mapping.ORG_ACCOUNT_MANAGER: "ana@provider.example"})
        ticket_id = next(iter_all(client.tickets))["id"]
        zammad.state.requests.clear()
        yield StandInDesk(zammad, client, ZammadAdapter(client), ticket_id)


def test_standin_pro_email_ticket_end_to_end(standin: StandInDesk) -> None:
    client, adapter, tid = standin.client, standin.adapter, standin.ticket_id
    ticket, organization, state = adapter.load_context(tid)
    assert (ticket.channel, organization.plan) == ("email", "pro")
    assert dict(organization.account_managers) == {"account_manager": "ana@provider.example"}

    changes = adapter.apply_decision(tid, pro_decision(), state=state)
    assert changes.note_posted
    record = client.tickets.find(tid, expand=True)
    assert set(client.tags.list(tid)) == {"billing", "hours:phone", "plan:pro", "hours:email"}  # none removed
    assert record["priority"] == "3 high"
    assert record[mapping.TICKET_PLAN] == "pro"
    assert mapping.parse_instant(record[mapping.TICKET_FIRST_RESPONSE_DUE]) == DUE
    ana = adapter.find_user("ana@provider.example")
    assert [m["user_id"] for m in client.mentions.for_ticket(tid)] == [ana["id"]]
    notes = adapter.policydesk_notes(tid)
    assert len(notes) == 1 and notes[0]["body"] == pro_decision().note_text
    assert (notes[0]["type"], notes[0]["sender"], notes[0]["internal"]) == ("note", "Agent", True)
    assert adapter.is_own_change({"ticket": record})

    standin.zammad.state.requests.clear()
    memory = mapping.ticket_state_from_record(record, tags_known=False, applied=changes.applied)
    again = adapter.apply_decision(tid, pro_decision(now=NOW + dt.timedelta(minutes=5)), state=memory)
    assert not again and standin.writes() == []

    warning = EscalationStep("warning", 80.0, tags=("sla:warning",))
    changed = pro_decision(
        escalation=Verdict(EscalationState(step=warning, due={"warning": DUE}), "test", "80% passed"),
        tags=pro_decision().tags + (Contribution("sla:warning", "test", "escalation"),),
        notes=(Contribution("First response is due soon.", "test", "escalation"),),
    )
    standin.zammad.state.requests.clear()
    changes = adapter.apply_decision(tid, changed, state=memory)
    assert sorted(standin.writes()) == sorted([("POST", "/api/v1/tags/add"), ("PUT", f"/api/v1/tickets/{tid}")])
    assert changes.tags_added == ["sla:warning"] and set(changes.fields) == {mapping.TICKET_FINGERPRINT}
    assert [n["body"] for n in adapter.policydesk_notes(tid)] == [pro_decision().note_text, changed.note_text]


@pytest.mark.parametrize("status, exc", [(401, ZammadAuthError), (403, ZammadAuthError), (404, ZammadNotFound),
                                         (422, ZammadValidationError)])
def test_standin_non_transient_errors(standin: StandInDesk, status: int, exc: type) -> None:
    standin.zammad.state.faults.fail_next(5, status=status, path="/api/v1/tickets/")
    with pytest.raises(exc) as info:
        standin.client.tickets.find(standin.ticket_id)
    assert info.value.status == status and info.value.message
    assert len(standin.zammad.state.requests.matching("GET", "/api/v1/tickets/")) == 1


def test_standin_real_auth_errors(standin: StandInDesk) -> None:
    bad = ZammadClient(standin.zammad.url, "no-such-token", timeout=0.5, retry=FAST)
    with pytest.raises(ZammadAuthError) as info:
        bad.users.me()
    assert info.value.status == 401
    anonymous = ZammadClient(standin.zammad.url, "x", timeout=0.5, retry=FAST)
    del anonymous.session.headers["Authorization"]
    with pytest.raises(ZammadAuthError) as info:
        anonymous.users.me()
    assert info.value.status == 403 and info.value.message == "Authentication required"
    with pytest.raises(ZammadNotFound):
        standin.adapter.load_context(424242)


@pytest.mark.parametrize("status", [500, 503])
def test_standin_transient_errors_then_recovery(standin: StandInDesk, status: int) -> None:
    standin.zammad.state.faults.fail_next(2, status=status)
    changes = standin.adapter.apply_decision(standin.ticket_id, pro_decision())
    assert changes.note_posted and len(standin.adapter.policydesk_notes(standin.ticket_id)) == 1


def test_standin_422_on_write_is_not_retried(standin: StandInDesk) -> None:
    standin.zammad.state.faults.fail_next(3, status=422, method="PUT", path="/api/v1/tickets/")
    with pytest.raises(ZammadValidationError):
        standin.client.tickets.update(standin.ticket_id, {mapping.TICKET_PLAN: "pro"})
    assert len(standin.zammad.state.requests.matching("PUT")) == 1


def test_standin_timeout_is_retried(standin: StandInDesk) -> None:
    standin.zammad.state.faults.slow_next(1, delay=1.0, method="GET", path="/api/v1/tickets/")
    assert standin.client.tickets.find(standin.ticket_id)["id"] == standin.ticket_id
    assert len(standin.zammad.state.requests.matching("GET", "/api/v1/tickets/")) == 2


def test_standin_pagination(standin: StandInDesk) -> None:
    for i in range(5):
        standin.client.users.create({"email": f"customer{i}@example.com", "roles": ["Customer"]})
    standin.zammad.state.requests.clear()
    users = list(iter_all(standin.client.users, per_page=2))
    expected = len(standin.zammad.state.all("users"))
    assert len(users) == expected and len({u["id"] for u in users}) == expected
    assert len(standin.zammad.state.requests.matching("GET", "/api/v1/users")) == expected // 2 + 1


def test_standin_answers_a_duplicate_mention_like_zammad(standin: StandInDesk) -> None:
    client, tid = standin.client, standin.ticket_id
    ana = standin.adapter.find_user("ana@provider.example")
    client.mentions.add(tid, on_behalf_of=ana["id"])
    # Zammad 6 (mentions_controller.rb -> Mention.subscribe!): subscribing twice is a no-op, 201 true
    assert client.mentions.add(tid, on_behalf_of=ana["id"]) is True
    assert [m["user_id"] for m in client.mentions.for_ticket(tid)] == [ana["id"]]


def test_mention_race_with_another_worker_is_not_an_error(standin: StandInDesk) -> None:
    """Two workers apply events of one ticket at once: both read "not mentioned", the other
    one mentions first; this one's POST gets Zammad's 422 and must not fail the job."""
    client, adapter, tid = standin.client, standin.adapter, standin.ticket_id
    stale = adapter.read_state(tid)
    assert stale.mentioned_user_ids == frozenset()
    ana = adapter.find_user("ana@provider.example")
    client.mentions.add(tid, on_behalf_of=ana["id"])  # the other worker, between our read and our write

    changes = adapter.apply_decision(tid, pro_decision(), state=stale)

    assert [m["user_id"] for m in client.mentions.for_ticket(tid)] == [ana["id"]]  # one mention, not two
    # Zammad 6 answers the second POST 201 (Mention.subscribe! is a no-op), so it may count as added
    assert changes.mentions_added in ([], ["ana@provider.example"])
    assert {"plan:pro", "hours:email"} <= set(client.tags.list(tid))  # the rest was applied
    assert len(adapter.policydesk_notes(tid)) == 1


def test_other_mention_refusals_are_warnings(standin: StandInDesk) -> None:
    """A 422 on mention creation that is not "already mentioned": the rest is applied, a warning says why."""
    standin.zammad.state.faults.fail_next(1, status=422, method="POST", path="/api/v1/mentions")
    changes = standin.adapter.apply_decision(standin.ticket_id, pro_decision())
    assert changes.warnings and changes.note_posted
    assert standin.client.mentions.for_ticket(standin.ticket_id) == []


def test_the_decision_does_not_depend_on_the_time_precision_of_the_source() -> None:
    """The API answers milliseconds, sync's custom payload (xmlschema) whole seconds."""
    api = mapping.ticket_from_record({"id": 1, "created_at": "2026-11-27T08:00:01.734Z"})
    payload = mapping.ticket_from_record({"id": 1, "created_at": "2026-11-27T08:00:01Z"})
    assert api.created_at == payload.created_at


def test_custom_payload_records() -> None:
    from integrations.zammad.payload import records_from_payload

    records = records_from_payload({
        "policydesk_payload": "1",
        "ticket": {"id": "42", "state": "new", "customer_id": "7", "updated_at": "garbage",
                   "organization_id": "#{ticket.organization_id / no such method}"},
        "organization": {"id": "", "support_plan": ""}, "article": {"internal": "false"}})
    assert records.ticket_id == 42 and records.ticket["customer_id"] == 7
    assert records.ticket["organization_id"] is None and records.organization is None
    assert records.article["internal"] is False and records.custom


def test_managers_are_mentioned_only_within_their_hours_and_stay_mentioned(desk: Desk, bundled_policies) -> None:
    """A Zammad mention notifies at once: at 03:00 (outside Mon-Fri 09:00-18:00) Ana is not
    mentioned; at 10:00 she is; a night evaluation after that keeps her mention."""
    app, tid = desk.app, desk.ticket_id
    night = dt.datetime(2026, 11, 27, 2, 0, tzinfo=UTC)  # Fri 03:00 in Zurich
    day = dt.datetime(2026, 11, 27, 9, 0, tzinfo=UTC)  # Fri 10:00 in Zurich
    first = desk.adapter.apply_decision(tid, pro_decision(now=night), policies=bundled_policies)
    assert first.mentions_added == [] and app.mentions == []
    second = desk.adapter.apply_decision(tid, pro_decision(now=day), state=remembered(desk, tid, first),
                                         policies=bundled_policies)
    assert second.mentions_added == ["ana@provider.example"] and len(app.mentions) == 1
    third = desk.adapter.apply_decision(tid, pro_decision(now=night + dt.timedelta(days=1)),
                                        state=remembered(desk, tid, second), policies=bundled_policies)
    assert third.mentions_removed == [] and len(app.mentions) == 1
    assert third.applied is not None and third.applied.mentions == second.applied.mentions


def test_a_new_tickets_channel_is_read_from_the_payload_not_from_zammad(standin: StandInDesk) -> None:
    """Zammad's API lists no article types (config/routes/ticket.rb): the adapter learns each
    type's name from the payload's article (sync's payload and Zammad's default both carry
    its id and name), so new tickets cost no read for their channel."""
    from integrations.zammad.sync_objects import webhook_payload_template
    from integrations.zammad_standin.custom_payload import render_custom_payload
    from integrations.zammad_standin.webhooks import webhook_payload

    state, client = standin.zammad.state, standin.client
    seeded = client.tickets.find(standin.ticket_id)
    created = [client.tickets.create({"title": f"t{n}", "group_id": seeded["group_id"],
                                      "customer_id": seeded["customer_id"],
                                      "article": {"type": kind, "sender": "Customer", "subject": "s", "body": "b"}})
               for n, kind in enumerate(["email", "phone", "email"])]
    template = webhook_payload_template()
    state.requests.clear()
    channels = []
    for n, ticket in enumerate(created):
        article = state.articles_of(ticket["id"])[0]
        with state.lock:
            payload = (render_custom_payload(state, template, state.find("tickets", ticket["id"]), article) if n % 2 == 0
                       else webhook_payload(state, ticket["id"], article["id"]))
        assert "type_id" in payload["article"]
        record = dict(payload["ticket"])
        record.pop("create_article_type", None)  # as sync's payload has it: the id only
        payload = {**payload, "ticket": record}
        t, _org, _state = standin.adapter.context_from_payload(payload)
        channels.append(t.channel)
    assert channels == ["email", "phone", "email"]
    reads = [e.path for e in state.requests.all() if e.method == "GET" and "/tickets/" in e.path]
    assert reads == []


def test_an_unchanged_decision_writes_no_note(desk: Desk, bundled_policies) -> None:
    """The engine writes a decision's notes when first read; the adapter reads them only
    when the fingerprint changed, so re-deciding an unchanged ticket formats no note."""
    from plugin import hookimpl
    from plugin.engine import Engine
    from plugin.manager import get_plugin_manager

    class CountingNotes:
        calls = 0

        @hookimpl
        def policydesk_notes(self, request, decision):
            CountingNotes.calls += 1
            return [Contribution("Counted.", "site.count", "test")]

    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(CountingNotes(), name="site.count")
    engine = Engine(bundled_policies, pm)
    ticket, organization, state = desk.adapter.load_context(desk.ticket_id)
    first = desk.adapter.apply_decision(desk.ticket_id, engine.evaluate(ticket, organization, NOW), state=state,
                                        policies=bundled_policies)
    assert first.note_posted and CountingNotes.calls == 1
    again = desk.adapter.apply_decision(desk.ticket_id, engine.evaluate(ticket, organization, NOW),
                                        state=remembered(desk, desk.ticket_id, first), policies=bundled_policies)
    assert not again and CountingNotes.calls == 1
