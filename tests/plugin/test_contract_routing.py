"""Emergencies are calls, routing, customised advice, partners: each rule and its override."""

from __future__ import annotations

import dataclasses

import pytest
from support import zurich

from plugin import hookimpl
from plugin.engine import Engine
from plugin.manager import get_plugin_manager
from plugin.model import AdviceVerdict, Organization, Routing, Ticket, Verdict

ENTERPRISE = Organization(2, "Big", "enterprise", {"account_manager": "ana@provider.example",
                                                   "technical_account_manager": "tom@provider.example"})


@pytest.fixture(scope="module")
def engine(bundled_policies):
    return Engine(bundled_policies, get_plugin_manager(load_entrypoints=False))


def emergency(channel, language="en", at="2026-11-28 03:00", category="infrastructure"):
    return Ticket(1, channel, zurich(at), category, language, True)


# --------------------------------------------------------------------------- emergencies are calls


def test_an_emergency_by_email_is_refused_because_it_is_not_a_call(engine):
    d = engine.evaluate(emergency("email"), Organization(1, plan="pro"), zurich("2026-11-28 03:00"))
    e = d.emergency.value
    assert (e.requested, e.eligible, e.refused_for) == (True, False, ("channel",))
    assert "by phone only, not by email" in d.emergency.reason
    assert "emergency:refused" in d.tag_names and "emergency" not in d.tag_names
    assert d.calendar.value == "email"
    assert "Ready reply (en):" in d.note_text and "call us by phone" in e.reply


@pytest.mark.parametrize("language, words", [
    ("fr", "urgence 24/7"), ("de", "24/7-Notfall"), ("it", "emergenza 24/7"), ("en", "24/7 emergency"),
    ("es", "24/7 emergency"),  # no Spanish reply in the policies: the fallback language
])
def test_the_ready_reply_is_in_the_customers_language_and_says_why(engine, language, words):
    d = engine.evaluate(emergency("phone", language), Organization(1, plan="plus"), zurich("2026-11-28 03:00"))
    e = d.emergency.value
    assert not e.eligible and words in e.reply
    assert e.reply_language == (language if language != "es" else "en")
    assert "plan" in e.refused_for


def test_a_german_speaker_is_told_in_german_that_emergencies_are_french_and_english_only(engine):
    d = engine.evaluate(emergency("phone", "de"), Organization(1, plan="pro"), zurich("2026-11-28 03:00"))
    e = d.emergency.value
    assert e.refused_for == ("language",)
    assert "Französisch und Englisch" in e.reply


def test_the_emergency_channels_are_policy(bundled_policies):
    scope = dataclasses.replace(bundled_policies.scope, emergency_channels=frozenset({"phone", "email"}))
    engine = Engine(dataclasses.replace(bundled_policies, scope=scope), get_plugin_manager(load_entrypoints=False))
    d = engine.evaluate(emergency("email"), Organization(1, plan="pro"), zurich("2026-11-28 03:00"))
    assert d.emergency.value.eligible and "emergency" in d.tag_names


# --------------------------------------------------------------------------- routing


def test_an_accepted_emergency_goes_to_the_infrastructure_group(engine):
    d = engine.evaluate(emergency("phone"), ENTERPRISE, zurich("2026-11-28 03:00"))
    assert d.routing.value == Routing("Infrastructure", None)
    assert "granted 24/7 emergency" in d.routing.reason and d.routing.source == "policydesk.routing"


@pytest.mark.parametrize("plan, category, group", [
    ("pro", "billing", "Billing"),          # the category first
    ("pro", "hosting", "Premium support"),  # then the plan
    ("standard", "hosting", None),          # no rule: stays where it is
])
def test_routing_by_category_then_plan(engine, plan, category, group):
    t = Ticket(1, "email", zurich("2026-11-30 10:00"), category)
    d = engine.evaluate(t, Organization(1, plan=plan), zurich("2026-11-30 10:00"))
    assert d.routing.value.group == group


def test_a_site_plugin_routes(bundled_policies):
    class VipDesk:
        @hookimpl
        def policydesk_routing(self, request, decision):
            if request.organization.name == "Big":
                return Verdict(Routing("VIP desk", "boss@provider.example"), "acme.vip", "Big has its own desk")
            return None

    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(VipDesk(), name="acme.vip")
    engine = Engine(bundled_policies, pm)
    d = engine.evaluate(emergency("phone"), ENTERPRISE, zurich("2026-11-28 03:00"))
    assert (d.routing.value, d.routing.source) == (Routing("VIP desk", "boss@provider.example"), "acme.vip")
    other = engine.evaluate(emergency("phone"), Organization(3, "Other", "pro"), zurich("2026-11-28 03:00"))
    assert other.routing.source == "policydesk.routing"


# --------------------------------------------------------------------------- customised advice


def advice(at):
    return Ticket(1, "email", zurich(at), "advice")


def test_enterprise_advice_within_the_advice_hours_goes_to_the_technical_account_manager(engine):
    d = engine.evaluate(advice("2026-11-30 10:00"), ENTERPRISE, zurich("2026-11-30 10:00"))
    assert d.advice.value == AdviceVerdict(True, True, True, None)
    assert d.routing.value == Routing("Advice", "tom@provider.example")
    assert "advice" in d.tag_names and "advice:queued" not in d.tag_names


def test_enterprise_advice_outside_the_hours_waits_for_the_next_advice_window(engine):
    d = engine.evaluate(advice("2026-11-28 11:00"), ENTERPRISE, zurich("2026-11-28 11:00"))  # Saturday
    assert d.advice.value.queued_until == zurich("2026-11-30 09:00")
    assert d.routing.value == Routing("Advice", None)
    assert "advice:queued" in d.tag_names
    assert "Customised advice queued" in d.note_text and "Mon 30 Nov 2026 09:00" in d.note_text


def test_advice_from_another_plan_gets_a_note_that_it_is_an_enterprise_service(engine):
    d = engine.evaluate(advice("2026-11-30 10:00"), Organization(1, plan="pro"), zurich("2026-11-30 10:00"))
    assert d.advice.value == AdviceVerdict(True, False)
    assert "Customised advice is a service of Enterprise support" in d.note_text
    assert "advice:not-included" in d.tag_names
    assert d.routing.value.group == "Premium support"  # not the advice group


def test_a_site_plugin_decides_advice(bundled_policies):
    class AdviceForPro:
        @hookimpl
        def policydesk_advice(self, request, decision):
            if request.ticket.category == "advice" and decision.plan.value == "pro":
                return Verdict(AdviceVerdict(True, True, True), "acme.advice", "Pro has advice by addendum")
            return None

    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(AdviceForPro(), name="acme.advice")
    d = Engine(bundled_policies, pm).evaluate(advice("2026-11-30 10:00"), Organization(1, plan="pro"),
                                              zurich("2026-11-30 10:00"))
    assert d.advice.source == "acme.advice" and d.routing.value.group == "Advice"


# --------------------------------------------------------------------------- partners


def test_partner_tickets_are_tagged_and_a_plan_not_open_to_partners_is_flagged(engine):
    t = Ticket(1, "email", zurich("2026-11-30 10:00"))
    plus = engine.evaluate(t, Organization(1, plan="plus", partner=True), zurich("2026-11-30 10:00"))
    assert plus.eligibility.value is True and "partner" in plus.tag_names
    assert "plan:ineligible" not in plus.tag_names
    pro = engine.evaluate(t, Organization(1, plan="pro", partner=True), zurich("2026-11-30 10:00"))
    assert pro.eligibility.value is False and "plan:ineligible" in pro.tag_names
    assert "not open to partners (open to partners: Plus support)" in pro.eligibility.reason
    customer = engine.evaluate(t, Organization(1, plan="pro"), zurich("2026-11-30 10:00"))
    assert customer.eligibility.value is True and "partner" not in customer.tag_names
