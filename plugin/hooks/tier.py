"""Which plan applies to a request, and the priority the ticket gets."""

from __future__ import annotations

from plugin.hooks.memo import PolicyCache
from plugin.hookspecs import hookimpl
from plugin.model import (
    PRIORITIES,
    Contribution,
    Decision,
    EscalationStep,
    Request,
    Verdict,
)
from plugin.tags import plan_tag

SOURCE = "policydesk.tier"


_PLANS = PolicyCache()
_PRIORITIES = PolicyCache()
_TAGS = PolicyCache()
_NOTES = PolicyCache()


@hookimpl(trylast=True)
def policydesk_plan(request: Request, decision: Decision) -> Verdict[str]:
    org = request.organization
    return _PLANS.get(request.policies, (org.name, org.plan), _plan, request)


def _plan(request: Request) -> Verdict[str]:
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
    emergency = decision.emergency
    escalation = decision.escalation
    step = escalation.value.step if escalation is not None else None
    current = request.ticket.priority
    agents = current if current in PRIORITIES and current != request.ticket.applied_priority else None
    key = (decision.plan.value if decision.plan is not None else None,
           emergency is not None and emergency.value.eligible,
           None if step is None else (step.name, step.priority), agents)
    return _PRIORITIES.get(request.policies, key, _priority, request, decision, key[1], step, agents)


def _priority(request: Request, decision: Decision, emergency: bool, step: EscalationStep | None,
              agents: str | None) -> Verdict[str]:
    plan = request.plan_of(decision)
    candidates = [(plan.priority, f"the {plan.title} plan's priority")]
    if emergency:
        candidates.append((request.policies.scope.emergency_priority, "a granted 24/7 emergency"))
    if step is not None and step.priority:
        candidates.append((step.priority, f"escalation step {step.name!r}"))
    if agents is not None:
        candidates.append((agents, "the ticket's current priority, set by an agent (never lowered)"))
    value, why = max(candidates, key=lambda c: _rank(c[0]))
    return Verdict(value, SOURCE, f"{value} from {why}")


_RANKS = {name: index for index, name in enumerate(PRIORITIES)}


def _rank(priority: str) -> int:
    return _RANKS.get(priority, -1) if isinstance(priority, str) else -1


@hookimpl(trylast=True)
def policydesk_tags(request: Request, decision: Decision) -> tuple[Contribution, ...]:
    plan = decision.plan
    assert plan is not None
    return _TAGS.get(request.policies, (plan.value, plan.reason), _tags, plan)


def _tags(plan: Verdict[str]) -> tuple[Contribution, ...]:
    return (Contribution(plan_tag(plan.value), SOURCE, plan.reason),)


@hookimpl(trylast=True)
def policydesk_notes(request: Request, decision: Decision) -> tuple[Contribution, ...]:
    verdict = decision.plan
    assert verdict is not None
    return _NOTES.get(request.policies, (verdict.value, verdict.reason), lambda: (
        Contribution(f"Plan: {request.plan_of(decision).title}.", SOURCE, verdict.reason),))
