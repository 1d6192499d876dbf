"""Billing rules that need Zammad's view or time: scheduled cancellations (applied once by
the scheduler, even with two instances), onboarding from the plan already in Zammad,
partners, unknown organizations, the technical document in the VIP answer."""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
from typing import Any, Mapping

import pytest

from integrations.billing import audit_subject
from integrations.billing.handler import BillingReceiver
from integrations.billing.scheduled import pending_cancellation
from integrations.scheduler import Scheduler, timer_job
from integrations.zammad.errors import ZammadUnavailable
from store_fixtures import open_same, pg_dsn, pg_schema, store  # noqa: F401
from test_billing import NOW, ORG, REF, UTC, call, event

pytest.importorskip("pypdf")


class Organizations:
    """A Zammad organization look-up with the given records."""

    def __init__(self, records: Mapping[int, Mapping[str, Any]] | None = None, down: bool = False) -> None:
        self.records = dict(records or {ORG: {"id": ORG, "name": "Uhrwerk Digital GmbH"}})
        self.down = down
        self.calls = 0

    def __call__(self, organization_id: int) -> Mapping[str, Any] | None:
        self.calls += 1
        if self.down:
            raise ZammadUnavailable("connection refused")
        return self.records.get(organization_id)


class Metrics:
    class _Counter:
        def labels(self, **_: Any) -> "Metrics._Counter":
            return self

        def inc(self, *_: Any) -> None:
            pass

    escalations = _Counter()


def _receiver(store: Any, policies: Any, records: Mapping[int, Mapping[str, Any]] | None = None) -> BillingReceiver:
    return BillingReceiver(store, lambda: policies, organizations=Organizations(records))


# --------------------------------------------------------------------------- scheduled cancellations


def test_cancellation_on_commitment_end_is_scheduled_and_applied_once(open_same, bundled_policies) -> None:
    store, second = open_same(), open_same()  # two instances on one database
    receiver = _receiver(store, bundled_policies)
    assert call(receiver, event(plan="enterprise"))[0] == 201
    managers = store.managers_of(REF)
    assert len(managers) == 2
    december = dt.datetime(2026, 6, 1, 9, tzinfo=UTC)
    status, body = call(receiver, event("subscription.cancelled", id="c1", plan=None, effective="2026-07-05",
                                        occurred="2026-06-01T08:00:00Z"), december)
    assert status == 200 and body["status"] == "scheduled" and body["effective"] == "2026-07-05"
    # nothing changes before the day: plan, managers, VIP code stay
    assert store.get_subscription(REF).plan == "enterprise" and store.managers_of(REF) == managers
    assert pending_cancellation(store, REF) == ("c1", dt.date(2026, 7, 5))

    policies = lambda: bundled_policies  # noqa: E731
    handler = timer_job(None, store, Metrics(), policies, notifier=object())
    schedulers = [Scheduler(s, None, policies, Metrics()) for s in (store, second)]
    assert not any(s.sweep(dt.datetime(2026, 7, 4, 23, 59, tzinfo=UTC)).fired for s in schedulers)
    on_the_day = dt.datetime(2026, 7, 5, 0, 1, tzinfo=UTC)
    fired = [len(s.sweep(on_the_day).fired) for s in schedulers]
    assert sorted(fired) == [0, 1]
    jobs = [j for j in store.claim("w", on_the_day, limit=20) if j.source == "timer"]
    assert len(jobs) == 1
    assert handler(jobs[0], on_the_day) == "cancelled"
    assert handler(jobs[0], on_the_day) == "skipped: nothing to cancel"  # a retried job: one effect
    assert store.get_subscription(REF).plan == "standard" and store.managers_of(REF) == {}
    zammad_jobs = [j for j in store.claim("w", on_the_day, limit=20) if j.source == "billing"]
    assert [j.delivery_id for j in zammad_jobs] == ["c1#effective"]
    applied = store.audit_log(subject=audit_subject(REF), kind="billing.applied", limit=5)
    assert applied[0].data["scheduled"] is True and applied[0].data["from_plan"] == "enterprise"
    print(f"scheduled cancellation: fired per instance {fired}, applied 1 time")


def test_cancellation_before_commitment_end_still_refused(store, bundled_policies) -> None:
    receiver = _receiver(store, bundled_policies)
    call(receiver, event(plan="pro"))
    status, body = call(receiver, event("subscription.cancelled", id="c1", plan=None, effective="2026-07-04"))
    assert status == 409 and "commitment runs until 2026-07-05" in body["reason"]
    assert pending_cancellation(store, REF) is None


def test_upgrade_withdraws_a_scheduled_cancellation(store, bundled_policies) -> None:
    receiver = _receiver(store, bundled_policies)
    call(receiver, event(plan="pro"))
    call(receiver, event("subscription.cancelled", id="c1", plan=None, effective="2026-07-05"))
    assert pending_cancellation(store, REF) is not None
    status, body = call(receiver, event("subscription.plan_changed", id="up", plan="enterprise", months=12))
    assert status == 200 and body["withdrawn_cancellation"] == "c1"
    assert pending_cancellation(store, REF) is None


# --------------------------------------------------------------------------- onboarding, partners, unknown


def test_first_event_takes_the_plan_already_in_zammad(store, bundled_policies) -> None:
    record = {"id": ORG, "name": "Helvetia", "support_plan": "enterprise", "commitment_end": "2027-06-30",
              "account_manager": "marc.dubois@provider.example", "technical_account_manager": "tom.meier@provider.example"}
    receiver = _receiver(store, bundled_policies, {ORG: record})
    status, body = call(receiver, event(plan="plus"))
    assert status == 409 and "downgrade" in body["reason"]
    assert store.get_subscription(REF) is None and store.counts()["pending"] == 1  # the no-op job only
    jobs = store.claim("w", NOW, limit=5)
    assert [j.headers["Policydesk-Billing-Outcome"] for j in jobs] == ["refused"]
    # the same plan as in Zammad: adopted, managers kept, commitment kept (the later end)
    status, body = call(receiver, event(id="e2", plan="enterprise"))
    assert status == 201 and body["change"] == "unchanged" and body["commitment_end"] == "2027-06-30"
    assert body["account_managers"] == {"account_manager": "marc.dubois@provider.example",
                                        "technical_account_manager": "tom.meier@provider.example"}


def test_partner_may_take_plus_only(store, bundled_policies) -> None:
    receiver = _receiver(store, bundled_policies, {ORG: {"id": ORG, "partner": True}})
    status, body = call(receiver, event(plan="pro"))
    assert status == 409 and "partner" in body["reason"] and "open to partners: Plus support" in body["reason"]
    assert store.get_subscription(REF) is None and store.managers_of(REF) == {}
    assert call(receiver, event(id="e2", plan="plus"))[0] == 201


@pytest.mark.parametrize("down", [False, True])
def test_unknown_organization_refused_before_anything_is_recorded(store, bundled_policies, down) -> None:
    lookup = Organizations({}, down=down)
    receiver = BillingReceiver(store, lambda: bundled_policies, organizations=lookup)
    status, body = call(receiver, event(org=999999))
    assert status == (503 if down else 422)
    assert "999999" in body["error"] or down
    assert store.get_subscription("999999") is None and store.get_vip_hash("999999") is None
    assert store.manager_loads("account_manager") == {} and store.counts()["pending"] == 0
    assert store.audit_log(limit=10) == []


# --------------------------------------------------------------------------- the technical document in the answer


def test_vip_answer_carries_the_technical_document(store, bundled_policies) -> None:
    from pypdf import PdfReader

    receiver = _receiver(store, bundled_policies)
    status, body = call(receiver, event(plan="pro"))
    assert status == 201
    document = body["technical_document"]
    assert document["content_type"] == "application/pdf" and document["encoding"] == "base64"
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(base64.b64decode(document["data"]))).pages)
    assert body["vip_code"] in text and "Uhrwerk Digital GmbH" in text and "Pro support" in text
    assert "ana.keller@provider.example" in text and "2026-07-05" in text
    # the document is not kept: it holds the code, which is stored only hashed
    assert all("data" not in json.dumps(e.data) for e in store.audit_log(limit=10))


# --------------------------------------------------------------------------- managers by billing event, hand edits


def test_billing_event_names_an_account_manager(store, bundled_policies) -> None:
    receiver = _receiver(store, bundled_policies)
    assert call(receiver, event(plan="pro"))[1]["account_managers"] == {"account_manager": "ana.keller@provider.example"}
    ev = event("subscription.renewed", id="r1", plan="pro", start="2026-07-05", months=6)
    ev["subscription"]["account_managers"] = {"account_manager": "lea.rossi@provider.example"}
    status, body = call(receiver, ev)
    assert status == 200 and body["account_managers"] == {"account_manager": "lea.rossi@provider.example"}
    assert store.audit_log(kind="managers.assigned")[0].data["from"] == "ana.keller@provider.example"
    bad = event("subscription.renewed", id="r2", plan="pro", start="2026-07-05", months=6)
    bad["subscription"]["account_managers"] = {"technical_account_manager": "tom.meier@provider.example"}
    status, body = call(receiver, bad)
    assert status == 422 and body["path"] == "$.subscription.account_managers.technical_account_manager"


@pytest.mark.parametrize("policy", ["revert", "warn"])
def test_hand_edit_is_recorded_and_reverted_or_warned(store, bundled_policies, policy) -> None:
    import dataclasses

    from integrations.billing.hand_edit import handle_organization_record

    receiver = _receiver(store, bundled_policies)
    call(receiver, event(plan="enterprise", months=12))
    store.claim("w", NOW, limit=10)  # the activation's own job
    policies = dataclasses.replace(bundled_policies, plan_changes=dataclasses.make_dataclass(
        "PC", ["upgrade", "downgrade", "cancel", "hand_edits"])("immediate", "never", "after_commitment", policy))
    managers = store.managers_of(REF)
    record = {"id": ORG, "support_plan": "enterprise", "commitment_end": "2027-01-05", "updated_at": "2026-02-01T10:00:00Z",
              "account_manager": managers["account_manager"],
              "technical_account_manager": managers["technical_account_manager"], "updated_by_id": 3}
    assert handle_organization_record(None, store, record, NOW, policies) == "unchanged"
    edited = {**record, "support_plan": "standard", "account_manager": "someone@else.example"}
    assert handle_organization_record(None, store, edited, NOW, policies) == ("reverted" if policy == "revert"
                                                                              else "warned")
    entry = store.audit_log(subject=audit_subject(REF), kind="billing.hand_edit")[0]
    assert entry.data["fields"]["support_plan"] == {"zammad": "standard", "contract": "enterprise"}
    assert entry.data["fields"]["account_manager"]["contract"] == managers["account_manager"]
    jobs = store.claim("w", NOW, limit=10)
    assert len(jobs) == (1 if policy == "revert" else 0)
    assert store.get_subscription(REF).plan == "enterprise"  # the contract stays the authority
    assert handle_organization_record(None, store, {"id": 31337, "support_plan": "standard"}, NOW) == "unknown"
