"""The tag vocabulary and tag changes: what policydesk contributed and no longer wants goes;
what nobody contributed stays."""

from __future__ import annotations

import dataclasses

import pytest
from support import zurich

from plugin import hookimpl
from plugin.engine import Engine
from plugin.manager import get_plugin_manager
from plugin.model import Contribution, EscalationStep, Organization, Ticket
from plugin.tags import EMERGENCY_TAG, hours_tag, plan_tag, sla_tags, tag_changes


def test_a_tag_contributed_earlier_and_no_longer_wanted_is_removed():
    add, remove = tag_changes({"plan:plus", "hours:email", "escalated"}, {"plan:plus", "hours:email", "escalated",
                                                                           "vip-customer"}, ["plan:pro", "hours:email"])
    assert add == ("plan:pro",)
    assert remove == ("escalated", "plan:plus")  # a ladder tag too; the agent's vip-customer stays


def test_a_tag_nobody_contributed_is_never_removed_even_if_it_looks_like_ours():
    # An agent typed plan:enterprise by hand: policydesk never applied it, so it stays.
    add, remove = tag_changes({"plan:plus"}, {"plan:plus", "plan:enterprise"}, ["plan:plus"])
    assert (add, remove) == ((), ())


def test_without_a_record_of_what_was_applied_the_vocabulary_says_which_tags_are_ours():
    vocabulary = frozenset({"plan:plus", "plan:pro", "sla:warning"})
    add, remove = tag_changes(None, {"plan:plus", "sla:warning", "customer:angry"}, ["plan:pro"], vocabulary)
    assert add == ("plan:pro",)
    assert remove == ("plan:plus", "sla:warning")


def test_a_wanted_tag_already_there_is_neither_added_nor_removed():
    assert tag_changes({"plan:pro"}, {"plan:pro"}, ["plan:pro"]) == ((), ())


def test_vocabulary_names_every_builtin_tag_including_custom_ladder_tags(bundled_policies):
    plans = dict(bundled_policies.plans)
    plans["pro"] = dataclasses.replace(plans["pro"], escalation=(EscalationStep("late", 50.0, ("escalated",)),))
    policies = dataclasses.replace(bundled_policies, plans=plans)
    engine = Engine(policies, get_plugin_manager(load_entrypoints=False))
    vocabulary = engine.tag_vocabulary()
    for tag in ("plan:standard", "plan:enterprise", "hours:phone", "hours:emergency", "sla:warning", "sla:breached",
                "escalated", "emergency", "emergency:refused", "out-of-scope", "partner", "advice:queued"):
        assert tag in vocabulary, tag
    assert all(c.source == "policydesk.vocabulary" and c.reason for c in engine.tag_vocabulary_items())


def test_every_tag_the_builtins_contribute_is_in_the_vocabulary(engine_factory):
    engine = engine_factory()
    vocabulary = engine.tag_vocabulary()
    seen = set()
    cases = [
        (Ticket(1, "phone", zurich("2026-11-28 03:00"), "infrastructure", "fr", True), Organization(1, plan="pro")),
        (Ticket(2, "email", zurich("2026-11-28 03:00"), "infrastructure", "fr", True), Organization(2, plan="pro")),
        (Ticket(3, "email", zurich("2026-11-27 10:00"), "webmastering"), Organization(3, plan="plus", partner=True)),
        (Ticket(4, "email", zurich("2026-11-27 20:00"), "advice"), Organization(4, plan="enterprise")),
        (Ticket(5, "email", zurich("2026-11-27 10:00"), "advice"), Organization(5, plan="pro", partner=True)),
    ]
    for ticket, organization in cases:
        for now in (ticket.created_at, zurich("2026-12-05 12:00")):
            seen.update(engine.evaluate(ticket, organization, now).tag_names)
    assert seen <= vocabulary, seen - vocabulary
    assert {"emergency", "emergency:refused", "partner", "plan:ineligible", "advice:queued", "advice:not-included",
            "sla:breached", "out-of-scope"} <= seen


class SiteTags:
    @hookimpl
    def policydesk_tags(self, request, decision):
        return [Contribution("acme:reviewed", "acme", "reviewed weekly")]

    @hookimpl
    def policydesk_tag_vocabulary(self, policies):
        return [Contribution("acme:reviewed", "acme", "acme tags reviewed tickets")]


def test_a_site_plugin_adds_its_tags_to_the_vocabulary(bundled_policies):
    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(SiteTags(), name="acme")
    try:
        engine = Engine(bundled_policies, pm)
        assert "acme:reviewed" in engine.tag_vocabulary()
        item = next(c for c in engine.tag_vocabulary_items() if c.value == "acme:reviewed")
        assert (item.source, item.reason) == ("acme", "acme tags reviewed tickets")
        # Once the plugin stops contributing it, the tag goes (when it was applied before).
        _, remove = tag_changes(None, {"acme:reviewed", "plan:plus"}, ["plan:plus"], engine.tag_vocabulary())
        assert remove == ("acme:reviewed",)
    finally:
        pm.unregister(name="acme")


def test_sla_tags_are_the_tags_the_decisions_write(bundled_policies, engine_factory):
    tags = sla_tags(bundled_policies)
    assert tags.plans["pro"] == plan_tag("pro") == "plan:pro"
    assert tags.calendars["phone"] == hours_tag("phone") == "hours:phone"
    assert tags.emergency == EMERGENCY_TAG == "emergency"
    d = engine_factory().evaluate(Ticket(1, "phone", zurich("2026-11-28 03:00"), "infrastructure", "en", True),
                                  Organization(1, plan="pro"), zurich("2026-11-28 03:00"))
    assert {tags.plans["pro"], tags.calendars["emergency"], tags.emergency} <= set(d.tag_names)


@pytest.fixture
def engine_factory(bundled_policies):
    def make(pm=None):
        return Engine(bundled_policies, pm or get_plugin_manager(load_entrypoints=False))
    return make
