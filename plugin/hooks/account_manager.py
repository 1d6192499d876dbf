"""The account-manager roles a plan includes, and who fills them for the organization."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from plugin.hooks.memo import PolicyCache
from plugin.hookspecs import hookimpl
from plugin.model import Contribution, Decision, Plan, Policies, Request, Verdict

SOURCE = "policydesk.account_manager"
#: Plans without account managers: one read-only answer each.
_NONE = PolicyCache()


@hookimpl(trylast=True)
def policydesk_account_managers(request: Request, decision: Decision) -> Verdict[Mapping[str, str]]:
    plan = request.plan_of(decision)
    if not plan.account_manager_roles:
        return _NONE.get(request.policies, plan.name, _nobody, plan)
    assigned = request.organization.account_managers
    filled = {role: assigned[role] for role in plan.account_manager_roles if assigned.get(role)}
    missing = tuple(role for role in plan.account_manager_roles if role not in filled)
    reason = _REASONS.get(request.policies, (plan.name, missing), _reason, request.policies, plan, missing)
    return Verdict(filled, SOURCE, reason)


def _nobody(plan: Plan) -> Verdict[Mapping[str, str]]:
    return Verdict(MappingProxyType({}), SOURCE, f"the {plan.title} plan includes no designated account manager")


#: (plan, roles not filled) -> the reason: the same few sentences for every ticket.
_REASONS = PolicyCache()


def _reason(policies: Policies, plan: Plan, missing: tuple[str, ...]) -> str:
    titles = ", ".join(policies.roles[r].title.lower() for r in plan.account_manager_roles)
    reason = f"the {plan.title} plan includes: {titles}"
    if missing:
        reason += "; not yet assigned for this organization: " + ", ".join(missing)
    return reason


@hookimpl(trylast=True)
def policydesk_notes(request: Request, decision: Decision) -> list[Contribution]:
    managers = decision.account_managers
    if managers is None or not managers.value:
        return []
    roles = request.policies.roles
    people = "; ".join(f"{roles[role].title}: {person}" for role, person in managers.value.items())
    return [Contribution(f"{people}.", SOURCE, managers.reason)]
