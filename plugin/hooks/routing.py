"""Which group and owner a ticket should have.

Most specific first: a granted 24/7 emergency (to the infrastructure group), customised
advice from a plan that includes it (to the advice group, owned by the technical account
manager within the advice hours), the category, the plan. With no rule, the ticket stays
where it is. The adapter writes a routing once, and again only when it changes, so an
agent's later reassignment stands.
"""

from __future__ import annotations

from plugin.hooks.memo import PolicyCache
from plugin.hookspecs import hookimpl
from plugin.model import Contribution, Decision, Request, RouteRule, Routing, Verdict

SOURCE = "policydesk.routing"


def _route(request: Request, decision: Decision, rule: RouteRule, why: str) -> Verdict[Routing]:
    reason = f"{why}: to group {rule.group!r}" if rule.group else f"{why}: in its current group"
    owner = None
    if rule.owner_role is not None:
        managers = decision.account_managers.value if decision.account_managers is not None else {}
        owner = managers.get(rule.owner_role)
        role = request.policies.roles.get(rule.owner_role)
        title = role.title.lower() if role is not None else rule.owner_role
        reason += f", owned by the {title} ({owner})" if owner else f"; no {title} is assigned, so no owner is set"
    return Verdict(Routing(rule.group, owner), SOURCE, reason)


_CACHE = PolicyCache()


@hookimpl(trylast=True)
def policydesk_routing(request: Request, decision: Decision) -> Verdict[Routing]:
    emergency = decision.emergency
    advice = decision.advice
    managers = decision.account_managers.value if decision.account_managers is not None else {}
    key = (emergency is not None and emergency.value.eligible,
           None if advice is None else (advice.value.included, advice.value.queued_until is None),
           request.ticket.category, decision.plan.value if decision.plan is not None else None,
           tuple(managers.items()))  # in the plan's role order; another order only adds an entry
    return _CACHE.get(request.policies, key, _routing, request, decision)


def _routing(request: Request, decision: Decision) -> Verdict[Routing]:
    rules = request.policies.routing
    emergency = decision.emergency
    if rules.emergency is not None and emergency is not None and emergency.value.eligible:
        return _route(request, decision, rules.emergency, "a granted 24/7 emergency")
    advice = decision.advice
    policy = request.policies.scope.advice
    if advice is not None and advice.value.included and policy is not None:
        owner_role = policy.owner_role if advice.value.queued_until is None else None
        why = "customised advice within the advice hours" if owner_role else (
            "customised advice outside the advice hours (no owner until the next advice window)")
        return _route(request, decision, RouteRule(policy.group, owner_role), why)
    category = request.ticket.category
    if category is not None and category in rules.categories:
        return _route(request, decision, rules.categories[category], f"category {category!r}")
    plan = decision.plan.value if decision.plan is not None else None
    if plan is not None and plan in rules.plans:
        return _route(request, decision, rules.plans[plan], f"the {request.plan_of(decision).title} plan")
    return Verdict(Routing(), SOURCE, "no routing rule applies: the ticket stays where it is")


@hookimpl(trylast=True)
def policydesk_notes(request: Request, decision: Decision) -> list[Contribution]:
    routing = decision.routing
    if routing is None or (routing.value.group is None and routing.value.owner is None):
        return []
    return [Contribution(f"Routed: {routing.reason}.", SOURCE, routing.reason)]
