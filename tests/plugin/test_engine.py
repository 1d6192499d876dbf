"""The engine on the bundled policies: the seed's answers, field by field."""

from __future__ import annotations

import datetime as dt

import pytest

from support import zurich
from plugin.engine import Engine
from plugin.manager import get_plugin_manager
from plugin.model import Organization, Ticket


@pytest.fixture(scope="module")
def engine(bundled_policies):
    return Engine(bundled_policies, get_plugin_manager(load_entrypoints=False))


def ticket(channel="email", at="2026-11-27 21:00", **kw) -> Ticket:
    return Ticket(id=1, channel=channel, created_at=zurich(at), **kw)


def org(plan, **kw) -> Organization:
    return Organization(id=1, name="Acme", plan=plan, **kw)


def test_plus_email_friday_evening_is_due_saturday_morning(engine):
    # Two hours Friday 21:00-23:00, two more from Saturday's 06:00 opening.
    d = engine.evaluate(ticket(), org("plus"), zurich("2026-11-27 21:00"))
    assert d.plan.value == "plus"
    assert d.calendar.value == "email"
    assert d.first_response_due.value == zurich("2026-11-28 08:00")
    assert d.first_response_due.value.utcoffset() == dt.timedelta(hours=1)
    assert set(d.tag_names) == {"plan:plus", "hours:email"}
    assert d.priority.value == "2 normal"


@pytest.mark.parametrize(
    "plan, channel, at, due",
    [
        ("plus", "phone", "2026-11-27 18:00", "2026-11-30 09:00"),  # 1h Fri, 3h from Mon 06:00
        ("pro", "phone", "2026-11-27 18:30", "2026-11-30 07:30"),
        ("enterprise", "phone", "2026-11-28 10:00", "2026-11-30 07:00"),  # Saturday: phone closed
        ("enterprise", "web", "2026-11-28 10:00", "2026-11-28 11:00"),  # web counts on e-mail hours
        ("pro", "chat", "2026-11-29 22:30", "2026-11-30 07:30"),
        ("plus", "carrier-pigeon", "2026-11-27 05:00", "2026-11-27 10:00"),  # unknown channel: e-mail hours
    ],
)
def test_first_response_due_counts_the_channel_hours(engine, plan, channel, at, due):
    d = engine.evaluate(ticket(channel, at), org(plan), zurich(at))
    assert d.first_response_due.value == zurich(due)


def test_standard_guarantees_no_response_time(engine):
    d = engine.evaluate(ticket(), org("standard"), zurich("2026-11-27 21:00"))
    assert d.first_response_due.value is None
    assert "promptly" in d.first_response_due.reason
    assert d.escalation is None
    assert "No guaranteed response time" in d.note_text


def test_organization_without_plan_gets_the_default(engine):
    d = engine.evaluate(ticket(), Organization(id=2, name="Nobody"), zurich("2026-11-27 21:00"))
    assert d.plan.value == "standard"
    assert "no plan set" in d.plan.reason


def test_unknown_plan_falls_back_to_default_and_says_so(engine):
    d = engine.evaluate(ticket(), org("platinum"), zurich("2026-11-27 21:00"))
    assert d.plan.value == "standard"
    assert "'platinum'" in d.plan.reason


def test_granted_emergency_counts_around_the_clock(engine):
    t = ticket("phone", "2026-11-28 03:00", emergency_requested=True, category="infrastructure", language="fr")
    d = engine.evaluate(t, org("enterprise"), zurich("2026-11-28 03:00"))
    e = d.emergency.value
    assert (e.requested, e.eligible) == (True, True)
    assert d.calendar.value == "emergency"
    assert d.first_response_due.value == zurich("2026-11-28 04:00")
    assert "emergency" in d.tag_names
    assert d.priority.value == "3 high"


@pytest.mark.parametrize(
    "plan, category, language, why",
    [
        ("plus", "infrastructure", "en", "does not include 24/7 emergency calls"),
        ("pro", "email", "en", "not one that qualifies"),
        ("pro", "infrastructure", "de", "only in en, fr, not in 'de'"),
        ("pro", "webmastering", "en", "outside the scope"),
    ],
)
def test_refused_emergency_is_handled_on_normal_hours_with_reasons(engine, plan, category, language, why):
    t = ticket("phone", "2026-11-28 03:00", emergency_requested=True, category=category, language=language)
    d = engine.evaluate(t, org(plan), zurich("2026-11-28 03:00"))
    e = d.emergency.value
    assert (e.requested, e.eligible) == (True, False)
    assert any(why in reason for reason in e.reasons), e.reasons
    assert d.calendar.value == "phone"
    assert d.first_response_due.value >= zurich("2026-11-30 06:00")
    assert "emergency" not in d.tag_names
    assert "Tell the customer why" in d.note_text


def test_every_failed_emergency_condition_is_listed(engine):
    t = ticket("phone", emergency_requested=True, category="webmastering", language="de")
    d = engine.evaluate(t, org("standard"), zurich("2026-11-27 21:00"))
    assert len(d.emergency.value.reasons) == 4


def test_out_of_scope_request_is_tagged_and_referred(engine):
    d = engine.evaluate(ticket(category="third-party-application"), org("pro"), zurich("2026-11-27 21:00"))
    assert d.scope.value.in_scope is False
    assert "partners" in d.scope.value.referral
    assert "out-of-scope" in d.tag_names
    assert "refer the customer to partners" in d.note_text


def test_account_managers_of_enterprise(engine):
    managers = {"account_manager": "ana@provider.example", "technical_account_manager": "tom@provider.example"}
    d = engine.evaluate(ticket(), org("enterprise", account_managers=managers), zurich("2026-11-27 21:00"))
    assert d.account_managers.value == managers
    assert "Technical account manager: tom@provider.example" in d.note_text


def test_unassigned_role_is_named_in_the_reason(engine):
    d = engine.evaluate(ticket(), org("pro"), zurich("2026-11-27 21:00"))
    assert d.account_managers.value == {}
    assert "not yet assigned" in d.account_managers.reason and "account_manager" in d.account_managers.reason


def test_plus_has_no_account_manager_even_if_one_is_recorded(engine):
    d = engine.evaluate(ticket(), org("plus", account_managers={"account_manager": "x"}), zurich("2026-11-27 21:00"))
    assert d.account_managers.value == {}


@pytest.mark.parametrize(
    "now, step, tags, priority",
    [
        ("2026-11-27 22:00", None, set(), "2 normal"),
        ("2026-11-28 06:59", None, set(), "2 normal"),
        ("2026-11-28 07:00", "warning", {"sla:warning"}, "2 normal"),  # 3h of 4h: 75 %
        ("2026-11-28 07:59", "warning", {"sla:warning"}, "2 normal"),
        ("2026-11-28 08:00", "breach", {"sla:breached"}, "3 high"),  # due exactly now
    ],
)
def test_escalation_ladder(engine, now, step, tags, priority):
    d = engine.evaluate(ticket(), org("plus"), zurich(now))
    state = d.escalation.value
    assert (state.step.name if state.step else None) == step
    assert state.due == {"warning": zurich("2026-11-28 07:00"), "breach": zurich("2026-11-28 08:00")}
    assert {t for t in d.tag_names if t.startswith("sla:")} == tags
    assert d.priority.value == priority


def test_first_response_stops_the_clock(engine):
    t = ticket(first_response_at=zurich("2026-11-28 06:30"))
    d = engine.evaluate(t, org("plus"), zurich("2026-11-28 09:00"))
    assert d.escalation.value.step is None
    assert "met the deadline" in d.escalation.reason


def test_agent_raised_priority_is_never_lowered(engine):
    d = engine.evaluate(ticket(priority="3 high"), org("plus"), zurich("2026-11-27 21:00"))
    assert d.priority.value == "3 high"


def test_every_field_says_which_hook_set_it(engine):
    d = engine.evaluate(ticket(emergency_requested=True, category="infrastructure", language="en"),
                        org("pro"), zurich("2026-11-27 21:00"))
    sources = {
        "plan": d.plan.source, "scope": d.scope.source, "emergency": d.emergency.source,
        "calendar": d.calendar.source, "due": d.first_response_due.source,
        "managers": d.account_managers.source, "escalation": d.escalation.source, "priority": d.priority.source,
    }
    assert sources == {
        "plan": "policydesk.tier", "scope": "policydesk.scope", "emergency": "policydesk.emergency",
        "calendar": "policydesk.hours", "due": "policydesk.sla", "managers": "policydesk.account_manager",
        "escalation": "policydesk.sla", "priority": "policydesk.tier",
    }
    assert all(c.reason for c in d.tags + d.notes)


def test_naive_instants_are_refused(engine):
    naive = Ticket(id=1, channel="email", created_at=dt.datetime(2026, 11, 27, 21))
    with pytest.raises(ValueError, match="timezone-aware"):
        engine.evaluate(naive, org("plus"), zurich("2026-11-27 21:00"))


def test_reasons_and_notes_written_when_read_are_the_same_decision(engine):
    # Reasons given as callables and the notes are written when first read; a decision
    # read after a copy or dataclasses.replace says the same as one read at once.
    import copy
    import dataclasses

    at = zurich("2026-11-27 21:00")
    pending = ((at + dt.timedelta(minutes=30), None),)
    cases = [
        (ticket(), org("plus"), at + dt.timedelta(hours=12)),  # escalation reached: notifications
        (ticket(state="pending reminder", paused=pending), org("pro", account_managers={"account_manager": "ana"}), at),
        (ticket(channel="phone", category="infrastructure", language="en", emergency_requested=True),
         org("enterprise"), at),
    ]
    for t, o, now in cases:
        read_at_once = engine.evaluate(t, o, now)
        expected = (repr(read_at_once), read_at_once.note_text)
        for later in (copy.copy(engine.evaluate(t, o, now)),
                      dataclasses.replace(engine.evaluate(t, o, now)),
                      engine.evaluate(t, o, now).with_()):
            assert (repr(later), later.note_text) == expected
            assert later == read_at_once
        assert "_write_" not in repr(read_at_once) and read_at_once.note_text


def test_a_reason_given_as_a_callable_is_written_once():
    import pickle

    from plugin.model import Contribution, Verdict

    written = []

    def reason():
        written.append(1)
        return "because"

    verdict = Verdict(1, "site", reason)
    assert written == []
    assert verdict.reason == "because" and verdict.reason == "because"
    assert written == [1]
    assert verdict == Verdict(1, "site", "because") and hash(verdict) == hash(Verdict(1, "site", "because"))
    assert Contribution("x", "site", lambda: "why").reason == "why"
    assert pickle.loads(pickle.dumps(Verdict(2, "site", lambda: "later"))) == Verdict(2, "site", "later")
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        verdict.nope  # noqa: B018
