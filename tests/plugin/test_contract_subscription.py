"""Subscription rules as hooks: eligibility, commitment, plan change; and their overrides."""

from __future__ import annotations

import datetime as dt

import pytest

from plugin import hookimpl
from plugin.engine import Engine
from plugin.manager import get_plugin_manager
from plugin.model import Organization, Verdict
from plugin.subscription import (
    ChangeRequest,
    Ruling,
    Subscription,
    SubscriptionRules,
    current_subscription,
)

D = dt.date.fromisoformat


@pytest.fixture
def rules(bundled_policies):
    return Engine(bundled_policies, get_plugin_manager(load_entrypoints=False)).subscriptions


def change(kind, plan, effective, end=None, occurred=None):
    return ChangeRequest(f"subscription.{kind}", plan, D(effective), D(end) if end else None, "monthly",
                         D(occurred) if occurred else None)


CUSTOMER = Organization(1, "Acme")
PARTNER = Organization(2, "Integrator", partner=True)


def test_upgrades_any_time_never_downgrades(rules):
    pro = Subscription("pro", D("2027-06-01"))
    up = rules.rule(CUSTOMER, pro, change("plan_changed", "enterprise", "2026-12-01", "2027-06-01"))
    assert (up.value.allowed, up.value.kind, up.value.plan) == (True, "upgrade", "enterprise")
    down = rules.rule(CUSTOMER, pro, change("plan_changed", "plus", "2026-12-01", "2027-06-01"))
    assert (down.value.allowed, down.value.kind, down.value.plan) == (False, "downgrade", "pro")
    assert down.source == "policydesk.subscription"


def test_partners_may_subscribe_plus_but_not_pro(rules):
    plus = rules.rule(PARTNER, None, change("created", "plus", "2026-12-01", "2027-06-01"))
    assert plus.value.allowed and plus.value.plan == "plus"
    pro = rules.rule(PARTNER, None, change("created", "pro", "2026-12-01", "2027-06-01"))
    assert (pro.value.allowed, pro.value.kind) == (False, "ineligible")
    assert "not open to partners" in pro.value.reason
    assert rules.eligibility(CUSTOMER, "pro").value is True


def test_a_cancellation_on_the_commitment_end_is_accepted_and_scheduled(rules):
    pro = Subscription("pro", D("2027-06-01"))
    ruling = rules.rule(CUSTOMER, pro, change("cancelled", None, "2027-06-01", occurred="2026-12-01")).value
    assert (ruling.allowed, ruling.kind, ruling.scheduled, ruling.effective) == (True, "cancel", True, D("2027-06-01"))
    assert "stays until then" in ruling.reason
    early = rules.rule(CUSTOMER, pro, change("cancelled", None, "2027-05-31", occurred="2026-12-01")).value
    assert (early.allowed, early.plan) == (False, "pro")
    today = rules.rule(CUSTOMER, pro, change("cancelled", None, "2027-06-01", occurred="2027-06-01")).value
    assert today.allowed and not today.scheduled


def test_the_commitment_is_at_least_six_months(rules):
    short = rules.commitment(CUSTOMER, "pro", D("2026-12-01"), D("2027-05-31"), None)
    assert "shorter than the 6-month minimum" in short.value
    ok = rules.commitment(CUSTOMER, "pro", D("2026-12-01"), D("2027-06-01"), 6)
    assert ok.value is None and "meets" in ok.reason


def test_a_first_event_for_an_unknown_organization_takes_zammads_plan_and_commitment(bundled_policies, rules):
    in_zammad = Organization(5, "Onboarded", "enterprise", commitment_end=D("2027-03-01"))
    current = current_subscription(bundled_policies, None, in_zammad)
    assert current == Subscription("enterprise", D("2027-03-01"), None, "zammad")
    ruling = rules.rule(in_zammad, current, change("created", "plus", "2026-12-01", "2027-06-01")).value
    assert (ruling.allowed, ruling.kind, ruling.plan) == (False, "downgrade", "enterprise")
    assert "as Zammad has it" in ruling.reason
    # policydesk's own record wins; a free plan in Zammad is no subscription.
    known = Subscription("plus", D("2027-01-01"))
    assert current_subscription(bundled_policies, known, in_zammad) is known
    assert current_subscription(bundled_policies, None, Organization(6, plan="standard")) is None


def test_site_plugins_override_every_subscription_hook(bundled_policies):
    class Addendum:
        @hookimpl
        def policydesk_plan_eligibility(self, policies, organization, plan):
            if organization.name == "Integrator" and plan == "pro":
                return Verdict(True, "acme.contracts", "Integrator signed the Pro partner addendum")
            return None

        @hookimpl
        def policydesk_commitment(self, policies, organization, plan, start, end, months):
            return Verdict(None, "acme.contracts", "trial months are allowed") if months == 1 else None

        @hookimpl
        def policydesk_plan_change(self, policies, organization, current, change):
            if change.type == "subscription.plan_changed" and organization.name == "Acme":
                return Verdict(Ruling(True, "downgrade", change.plan, None, None, "goodwill downgrade"),
                               "acme.contracts", "goodwill downgrade")
            return None

    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(Addendum(), name="acme.contracts")
    rules = SubscriptionRules(bundled_policies, pm)
    assert rules.rule(PARTNER, None, change("created", "pro", "2026-12-01", "2027-06-01")).value.allowed
    assert rules.commitment(CUSTOMER, "pro", D("2026-12-01"), D("2027-01-01"), 1).source == "acme.contracts"
    down = rules.rule(CUSTOMER, Subscription("pro", D("2027-06-01")), change("plan_changed", "plus", "2026-12-01"))
    assert (down.value.allowed, down.source) == (True, "acme.contracts")
