"""Subscription rules: plan changes, eligibility and commitments. Pure values and functions.

The decisions are hooks (`plugin.hookspecs.policydesk_plan_eligibility`,
``policydesk_commitment``, ``policydesk_plan_change``) whose built-ins
(`plugin.hooks.subscription`) call the pure functions here; billing asks
`SubscriptionRules.rule` (or `plugin.engine.Engine.subscriptions`) and only carries the
ruling out. Everything is driven by the policies: plan ranks (a higher rank is a higher
plan), ``plan.paid``, ``plan.minimum_commitment_months``, ``plan.open_to_partners`` and
``policies.plan_changes`` (``upgrade: immediate``, ``downgrade: never | after_commitment``,
``cancel: after_commitment | any_time``). No plan name is written here.

A commitment "runs until" its end date: a cancellation (or a downgrade, where allowed)
takes effect at the earliest on that date, and one effective later than the day it is
sent is *scheduled* (``Ruling.scheduled``): the plan stays until ``Ruling.effective``.
``start + 6 months`` is the same day of the month six months later, clamped to the month's
last day (2026-08-31 + 6 months = 2027-02-28).
"""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from plugin.model import Organization, Policies, Verdict

if TYPE_CHECKING:
    import pluggy

__all__ = [
    "ChangeRequest",
    "Current",
    "Ruling",
    "Subscription",
    "SubscriptionRules",
    "add_months",
    "commitment_end",
    "commitment_problem",
    "current_subscription",
    "decide",
    "plan_eligibility",
]

EventType = Literal[
    "subscription.created", "subscription.plan_changed", "subscription.cancelled", "subscription.renewed"
]
#: What a ruling does: a first or a higher plan, the same plan again, a lower plan, a
#: cancellation, a renewal; or why it cannot (a plan the organization may not have, a
#: commitment shorter than the plan's minimum).
Kind = Literal["upgrade", "unchanged", "downgrade", "cancel", "renewal", "ineligible", "commitment"]


def add_months(day: dt.date, months: int) -> dt.date:
    """``day`` plus whole calendar months, clamped to the end of the month."""
    index = day.year * 12 + (day.month - 1) + months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return dt.date(year, month + 1, min(day.day, last))


def commitment_end(start: dt.date, *, months: int | None = None, end: dt.date | None = None) -> dt.date:
    """The end of a commitment given either as a number of months from ``start`` or as a date."""
    if (months is None) == (end is None):
        raise ValueError("give exactly one of months and end")
    return end if end is not None else add_months(start, months)  # type: ignore[arg-type]


def commitment_problem(
    policies: Policies, plan: str, start: dt.date, end: dt.date, months: int | None = None
) -> str | None:
    """Why a commitment is too short for ``plan`` (paid plans: at least the plan's
    ``minimum_commitment_months``), or ``None`` when it is long enough."""
    spec = policies.plans[plan]
    minimum = spec.minimum_commitment_months if spec.paid else 0
    if end < start:
        return f"the commitment ends {end.isoformat()}, before its start {start.isoformat()}"
    if minimum <= 0:
        return None
    earliest = add_months(start, minimum)
    if end >= earliest:
        return None
    given = f"a commitment of {months} month{'s' if months != 1 else ''}" if months is not None else (
        f"a commitment ending {end.isoformat()}")
    return (f"{given} is shorter than the {minimum}-month minimum of plan {plan!r}"
            f" (from {start.isoformat()} it must run until at least {earliest.isoformat()})")


def plan_eligibility(policies: Policies, organization: Organization, plan: str) -> tuple[bool, str]:
    """Whether ``organization`` may be on ``plan``, and why: a partner may take only the paid
    plans marked ``open_to_partners`` (the seed: "Partners can benefit from" Plus)."""
    spec = policies.plans[plan]
    who = f"organization {organization.name!r}" if organization.name else "the organization"
    if not organization.partner:
        return True, f"{who} is a customer; every plan is open to customers"
    if not spec.paid or spec.open_to_partners:
        return True, f"{who} is a partner, and the {spec.title} plan is open to partners"
    open_plans = [p.title for p in sorted(policies.plans.values(), key=lambda p: p.rank)
                  if p.paid and p.open_to_partners]
    listing = ", ".join(open_plans) if open_plans else "no paid plan"
    return False, f"{who} is a partner; the {spec.title} plan is not open to partners (open to partners: {listing})"


@dataclass(frozen=True)
class Subscription:
    """What is known of the organization's subscription (``None`` fields: unknown)."""

    plan: str
    commitment_end: dt.date | None = None
    billing_period: str | None = None
    #: Where it was read: ``"store"`` (policydesk's own record) or ``"zammad"`` (the
    #: organization's attributes, for an organization billing never told policydesk about).
    source: str = "store"


#: The name billing used until now.
Current = Subscription


def current_subscription(
    policies: Policies, known: Subscription | None, organization: Organization | None
) -> Subscription | None:
    """The subscription a billing event changes.

    policydesk's own record when it has one; else, for an organization it does not know,
    the plan and commitment already in Zammad (a desk onboarded with customers on paid
    plans), so that a lower plan inside that commitment is a refused downgrade, not a
    silent one. ``None``: the organization is on the default plan with no commitment.
    """
    if known is not None:
        return known
    if organization is None or organization.plan not in policies.plans:
        return None
    if not policies.plans[organization.plan].paid:  # type: ignore[index]
        return None
    return Subscription(organization.plan, organization.commitment_end, None, source="zammad")  # type: ignore[arg-type]


@dataclass(frozen=True)
class ChangeRequest:
    """A billing event, parsed: what the billing system asks for."""

    type: EventType
    #: The plan asked for (``None`` in a cancellation that does not name it).
    plan: str | None
    #: The day the change takes effect: the subscription's start (created, plan changed,
    #: renewed) or the cancellation's effective day.
    effective: dt.date
    #: End of the commitment the event brings (``None`` for a cancellation).
    commitment_end: dt.date | None = None
    billing_period: str | None = None
    #: The day the event was sent; a cancellation effective after it is scheduled.
    occurred_on: dt.date | None = None


@dataclass(frozen=True)
class Ruling:
    """The answer: allowed or not, why, and the subscription that results."""

    allowed: bool
    kind: Kind
    #: The plan after the change (the current plan when refused).
    plan: str
    #: The commitment end after the change (the current one when refused).
    commitment_end: dt.date | None
    billing_period: str | None
    #: One sentence, for the 409 body and the audit.
    reason: str
    #: When the change takes effect (``None``: at once).
    effective: dt.date | None = None
    #: Allowed, but later: keep the current plan, managers and VIP code until ``effective``.
    scheduled: bool = False


def _later(a: dt.date | None, b: dt.date | None) -> dt.date | None:
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)


def decide(policies: Policies, current: Subscription | None, request: ChangeRequest) -> Ruling:
    """May ``request`` happen to an organization whose subscription is ``current``?

    ``current`` is ``None`` for an organization on the default plan with no commitment
    (see `current_subscription`). Eligibility and commitment length are separate rules
    (`plan_eligibility`, `commitment_problem`); `SubscriptionRules.rule` applies all three.
    """
    rules = policies.plan_changes
    now_plan = current.plan if current is not None and current.plan in policies.plans else policies.default_plan
    now_end = current.commitment_end if current is not None else None
    now_period = current.billing_period if current is not None else None
    on_paid = policies.plans[now_plan].paid
    seen_in = " (as Zammad has it)" if current is not None and current.source == "zammad" else ""

    def refuse(kind: Kind, reason: str) -> Ruling:
        return Ruling(False, kind, now_plan, now_end, now_period, reason)

    if request.type == "subscription.cancelled":
        if not on_paid:
            return refuse("cancel", f"there is no paid subscription to cancel (the organization is on {now_plan!r})")
        if rules.cancel == "after_commitment" and now_end is not None and request.effective < now_end:
            return refuse("cancel", f"commitment runs until {now_end.isoformat()}{seen_in}: a cancellation effective"
                                    f" {request.effective.isoformat()} is not possible before it ends")
        later = request.occurred_on is not None and request.effective > request.occurred_on
        when = f"scheduled for {request.effective.isoformat()}; {now_plan!r} stays until then" if later else (
            f"effective {request.effective.isoformat()}")
        return Ruling(True, "cancel", policies.default_plan, None, None,
                      f"cancelled {now_plan!r} {when}; then back to {policies.default_plan!r}",
                      effective=request.effective, scheduled=later)

    plan = request.plan
    assert plan is not None and plan in policies.plans, "validate the plan before deciding"
    period = request.billing_period or now_period

    if request.type == "subscription.renewed":
        if not on_paid:
            return refuse("renewal", f"there is no paid subscription to renew (the organization is on {now_plan!r})")
        if plan != now_plan:
            return refuse("renewal", f"a renewal keeps the plan: the organization is on {now_plan!r}, the renewal"
                                     f" names {plan!r}; send subscription.plan_changed to change plan")
        end = _later(now_end, request.commitment_end)
        return Ruling(True, "renewal", plan, end, period,
                      f"renewed {plan!r}; commitment runs until {end.isoformat() if end else 'no end'}")

    # subscription.created / subscription.plan_changed: the same rules (a "created" for a
    # lower plan during a running subscription is a downgrade all the same).
    old_rank, new_rank = policies.plans[now_plan].rank, policies.plans[plan].rank
    paid = policies.plans[plan].paid
    if new_rank > old_rank:
        end = _later(now_end, request.commitment_end) if paid else None
        return Ruling(True, "upgrade", plan, end, period,
                      f"{now_plan!r} -> {plan!r}: upgrades apply at once")
    if new_rank == old_rank:
        end = _later(now_end, request.commitment_end) if paid else None
        return Ruling(True, "unchanged", plan, end, period, f"already on {plan!r}{seen_in}")
    if rules.downgrade == "never":
        return refuse("downgrade", f"{now_plan!r}{seen_in} -> {plan!r} is a downgrade: plans can be upgraded at any"
                                   " time, never downgraded")
    if now_end is not None and request.effective < now_end:
        return refuse("downgrade", f"commitment runs until {now_end.isoformat()}{seen_in}: {now_plan!r} -> {plan!r}"
                                   " is a downgrade, possible only once the commitment has ended")
    return Ruling(True, "downgrade", plan, request.commitment_end if paid else None, period,
                  f"{now_plan!r} -> {plan!r} after the end of the commitment")


class SubscriptionRules:
    """The subscription hooks, called in order for billing: eligibility, commitment, change.

    :param policies: The policies in force.
    :param pm: The plugin manager (`plugin.manager.get_plugin_manager` when ``None``), so a
        site plugin's answers count here as on tickets.
    """

    def __init__(self, policies: Policies, pm: pluggy.PluginManager | None = None) -> None:
        from plugin.manager import Hooks, get_plugin_manager

        self.policies = policies
        self.hooks = Hooks(pm if pm is not None else get_plugin_manager())

    def eligibility(self, organization: Organization, plan: str) -> Verdict[bool]:
        """May ``organization`` be on ``plan``? (`plugin.hookspecs.policydesk_plan_eligibility`)"""
        verdict = self.hooks.plan_eligibility(self.policies, organization, plan)
        return verdict if verdict is not None else Verdict(True, "policydesk", "no plugin had an opinion")

    def commitment(self, organization: Organization, plan: str, start: dt.date, end: dt.date,
                   months: int | None = None) -> Verdict[str | None]:
        """Why the commitment is too short (``value``), or ``value`` ``None`` when it is long enough."""
        verdict = self.hooks.commitment(self.policies, organization, plan, start, end, months)
        return verdict if verdict is not None else Verdict(None, "policydesk", "no plugin had an opinion")

    def rule(self, organization: Organization, current: Subscription | None, change: ChangeRequest) -> Verdict[Ruling]:
        """The ruling on ``change``: refused when the plan is not open to the organization,
        else what `policydesk_plan_change` says (the built-in: `decide`)."""
        now_plan = current.plan if current is not None else self.policies.default_plan
        if change.plan is not None and change.type != "subscription.cancelled":
            eligible = self.eligibility(organization, change.plan)
            if not eligible.value:
                end = current.commitment_end if current is not None else None
                period = current.billing_period if current is not None else None
                ruling = Ruling(False, "ineligible", now_plan, end, period, eligible.reason)
                return Verdict(ruling, eligible.source, eligible.reason)
        base = current if current is not None else Subscription(self.policies.default_plan)
        verdict = self.hooks.plan_change(self.policies, organization, base, change)
        if verdict is None:
            ruling = decide(self.policies, current, change)
            return Verdict(ruling, "policydesk", ruling.reason)
        return verdict
