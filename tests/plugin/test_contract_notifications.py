"""Who hears of an escalation step and when; priorities raised by a step come back down."""

from __future__ import annotations

import pytest
from support import zurich

from plugin import hookimpl
from plugin.engine import Engine
from plugin.manager import get_plugin_manager
from plugin.model import Notification, Organization, Ticket
from plugin.notification import delivery_time, digest_time

PRO = Organization(1, "Acme", "pro", {"account_manager": "ana@provider.example"})
ENTERPRISE = Organization(2, "Big", "enterprise", {"account_manager": "ana@provider.example",
                                                   "technical_account_manager": "tom@provider.example"})


@pytest.fixture(scope="module")
def engine(bundled_policies):
    return Engine(bundled_policies, get_plugin_manager(load_entrypoints=False))


def test_breach_at_night_is_held_for_the_account_managers_digest(engine):
    # Pro e-mail Friday 21:30: 2 h of e-mail hours -> due 23:30... the e-mail line closes at
    # 23:00, so 1h30 Friday and 30 min Saturday 06:00: breach Saturday 06:30.
    t = Ticket(7, "email", zurich("2026-11-27 21:30"), owner="olga@provider.example")
    d = engine.evaluate(t, PRO, zurich("2026-11-28 07:00"))
    assert d.escalation.value.step.id == "breach"
    by_recipient = {n.recipient: n for n in d.notifications}
    manager = by_recipient["account_manager"]
    assert manager.step_id == "breach" and manager.person == "ana@provider.example"
    assert not manager.immediate
    assert manager.deliver_at == zurich("2026-11-30 09:00")  # Monday's digest, not Saturday
    assert "outside the account manager's hours" in manager.reason and "digest" in manager.reason
    owner = by_recipient["owner"]
    assert owner.immediate and owner.person == "olga@provider.example" and owner.deliver_at == d.now
    # Pro has no technical account manager: nobody is told in that role, and the note names none.
    assert "technical_account_manager" not in by_recipient
    assert "technical account manager" not in d.note_text.lower()


def test_within_the_managers_hours_the_breach_goes_out_at_once(engine):
    t = Ticket(8, "email", zurich("2026-11-30 10:00"))
    d = engine.evaluate(t, ENTERPRISE, zurich("2026-11-30 11:05"))
    roles = {n.recipient: n for n in d.notifications if n.kind == "role"}
    assert set(roles) == {"account_manager", "technical_account_manager"}
    assert all(n.immediate and n.deliver_at == d.now for n in roles.values())
    assert "within the" in roles["account_manager"].reason


def test_a_granted_emergency_reaches_the_manager_at_once_at_night(engine):
    t = Ticket(9, "phone", zurich("2026-11-28 03:00"), "infrastructure", "fr", True)
    d = engine.evaluate(t, ENTERPRISE, zurich("2026-11-28 04:30"))
    assert d.emergency.value.eligible and d.escalation.value.step.id == "breach"
    managers = [n for n in d.notifications if n.kind == "role"]
    assert managers and all(n.immediate for n in managers)
    assert all("urgent" in n.reason for n in managers)


def test_a_plus_breach_notifies_the_owner(engine):
    t = Ticket(10, "email", zurich("2026-11-30 10:00"), owner="olga@provider.example")
    d = engine.evaluate(t, Organization(3, "Small", "plus"), zurich("2026-11-30 14:30"))
    assert [(n.kind, n.person) for n in d.notifications] == [("owner", "olga@provider.example")]


def test_no_notification_before_a_step_or_after_the_first_response(engine):
    t = Ticket(11, "email", zurich("2026-11-30 10:00"))
    assert engine.evaluate(t, PRO, zurich("2026-11-30 10:30")).notifications == ()
    answered = Ticket(11, "email", zurich("2026-11-30 10:00"), first_response_at=zurich("2026-11-30 10:20"))
    assert engine.evaluate(answered, PRO, zurich("2026-11-30 14:00")).notifications == ()


def test_digest_time_is_the_first_digest_tick_at_or_after_the_next_opening(bundled_policies):
    role = bundled_policies.roles["account_manager"]
    calendar = bundled_policies.calendars[role.calendar]
    assert digest_time(role, calendar, zurich("2026-11-27 19:00")) == zurich("2026-11-30 09:00")
    immediate, at, why = delivery_time(bundled_policies, "group", "Support leads", zurich("2026-11-28 03:00"))
    assert immediate and at == zurich("2026-11-28 03:00") and "Support leads" in why


def test_a_site_plugin_adds_a_notification(bundled_policies):
    class Pager:
        @hookimpl
        def policydesk_notifications(self, request, decision):
            if decision.escalation is None or decision.escalation.value.step is None:
                return None
            step = decision.escalation.value.step
            return [Notification(step.id, "group", "on-call", None, True, request.now, "page", "acme.pager",
                                 "acme pages on-call for every step")]

    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(Pager(), name="acme.pager")
    d = Engine(bundled_policies, pm).evaluate(Ticket(12, "email", zurich("2026-11-30 10:00")), PRO,
                                              zurich("2026-11-30 12:30"))
    sources = [n.source for n in d.notifications]
    assert "acme.pager" in sources and "policydesk.notification" in sources


# --------------------------------------------------------------------------- priority


def test_a_priority_raised_by_a_step_returns_to_the_plans_when_the_step_no_longer_holds(engine):
    t = Ticket(13, "email", zurich("2026-11-30 10:00"))
    breached = engine.evaluate(t, PRO, zurich("2026-11-30 12:30"))
    assert breached.priority.value == "3 high"
    # Answered meanwhile; the ticket still has the "3 high" policydesk wrote.
    answered = Ticket(13, "email", zurich("2026-11-30 10:00"), first_response_at=zurich("2026-11-30 12:40"),
                      priority="3 high", applied_priority="3 high")
    d = engine.evaluate(answered, PRO, zurich("2026-11-30 12:45"))
    assert d.priority.value == "2 normal"
    assert "plan's priority" in d.priority.reason


def test_a_priority_an_agent_raised_is_kept(engine):
    t = Ticket(14, "email", zurich("2026-11-30 10:00"), first_response_at=zurich("2026-11-30 10:10"),
               priority="3 high", applied_priority="2 normal")
    d = engine.evaluate(t, PRO, zurich("2026-11-30 10:15"))
    assert d.priority.value == "3 high" and "agent" in d.priority.reason


def test_managers_are_mentioned_only_within_their_hours_or_when_urgent(engine, bundled_policies):
    from plugin.notification import managers_to_mention

    t = Ticket(15, "email", zurich("2026-11-30 10:00"))
    assert managers_to_mention(bundled_policies, engine.evaluate(t, ENTERPRISE, zurich("2026-11-30 10:00"))) == (
        "ana@provider.example", "tom@provider.example")
    night = Ticket(16, "email", zurich("2026-11-28 03:00"))
    assert managers_to_mention(bundled_policies, engine.evaluate(night, ENTERPRISE, zurich("2026-11-28 03:00"))) == ()
    call = Ticket(17, "phone", zurich("2026-11-28 03:00"), "infrastructure", "en", True)
    assert len(managers_to_mention(bundled_policies, engine.evaluate(call, ENTERPRISE, zurich("2026-11-28 03:00")))) == 2
    assert managers_to_mention(bundled_policies, engine.evaluate(t, Organization(3, plan="plus"),
                                                                 zurich("2026-11-30 10:00"))) == ()
