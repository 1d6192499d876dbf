"""Billing: the plan-change rules (pure), the receiver on SQLite and PostgreSQL, the signed
HTTP path through the real WSGI app over HTTP (`BackgroundServer`), and the queued Zammad side against
the stand-in."""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import json
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests

from integrations.billing import EXAMPLES_DIR, EVENT_TYPES, audit_subject
from integrations.billing.handler import OUTCOME_HEADER, BillingReceiver, validate_event
from integrations.billing.rules import ChangeRequest, Current, add_months, commitment_problem, decide
from integrations.billing.zammad_side import billing_job, open_tickets
from integrations.vip import verify_vip
from support import REPO
from store_fixtures import open_same, pg_dsn, pg_schema, store  # noqa: F401

UTC = dt.timezone.utc
NOW = dt.datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
D = dt.date.fromisoformat
ORG = 4
REF = str(ORG)


def event(kind: str = "subscription.created", *, id: str = "evt-1", plan: str | None = "pro",
          start: str = "2026-01-05", months: int | None = 6, end: str | None = None, org: int = ORG,
          period: str = "monthly", effective: str | None = None, occurred: str = "2026-01-05T08:00:00Z") -> dict:
    sub: dict[str, Any] = {}
    if plan is not None:
        sub["plan"] = plan
    if kind == "subscription.cancelled":
        if effective:
            sub["effective"] = effective
    else:
        sub.update(start=start, billing_period=period,
                   commitment={"end": end} if end is not None else {"months": months})
    return {"id": id, "type": kind, "occurred_at": occurred,
            "organization": {"billing_account": f"acct-{org}", "zammad_organization_id": org},
            "subscription": sub}


def call(receiver: BillingReceiver, ev: dict, now: dt.datetime = NOW) -> tuple[int, dict]:
    return receiver(ev, json.dumps(ev).encode(), now)


# --------------------------------------------------------------------------- contract


def test_every_event_type_has_a_valid_example() -> None:
    names = sorted(p.stem for p in Path(EXAMPLES_DIR).glob("*.json"))
    assert names == sorted(EVENT_TYPES)
    for name in names:
        example = json.loads((Path(EXAMPLES_DIR) / f"{name}.json").read_text())
        assert example["type"] == name
        validate_event(example)


# --------------------------------------------------------------------------- rules (pure)


@pytest.mark.parametrize("day, months, expected", [
    ("2026-01-05", 6, "2026-07-05"), ("2026-08-31", 6, "2027-02-28"), ("2024-01-31", 1, "2024-02-29"),
    ("2026-12-15", 1, "2027-01-15"), ("2026-03-31", 0, "2026-03-31"), ("2026-07-31", 12, "2027-07-31"),
])
def test_add_months(day: str, months: int, expected: str) -> None:
    assert add_months(D(day), months) == D(expected)


@pytest.mark.parametrize("plan, start, end, months, problem", [
    ("pro", "2026-01-05", "2026-04-05", 3, "a commitment of 3 months is shorter than the 6-month minimum"),
    ("pro", "2026-01-05", "2026-07-04", None, "a commitment ending 2026-07-04 is shorter"),
    ("pro", "2026-01-05", "2026-07-05", 6, None),
    ("plus", "2026-01-05", "2027-01-05", 12, None),
    ("standard", "2026-01-05", "2026-01-05", 0, None),
    ("plus", "2026-01-05", "2025-12-31", None, "before its start"),
])
def test_commitment_minimum(bundled_policies, plan, start, end, months, problem) -> None:
    found = commitment_problem(bundled_policies, plan, D(start), D(end), months)
    assert (found is None) if problem is None else (problem in found)


def _req(kind: str, plan: str | None, effective: str, end: str | None = None) -> ChangeRequest:
    return ChangeRequest(f"subscription.{kind}", plan, D(effective), D(end) if end else None, "monthly")


RULES = [
    # current (plan, commitment end), request -> allowed, kind, resulting plan, end, reason fragment
    (None, _req("created", "pro", "2026-01-05", "2026-07-05"), True, "upgrade", "pro", "2026-07-05", "apply at once"),
    (("plus", "2026-06-01"), _req("plan_changed", "pro", "2026-03-01", "2026-09-01"),
     True, "upgrade", "pro", "2026-09-01", "upgrades apply at once"),
    (("plus", "2026-12-01"), _req("plan_changed", "enterprise", "2026-03-01", "2026-09-01"),
     True, "upgrade", "enterprise", "2026-12-01", ""),  # an upgrade never shortens the commitment
    (("pro", "2026-07-05"), _req("plan_changed", "plus", "2026-03-01", "2026-09-01"),
     False, "downgrade", "pro", "2026-07-05", "never downgraded"),
    (("pro", "2026-07-05"), _req("created", "plus", "2026-08-01", "2027-02-01"),
     False, "downgrade", "pro", "2026-07-05", "never downgraded"),
    (("pro", "2026-07-05"), _req("plan_changed", "pro", "2026-03-01", "2026-09-01"),
     True, "unchanged", "pro", "2026-09-01", "already on"),
    (("pro", "2026-07-05"), _req("cancelled", None, "2026-05-01"),
     False, "cancel", "pro", "2026-07-05", "commitment runs until 2026-07-05"),
    (("pro", "2026-07-05"), _req("cancelled", None, "2026-07-05"), True, "cancel", "standard", None, "cancelled"),
    (None, _req("cancelled", None, "2026-07-05"), False, "cancel", "standard", None, "no paid subscription"),
    (("pro", "2026-07-05"), _req("renewed", "pro", "2026-07-05", "2027-01-05"),
     True, "renewal", "pro", "2027-01-05", "renewed"),
    (("pro", "2026-07-05"), _req("renewed", "enterprise", "2026-07-05", "2027-01-05"),
     False, "renewal", "pro", "2026-07-05", "a renewal keeps the plan"),
    (("standard", None), _req("renewed", "pro", "2026-07-05", "2027-01-05"),
     False, "renewal", "standard", None, "no paid subscription to renew"),
]


@pytest.mark.parametrize("current, request_, allowed, kind, plan, end, reason", RULES)
def test_rules(bundled_policies, current, request_, allowed, kind, plan, end, reason) -> None:
    now = None if current is None else Current(current[0], D(current[1]) if current[1] else None, "monthly")
    ruling = decide(bundled_policies, now, request_)
    assert (ruling.allowed, ruling.kind, ruling.plan) == (allowed, kind, plan)
    assert ruling.commitment_end == (D(end) if end else None)
    assert reason in ruling.reason


@pytest.mark.parametrize("downgrade, cancel, effective, allowed", [
    ("after_commitment", "after_commitment", "2026-05-01", False),
    ("after_commitment", "after_commitment", "2026-07-05", True),
    ("never", "any_time", "2026-05-01", False),
])
def test_rules_follow_plan_changes_policy(bundled_policies, downgrade, cancel, effective, allowed) -> None:
    policies = dataclasses.replace(bundled_policies, plan_changes=dataclasses.replace(
        bundled_policies.plan_changes, downgrade=downgrade, cancel=cancel))
    current = Current("pro", D("2026-07-05"))
    ruling = decide(policies, current, _req("plan_changed", "plus", effective, "2027-01-05"))
    assert ruling.allowed is allowed
    if not allowed and downgrade == "after_commitment":
        assert "commitment runs until 2026-07-05" in ruling.reason
    assert decide(policies, current, _req("cancelled", None, "2026-05-01")).allowed is (cancel == "any_time")


def test_rules_use_ranks_not_names(bundled_policies) -> None:
    names = {"standard": "free", "plus": "silver", "pro": "gold", "enterprise": "platinum"}
    plans = {names[k]: dataclasses.replace(v, name=names[k]) for k, v in bundled_policies.plans.items()}
    policies = dataclasses.replace(bundled_policies, plans=plans, default_plan="free")
    assert decide(policies, Current("silver", D("2026-07-01")), _req("plan_changed", "gold", "2026-02-01", "2026-08-01")).allowed
    assert not decide(policies, Current("gold", D("2026-07-01")), _req("plan_changed", "silver", "2026-02-01", "2026-08-01")).allowed
    assert decide(policies, Current("gold", D("2026-07-01")), _req("cancelled", None, "2026-07-01")).plan == "free"


# --------------------------------------------------------------------------- receiver (SQLite + PostgreSQL)


@pytest.fixture
def receiver(store, bundled_policies) -> BillingReceiver:
    return BillingReceiver(store, lambda: bundled_policies)


def test_created_pro_assigns_manager_and_returns_vip_code_once(receiver, store) -> None:
    ev = event()
    status, body = call(receiver, ev)
    assert status == 201
    assert body["status"] == "applied" and body["plan"] == "pro" and body["commitment_end"] == "2026-07-05"
    assert body["account_managers"] == {"account_manager": "ana.keller@provider.example"}
    assert body["unassigned_roles"] == []
    code = body["vip_code"]
    assert len(code) == 8 and code.isdigit()
    assert verify_vip(store, REF, code)
    assert store.get_subscription(REF).plan == "pro"
    assert store.managers_of(REF) == {"account_manager": "ana.keller@provider.example"}
    # the same event again: one effect, no second code
    status, again = call(receiver, ev, NOW + dt.timedelta(minutes=5))
    assert (status, again) == (200, {"status": "duplicate"})
    assert verify_vip(store, REF, code)
    assert store.counts()["pending"] == 1  # one job for the Zammad side
    applied = store.audit_log(subject=audit_subject(REF), kind="billing.applied")
    assert len(applied) == 1 and applied[0].data["event_id"] == "evt-1"


def test_upgrade_plus_to_pro_applies(receiver, store) -> None:
    status, body = call(receiver, event(plan="plus"))
    assert status == 201 and body["account_managers"] == {} and "vip_code" in body
    status, body = call(receiver, event("subscription.plan_changed", id="evt-2", plan="pro", start="2026-03-01"))
    assert status == 200 and body["plan"] == "pro" and body["change"] == "upgrade"
    assert body["commitment_end"] == "2026-09-01"
    assert body["account_managers"] == {"account_manager": "ana.keller@provider.example"}
    assert "vip_code" not in body  # the organization has its code already
    assert store.get_subscription(REF).plan == "pro"


def test_upgrade_pro_to_enterprise_keeps_account_manager(receiver, store) -> None:
    store.assign_manager("99", "account_manager", "ana.keller@provider.example")  # ana has one already
    assert call(receiver, event())[1]["account_managers"] == {"account_manager": "marc.dubois@provider.example"}
    store.assign_manager("98", "account_manager", "lea.rossi@provider.example")
    store.assign_manager("97", "account_manager", "lea.rossi@provider.example")
    status, body = call(receiver, event("subscription.plan_changed", id="evt-2", plan="enterprise"))
    assert status == 200
    assert body["account_managers"] == {"account_manager": "marc.dubois@provider.example",
                                        "technical_account_manager": "tom.meier@provider.example"}


def test_downgrade_refused_recorded_nothing_changed(receiver, store) -> None:
    call(receiver, event())
    before = (store.get_subscription(REF), store.managers_of(REF), store.get_vip_hash(REF))
    ev = event("subscription.plan_changed", id="evt-down", plan="plus", start="2026-02-01")
    status, body = call(receiver, ev)
    assert status == 409 and body["status"] == "refused"
    assert "downgrade" in body["reason"] and "never downgraded" in body["reason"]
    assert (store.get_subscription(REF), store.managers_of(REF), store.get_vip_hash(REF)) == before
    refused = store.audit_log(subject=audit_subject(REF), kind="billing.refused")
    assert len(refused) == 1 and refused[0].data["event_id"] == "evt-down"
    assert refused[0].data["reason"] == body["reason"]
    # a redelivery of the refused event answers the same 409, and records nothing more
    status, again = call(receiver, ev, NOW + dt.timedelta(days=400))
    assert status == 409 and again["reason"] == body["reason"]
    assert len(store.audit_log(subject=audit_subject(REF), kind="billing.refused")) == 1
    # its job is a no-op
    jobs = store.claim("t", NOW + dt.timedelta(days=1), limit=10)
    refused_jobs = [j for j in jobs if j.delivery_id == "evt-down"]
    assert refused_jobs and refused_jobs[0].headers[OUTCOME_HEADER] == "refused"
    assert billing_job(None, store, None)(refused_jobs[0], NOW) == "skipped: refused"


def test_cancel_inside_commitment_refused_after_applied(receiver, store) -> None:
    call(receiver, event())
    status, body = call(receiver, event("subscription.cancelled", id="evt-c1", plan=None,
                                        occurred="2026-05-01T10:00:00Z"))
    assert status == 409 and "commitment runs until 2026-07-05" in body["reason"]
    assert store.get_subscription(REF).plan == "pro"
    # effective on the commitment end, arriving on that day: applied at once
    status, body = call(receiver, event("subscription.cancelled", id="evt-c2", plan="pro", effective="2026-07-05",
                                        occurred="2026-07-05T10:00:00Z"), dt.datetime(2026, 7, 5, 10, tzinfo=UTC))
    assert status == 200 and body["status"] == "applied" and body["plan"] == "standard"
    assert body["commitment_end"] is None and body["account_managers"] == {}
    assert store.get_subscription(REF).plan == "standard" and store.managers_of(REF) == {}


def test_renewal_extends(receiver, store) -> None:
    call(receiver, event())
    status, body = call(receiver, event("subscription.renewed", id="evt-r", start="2026-07-05", months=12))
    assert status == 200 and body["commitment_end"] == "2027-07-05"
    assert store.get_subscription(REF).commitment_end.date() == D("2027-07-05")


def test_short_commitment_is_422_and_nothing_stored(receiver, store) -> None:
    status, body = call(receiver, event(months=3))
    assert status == 422
    assert body["error"].startswith("$.subscription.commitment.months: a commitment of 3 months is shorter")
    assert store.get_subscription(REF) is None and store.counts()["pending"] == 0
    assert call(receiver, event(months=6))[0] == 201  # the corrected event (same id) is accepted


def _without(ev: dict, *path: str) -> dict:
    out = copy.deepcopy(ev)
    target = out
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return out


def _with(ev: dict, value: Any, *path: str) -> dict:
    out = copy.deepcopy(ev)
    target = out
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return out


SCHEMA_ERRORS = [
    (_without(event(), "id"), "$.id", "required"),
    (_with(event(), "subscription.upgraded", "type"), "$.type", "is not one of"),
    (_with(event(), "yesterday", "occurred_at"), "$.occurred_at", "RFC 3339"),
    (_with(event(), "2026-01-05T08:00:00", "occurred_at"), "$.occurred_at", "RFC 3339"),
    (_without(event(), "organization", "zammad_organization_id"), "$.organization.zammad_organization_id", "required"),
    (_with(event(), "4", "organization", "zammad_organization_id"), "$.organization.zammad_organization_id", "integer"),
    (_with(event(), "gold", "subscription", "plan"), "$.subscription.plan", "unknown plan 'gold'"),
    (_with(event(), "2026-02-30", "subscription", "start"), "$.subscription.start", "not a real date"),
    (_with(event(), "weekly", "subscription", "billing_period"), "$.subscription.billing_period", "is not one of"),
    (_with(event(), {"months": 6, "end": "2026-07-05"}, "subscription", "commitment"), "$.subscription.commitment",
     "exactly one"),
    (_with(event(), -1, "subscription", "commitment", "months"), "$.subscription.commitment.months", "minimum"),
    (_without(event(), "subscription", "commitment"), "$.subscription.commitment", "required"),
    (_with(event(), "x", "subscription", "color"), "$.subscription", "unknown field"),
    (_with(event("subscription.cancelled"), "2026-01-05", "subscription", "start"), "$.subscription",
     "a cancellation has no"),
]


@pytest.mark.parametrize("ev, path, fragment", SCHEMA_ERRORS)
def test_schema_errors_are_422_with_path(bundled_policies, tmp_path, ev, path, fragment) -> None:
    from integrations.store import open_store

    with open_store(tmp_path / "s.db") as sqlite:
        status, body = BillingReceiver(sqlite, lambda: bundled_policies)(ev, b"{}", NOW)
        assert status == 422
        assert body["error"].startswith(path + ": ") and fragment in body["error"], body
        assert sqlite.counts()["pending"] == 0


def _small_pool(policies, capacity: int | None, pool=("a@x", "b@x")):
    roles = dict(policies.roles)
    roles["account_manager"] = dataclasses.replace(roles["account_manager"], pool=tuple(pool), capacity=capacity)
    return dataclasses.replace(policies, roles=roles)


def test_pool_least_loaded_and_capacity(store, bundled_policies) -> None:
    policies = _small_pool(bundled_policies, capacity=1)
    receiver = BillingReceiver(store, lambda: policies)
    got = [call(receiver, event(id=f"e{n}", org=n))[1] for n in (11, 12, 13)]
    assert [g["account_managers"] for g in got[:2]] == [{"account_manager": "a@x"}, {"account_manager": "b@x"}]
    assert got[2]["status"] == "applied" and got[2]["account_managers"] == {}
    assert got[2]["unassigned_roles"] == ["account_manager"]
    assert store.get_subscription("13").plan == "pro"
    audit = store.audit_log(subject=audit_subject("13"), kind="billing.applied")[0]
    assert audit.data["unassigned_roles"] == ["account_manager"]
    assert store.manager_loads("account_manager") == {"a@x": 1, "b@x": 1}
    # a cancellation frees a place
    later = dt.datetime(2026, 8, 1, 9, tzinfo=UTC)
    call(receiver, event("subscription.cancelled", id="c11", org=11, plan=None, effective="2026-08-01"), later)
    assert call(receiver, event(id="e14", org=14), later)[1]["account_managers"] == {"account_manager": "a@x"}


# --------------------------------------------------------------------------- signed HTTP through the real app


@pytest.fixture
def served(tmp_path, bundled_policies) -> Iterator[tuple[str, Any]]:
    from integrations.service.app import ServiceSecrets, WebhookService
    from integrations.service.metrics import Metrics
    from integrations.store import open_store

    sqlite = open_store(tmp_path / "http.db")
    app = WebhookService(sqlite, ServiceSecrets("zammad-token", "billing-secret"), Metrics(),
                         billing=BillingReceiver(sqlite, lambda: bundled_policies))
    from integrations.serving import BackgroundServer

    try:
        with BackgroundServer(app, threads=2) as server:
            yield f"{server.url}/webhooks/billing", sqlite
    finally:
        sqlite.close()


def post(url: str, ev: Any, secret: str = "billing-secret", at: float | None = None) -> requests.Response:
    from integrations.signing import billing_signature

    body = json.dumps(ev).encode()
    header = billing_signature(body, secret, int(time.time() if at is None else at))
    return requests.post(url, data=body, timeout=5,
                         headers={"Content-Type": "application/json", "Policydesk-Signature": header})


def test_signed_http_path(served) -> None:
    url, sqlite = served
    bad = post(url, event(), secret="wrong")
    assert bad.status_code == 401 and "does not match" in bad.json()["error"]
    stale = post(url, event(), at=time.time() - 3600)
    assert stale.status_code == 401 and "more than 300 s" in stale.json()["error"]
    assert sqlite.counts()["pending"] == 0 and sqlite.get_subscription(REF) is None
    created = post(url, event())
    assert created.status_code == 201 and created.json()["plan"] == "pro" and len(created.json()["vip_code"]) == 8
    duplicate = post(url, event())
    assert duplicate.status_code == 200 and duplicate.json() == {"status": "duplicate"}
    refused = post(url, event("subscription.plan_changed", id="evt-down", plan="plus"))
    assert refused.status_code == 409 and refused.json()["status"] == "refused"
    invalid = post(url, event(id="evt-3", months=3))
    assert invalid.status_code == 422 and invalid.json()["error"].startswith("$.subscription.commitment.months")


# --------------------------------------------------------------------------- the queued Zammad side


@pytest.fixture
def zammad() -> Iterator[Any]:
    from integrations.zammad_standin import running_standin

    with running_standin() as standin:
        add_support_code_attributes(standin)
        yield standin


def add_support_code_attributes(standin: Any) -> None:
    """The attributes `policydesk sync` creates for support codes."""
    from integrations.support_code import ORG_SUPPORT_CODE, TICKET_SUPPORT_CODE

    for obj, name, display in (("Organization", ORG_SUPPORT_CODE, "Support code"),
                               ("Ticket", TICKET_SUPPORT_CODE, "Caller's support code")):
        if standin.state.attribute_by(obj, name) is None:
            standin.state.add_attribute({"object": obj, "name": name, "display": display, "data_type": "input",
                                         "data_option": {"type": "text", "maxlength": 64, "null": True}}, 1)
    standin.state.execute_migrations()


def _processor(standin: Any, store: Any, policies: Any) -> Any:
    from integrations.service.processing import Processor
    from integrations.zammad.adapter import ZammadAdapter, ZammadClient
    from integrations.zammad.resources import RetryPolicy
    from plugin.engine import Engine

    client = ZammadClient(standin.url, standin.token_for("policydesk@example.com"),
                          retry=RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.05))
    adapter = ZammadAdapter(client)
    engine = Engine(policies)

    class TestProcessor(Processor):
        def _with_pauses(self, ticket_id, ticket, record, now):  # older stores lack pending periods
            if not hasattr(self.store, "pending_periods"):
                return ticket
            return super()._with_pauses(ticket_id, ticket, record, now)

    processor = TestProcessor(adapter, lambda: engine, store)
    processor.handlers["billing"] = billing_job(processor, store, adapter)
    return processor


def test_zammad_side_writes_organization_and_moves_deadline(zammad, store, bundled_policies) -> None:
    org = zammad.state.by_name("organizations", "Chocolaterie Léman SA")
    ticket = next(t for t in zammad.state.all("tickets") if t["title"] == "Question about our invoice")
    processor = _processor(zammad, store, bundled_policies)
    adapter = processor.adapter
    assert ticket["id"] in set(open_tickets(adapter, org["id"]))
    now = NOW + dt.timedelta(days=2)
    receiver = BillingReceiver(store, lambda: bundled_policies)

    assert call(receiver, event(plan="plus", org=org["id"]))[0] == 201
    for job in store.claim("w", now, limit=10):
        assert processor(job, now) in ("applied", "unchanged")
        store.complete(job.id)
    plus_due = adapter.read_state(ticket["id"]).first_response_due
    assert plus_due is not None

    assert call(receiver, event("subscription.plan_changed", id="up", plan="pro", org=org["id"]))[0] == 200
    jobs = store.claim("w", now, limit=10)
    assert [processor(job, now) for job in jobs] == ["applied"]
    record = adapter.client.organizations.find(org["id"])
    assert record["support_plan"] == "pro"
    assert record["account_manager"] == "ana.keller@provider.example"
    assert not record.get("technical_account_manager")
    assert str(record["commitment_end"])[:10] == "2026-07-05"
    state = adapter.read_state(ticket["id"])
    assert state.plan == "pro" and state.first_response_due < plus_due  # the deadline moved forward

    # the same job again writes nothing to the organization (a retried job has one effect)
    org_writes = len(zammad.state.requests.matching("PUT", f"/api/v1/organizations/{org['id']}"))
    assert org_writes == 2  # the plus activation, then the upgrade
    assert processor(jobs[0], now) == "unchanged"
    assert len(zammad.state.requests.matching("PUT", f"/api/v1/organizations/{org['id']}")) == org_writes

    # a refused downgrade changes nothing in Zammad
    assert call(receiver, event("subscription.plan_changed", id="down", plan="plus", org=org["id"]))[0] == 409
    assert [processor(job, now) for job in store.claim("w", now, limit=10)] == ["skipped: refused"]
    assert adapter.client.organizations.find(org["id"])["support_plan"] == "pro"


# --------------------------------------------------------------------------- the documented worked example


def test_docs_worked_example_signature_verifies() -> None:
    import re

    from integrations.signing import verify_billing

    doc = (REPO / "docs" / "billing.md").read_text()
    body = re.search(r"^(\{\"id\":\"evt-1\".*\})$", doc, re.M).group(1).encode()
    header = re.search(r"^Policydesk-Signature: (t=1767600764,v1=[0-9a-f]{64})$", doc, re.M).group(1)
    assert verify_billing(body, header, "whsec_test_123", now=1767600764 + 10) == 1767600764
    validate_event(json.loads(body))  # the example is a valid event too


def test_against_zammad_onboarding_scheduled_cancellation_and_hand_edit(zammad, store, bundled_policies) -> None:
    """The issue's checks against the stand-in: a first `created plus` for an Enterprise desk
    inside its commitment is 409 with Zammad unchanged; Pro cancelled on its commitment end
    keeps `pro` in Zammad until that day; a hand edit is reverted."""
    from integrations.billing.hand_edit import check_changed_organizations, handle_organization_record
    from integrations.billing.onboarding import zammad_organizations
    from integrations.scheduler import Scheduler

    processor = _processor(zammad, store, bundled_policies)
    adapter = processor.adapter
    receiver = BillingReceiver(store, lambda: bundled_policies, organizations=zammad_organizations(adapter))
    helvetia = zammad.state.by_name("organizations", "Helvetia Retail Group")
    writes = len(zammad.state.requests.writes())
    status, body = call(receiver, event(plan="plus", org=helvetia["id"], id="onb"))
    assert status == 409 and "downgrade" in body["reason"] and "(as Zammad has it)" in body["reason"]
    for job in store.claim("w", NOW, limit=10):
        assert processor(job, NOW) == "skipped: refused"
        store.complete(job.id)
    assert len(zammad.state.requests.writes()) == writes
    assert adapter.client.organizations.find(helvetia["id"])["support_plan"] == "enterprise"
    assert call(receiver, event(org=999_999, id="ghost"))[0] == 422

    org = zammad.state.by_name("organizations", "Chocolaterie Léman SA")

    def work(at: dt.datetime) -> list[str]:
        outcomes = []
        for job in store.claim("w", at, limit=20):
            outcomes.append(processor(job, at))
            store.complete(job.id)
        return outcomes

    assert call(receiver, event(plan="pro", org=org["id"], id="pro"))[0] == 201
    work(NOW)
    status, body = call(receiver, event("subscription.cancelled", id="bye", plan=None, org=org["id"],
                                        effective="2026-07-05"))
    assert status == 200 and body["status"] == "scheduled"
    work(NOW)
    assert adapter.client.organizations.find(org["id"])["support_plan"] == "pro"

    # a hand edit meanwhile (Pro -> Standard in Zammad) is reverted
    zammad.state.tables["organizations"][org["id"]]["support_plan"] = "standard"
    record = adapter.client.organizations.find(org["id"])
    assert handle_organization_record(adapter, store, record, NOW, bundled_policies) == "reverted"
    work(NOW)
    # the walk the catch-up runs finds nothing more to revert
    outcomes = check_changed_organizations(adapter, store, None, NOW, bundled_policies)
    assert "reverted" not in outcomes and outcomes.get("unchanged", 0) >= 1
    assert adapter.client.organizations.find(org["id"])["support_plan"] == "pro"

    class Metrics:
        class escalations:  # noqa: N801
            @staticmethod
            def labels(**_: Any) -> Any:
                return type("C", (), {"inc": lambda self: None})()

    scheduler = Scheduler(store, processor, lambda: bundled_policies, Metrics())
    processor.handlers["timer"] = scheduler.job_handler()
    day = dt.datetime(2026, 7, 5, 0, 5, tzinfo=UTC)
    assert len(scheduler.sweep(day).fired) == 1
    assert "cancelled" in work(day)
    work(day)  # the Zammad side it queued
    record = adapter.client.organizations.find(org["id"])
    assert record["support_plan"] == "standard" and not record.get("account_manager")
