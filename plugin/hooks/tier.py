"""Which plan applies to a request, and the priority the ticket gets."""

from __future__ import annotations

from plugin.model import Request
from plugin.hookspecs import hookimpl
from plugin.model import PRIORITIES, Contribution, Decision, Verdict
from plugin.tags import plan_tag

SOURCE = "policydesk.tier"


@hookimpl(trylast=True)
def policydesk_plan(request: Request, decision: Decision) -> Verdict[str]:
    org = request.organization
    policies = request.policies
    who = f"organization {org.name!r}" if org.name else "the organization"
    if org.plan is None:
        return Verdict(policies.default_plan, SOURCE, f"{who} has no plan set; the default plan applies")
    if org.plan not in policies.plans:
        return Verdict(
            policies.default_plan,
            SOURCE,
            f"{who} is on unknown plan {org.plan!r}; the default plan applies",
        )
    return Verdict(org.plan, SOURCE, f"{who} is on the {policies.plans[org.plan].title} plan")


@hookimpl(trylast=True)
def policydesk_priority(request: Request, decision: Decision) -> Verdict[str]:
    """The plan's priority, raised by a granted emergency or a reached escalation step.

    Never lower than a priority an agent set: the ticket's current priority counts unless
    it is the one policydesk itself wrote (``ticket.applied_priority``), which returns to
    the plan's once what raised it no longer holds.
    """
    plan = request.plan_of(decision)
    candidates = [(plan.priority, f"the {plan.title} plan's priority")]
    emergency = decision.emergency
    if emergency is not None and emergency.value.eligible:
        candidates.append((request.policies.scope.emergency_priority, "a granted 24/7 emergency"))
    escalation = decision.escalation
    if escalation is not None and escalation.value.step is not None and escalation.value.step.priority:
        step = escalation.value.step
        candidates.append((step.priority, f"escalation step {step.name!r}"))
    current = request.ticket.priority
    if current in PRIORITIES and current != request.ticket.applied_priority:
        candidates.append((current, "the ticket's current priority, set by an agent (never lowered)"))
    value, why = max(candidates, key=lambda c: _rank(c[0]))
    return Verdict(value, SOURCE, f"{value} from {why}")


_RANKS = {name: index for index, name in enumerate(PRIORITIES)}


def _rank(priority: str) -> int:
    return _RANKS.get(priority, -1) if isinstance(priority, str) else -1


@hookimpl(trylast=True)
def policydesk_tags(request: Request, decision: Decision) -> list[Contribution]:
    assert decision.plan is not None
    return [Contribution(plan_tag(decision.plan.value), SOURCE, decision.plan.reason)]


@hookimpl(trylast=True)
def policydesk_notes(request: Request, decision: Decision) -> list[Contribution]:
    assert decision.plan is not None
    plan = request.plan_of(decision)
    return [Contribution(f"Plan: {plan.title}.", SOURCE, decision.plan.reason)]
