"""What Zammad already knows of an organization, read before a billing event is decided.

* **Existence.** An event naming an organization Zammad does not have is refused with
  422 *before anything is recorded* (no subscription, no managers taken from the pools,
  no VIP code). Zammad unreachable: 503, the billing system retries.
* **Onboarding.** The first event for an organization policydesk's store does not know
  takes the plan, commitment end and account managers already in Zammad as the current
  state, so an Enterprise desk inside its commitment is not silently downgraded by a
  first ``subscription.created plus`` (a 409, Zammad unchanged).
* **Partners.** A partner organization (attribute ``partner``) may take only the plans
  the policies open to partners (``open_to_partners``; Plus by default), besides the free
  default plan; any other is refused with 409 and the reason.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

from integrations.billing.rules import Current
from integrations.zammad import mapping
from plugin.model import Policies

__all__ = ["OrganizationLookup", "current_from_zammad", "managers_from_zammad", "partner_problem",
           "zammad_organizations"]

#: ``lookup(zammad_organization_id) -> record`` (``None``: Zammad has no such organization);
#: raises `integrations.zammad.errors.ZammadUnavailable` when Zammad cannot say.
OrganizationLookup = Callable[[int], "Mapping[str, Any] | None"]


def zammad_organizations(adapter: Any) -> OrganizationLookup:
    """The lookup through the adapter's client (``GET /api/v1/organizations/{id}``)."""
    from integrations.zammad.errors import ZammadNotFound

    def lookup(organization_id: int) -> Mapping[str, Any] | None:
        try:
            return adapter.client.organizations.find(organization_id)
        except ZammadNotFound:
            return None

    return lookup


def current_from_zammad(policies: Policies, record: Mapping[str, Any] | None) -> Current | None:
    """The subscription Zammad shows (``support_plan``, ``commitment_end``), or ``None``
    when it shows none, or the default plan, or a plan the policies do not know."""
    organization = mapping.organization_from_record(record)
    plan = organization.plan
    if plan is None or plan not in policies.plans or plan == policies.default_plan:
        return None
    end = organization.commitment_end
    if isinstance(end, dt.datetime):
        end = end.date()
    return Current(plan, end, None)


def managers_from_zammad(policies: Policies, record: Mapping[str, Any] | None, plan: str) -> dict[str, str]:
    """The account managers Zammad shows for the roles ``plan`` includes."""
    organization = mapping.organization_from_record(record)
    roles = policies.plans[plan].account_manager_roles if plan in policies.plans else ()
    return {role: person for role, person in organization.account_managers.items() if role in roles}


def partner_problem(policies: Policies, record: Mapping[str, Any] | None, plan: str | None) -> str | None:
    """Why a partner organization may not take ``plan``, or ``None`` when it may."""
    if plan is None or plan == policies.default_plan or plan not in policies.plans:
        return None
    if not mapping.organization_from_record(record).partner or policies.plans[plan].open_to_partners:
        return None
    open_plans = [name for name, spec in sorted(policies.plans.items(), key=lambda item: item[1].rank)
                  if spec.open_to_partners]
    offer = ", ".join(repr(p) for p in open_plans) or "none"
    return (f"the organization is a partner: plan {plan!r} is not open to partners"
            f" (plans open to partners: {offer})")
