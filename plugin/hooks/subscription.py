"""Subscription rules for billing: who may take which plan, commitment length, plan changes.

The pure rules are in `plugin.subscription`; these built-ins only wrap them as verdicts,
so a site plugin answering the same hook overrides them.
"""

from __future__ import annotations

import datetime as dt

from plugin.hooks.memo import PolicyCache
from plugin.hookspecs import hookimpl
from plugin.model import Organization, Policies, Verdict
from plugin.subscription import (
    ChangeRequest,
    Ruling,
    Subscription,
    commitment_problem,
    decide,
    plan_eligibility,
)

SOURCE = "policydesk.subscription"


_ELIGIBILITY = PolicyCache()


@hookimpl(trylast=True)
def policydesk_plan_eligibility(policies: Policies, organization: Organization, plan: str) -> Verdict[bool]:
    return _ELIGIBILITY.get(policies, (organization.name, organization.partner, plan), _eligibility,
                            policies, organization, plan)


def _eligibility(policies: Policies, organization: Organization, plan: str) -> Verdict[bool]:
    eligible, reason = plan_eligibility(policies, organization, plan)
    return Verdict(eligible, SOURCE, reason)


@hookimpl(trylast=True)
def policydesk_commitment(policies: Policies, organization: Organization, plan: str, start: dt.date,
                          end: dt.date, months: int | None) -> Verdict[str | None]:
    problem = commitment_problem(policies, plan, start, end, months)
    spec = policies.plans[plan]
    ok = (f"the commitment until {end.isoformat()} meets the {spec.title} plan's minimum of "
          f"{spec.minimum_commitment_months} months" if spec.paid else f"the {spec.title} plan needs no commitment")
    return Verdict(problem, SOURCE, problem or ok)


@hookimpl(trylast=True)
def policydesk_plan_change(policies: Policies, organization: Organization, current: Subscription,
                           change: ChangeRequest) -> Verdict[Ruling]:
    ruling = decide(policies, current, change)
    return Verdict(ruling, SOURCE, ruling.reason)
