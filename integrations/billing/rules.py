"""What the contract allows when a plan changes, and commitment arithmetic. Pure.

Everything is driven by the policies: plan ranks (a higher rank is a higher plan),
``plan.paid``, ``plan.minimum_commitment_months`` and ``policies.plan_changes``
(``upgrade: immediate``, ``downgrade: never | after_commitment``,
``cancel: after_commitment | any_time``). No plan name is written here.

A commitment "runs until" its end date: a cancellation (or a downgrade, where allowed)
takes effect at the earliest on that date. ``start + 6 months`` is the same day of the
month six months later, clamped to the month's last day (2026-08-31 + 6 months =
2027-02-28).
"""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass
from typing import Literal

from plugin.model import Policies

__all__ = [
    "ChangeRequest",
    "Current",
    "Ruling",
    "add_months",
    "commitment_end",
    "commitment_problem",
    "decide",
]

EventType = Literal[
    "subscription.created", "subscription.plan_changed", "subscription.cancelled", "subscription.renewed"
]
#: What a ruling does: a first or a higher plan, the same plan again, a lower plan, a
#: cancellation, a renewal; a plan the organization may not take (a partner).
Kind = Literal["upgrade", "unchanged", "downgrade", "cancel", "renewal", "ineligible"]


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


@dataclass(frozen=True)
class Current:
    """What policydesk knows of the organization's subscription (``None`` fields: unknown)."""

    plan: str
    commitment_end: dt.date | None = None
    billing_period: str | None = None


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


def _later(a: dt.date | None, b: dt.date | None) -> dt.date | None:
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)


def decide(policies: Policies, current: Current | None, request: ChangeRequest) -> Ruling:
    """May ``request`` happen to an organization whose subscription is ``current``?

    ``current`` is ``None`` for an organization billing never told us about (it is on the
    default plan, with no commitment).
    """
    rules = policies.plan_changes
    now_plan = current.plan if current is not None and current.plan in policies.plans else policies.default_plan
    now_end = current.commitment_end if current is not None else None
    now_period = current.billing_period if current is not None else None
    on_paid = policies.plans[now_plan].paid

    def refuse(kind: Kind, reason: str) -> Ruling:
        return Ruling(False, kind, now_plan, now_end, now_period, reason)

    if request.type == "subscription.cancelled":
        if not on_paid:
            return refuse("cancel", f"there is no paid subscription to cancel (the organization is on {now_plan!r})")
        if rules.cancel == "after_commitment" and now_end is not None and request.effective < now_end:
            return refuse("cancel", f"commitment runs until {now_end.isoformat()}: a cancellation effective"
                                    f" {request.effective.isoformat()} is not possible before it ends")
        return Ruling(True, "cancel", policies.default_plan, None, None,
                      f"cancelled {now_plan!r} effective {request.effective.isoformat()};"
                      f" back to {policies.default_plan!r}")

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
        return Ruling(True, "unchanged", plan, end, period, f"already on {plan!r}")
    if rules.downgrade == "never":
        return refuse("downgrade", f"{now_plan!r} -> {plan!r} is a downgrade: plans can be upgraded at any time,"
                                   " never downgraded")
    if now_end is not None and request.effective < now_end:
        return refuse("downgrade", f"commitment runs until {now_end.isoformat()}: {now_plan!r} -> {plan!r} is"
                                   " a downgrade, possible only once the commitment has ended")
    return Ruling(True, "downgrade", plan, request.commitment_end if paid else None, period,
                  f"{now_plan!r} -> {plan!r} after the end of the commitment")
