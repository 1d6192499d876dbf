"""What Zammad already knows of an organization, read before a billing event is decided.

* **Existence.** An event naming an organization Zammad does not have is refused with
  422 *before anything is recorded* (no subscription, no managers taken from the pools,
  no VIP code). Zammad unreachable: 503, the billing system retries.
* **Onboarding.** The first event for an organization policydesk's store does not know
  takes the plan, commitment end and account managers already in Zammad as the current
  state, so an Enterprise desk inside its commitment is not silently downgraded by a
  first ``subscription.created plus`` (a 409, Zammad unchanged).
* **Partners.** The record's ``partner`` flag reaches the engine's eligibility hook
  (`plugin.subscription.SubscriptionRules.rule`): a plan not open to partners is a 409.

The rulings themselves (which subscription is current, what may change) are the engine's
(`plugin.subscription.current_subscription`, ``SubscriptionRules``); this module only reads.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from integrations.zammad import mapping
from plugin.model import Policies

__all__ = ["OrganizationLookup", "managers_from_zammad", "zammad_organizations"]

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


def managers_from_zammad(policies: Policies, record: Mapping[str, Any] | None, plan: str) -> dict[str, str]:
    """The account managers Zammad shows for the roles ``plan`` includes."""
    organization = mapping.organization_from_record(record)
    roles = policies.plans[plan].account_manager_roles if plan in policies.plans else ()
    return {role: person for role, person in organization.account_managers.items() if role in roles}
