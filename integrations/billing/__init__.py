"""The billing system's side of policydesk: plan changes arrive by signed webhook.

* ``contract.schema.json`` -- the events (JSON Schema 2020-12); ``examples/`` one per type.
* `integrations.billing.rules` -- pure: may this plan change happen, commitment arithmetic.
* `integrations.billing.handler` -- `BillingReceiver`: validate, deduplicate, decide, record,
  enqueue (the ``BillingHandler`` of `integrations.service.app`).
* `integrations.billing.zammad_side` -- the queued job: write the organization's plan,
  managers and commitment to Zammad, re-evaluate its open tickets.

The contract is documented for the billing team in ``docs/billing.md``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

#: Where the contract schema and the examples live.
CONTRACT_DIR = Path(__file__).resolve().parent
SCHEMA_PATH = CONTRACT_DIR / "contract.schema.json"
EXAMPLES_DIR = CONTRACT_DIR / "examples"

#: The ``type`` of every billing event.
EVENT_TYPES = (
    "subscription.created",
    "subscription.plan_changed",
    "subscription.cancelled",
    "subscription.renewed",
)


def org_ref_for(zammad_organization_id: Any) -> str:
    """The store's key for an organization: its Zammad organization id, as a decimal string.

    Subscriptions, account-manager assignments and VIP-code hashes are all kept under it,
    so the VIP check (which only knows the ticket's ``organization_id``) finds them.
    """
    return str(int(zammad_organization_id))


def audit_subject(org_ref: str) -> str:
    """The audit subject of an organization's plan changes, refusals and VIP events."""
    return f"organization:{org_ref}"


__all__ = ["CONTRACT_DIR", "EVENT_TYPES", "EXAMPLES_DIR", "SCHEMA_PATH", "audit_subject", "org_ref_for"]
