"""Hand edits of an organization in Zammad that contradict the billing contract.

Zammad cannot fire a trigger for an organization (app/models/transaction/trigger.rb acts
on tickets only), so the catch-up polls organizations changed since its last run and
hands each record to `handle_organization_record`. It compares the organization's
``support_plan``, ``commitment_end`` and account-manager attributes with the
subscription policydesk holds (the billing contract is the authority), records every
contradiction in the audit (``billing.hand_edit``), and then, by policy
(``plan_changes.hand_edits``: ``revert``, the default, or ``warn``), queues the billing
job that writes the contract's values back and re-evaluates the organization's open
tickets, or leaves the edit with a warning in the log and the audit.

An organization policydesk's store does not know is left alone: there is no contract to
contradict (its first billing event adopts what Zammad shows).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Mapping
from typing import Any

from integrations.billing import audit_subject
from integrations.store import Store
from integrations.zammad import mapping

log = logging.getLogger("policydesk.billing")

__all__ = ["HAND_EDIT", "check_changed_organizations", "contradictions", "hand_edit_policy",
           "handle_organization_record"]

HAND_EDIT = "billing.hand_edit"
#: The attributes the billing contract owns (the support code too: it is policydesk's).
_CONTRACT_FIELDS = (mapping.ORG_SUPPORT_PLAN, mapping.ORG_COMMITMENT_END, *mapping.ROLE_ATTRIBUTES.values())


def hand_edit_policy(policies: Any) -> str:
    """``revert`` (default) or ``warn``: from ``plan_changes.hand_edits`` when the policies have it."""
    value = getattr(getattr(policies, "plan_changes", None), "hand_edits", None)
    return value if value in ("revert", "warn") else "revert"


def contradictions(store: Store, org_ref: str, record: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    """``{attribute: (in Zammad, by the contract)}`` for each contract attribute that differs."""
    from integrations.billing.zammad_side import organization_attributes

    wanted = organization_attributes(store, org_ref)
    differing = mapping.attribute_changes(record, {k: v for k, v in wanted.items() if k in _CONTRACT_FIELDS})
    return {name: (record.get(name), value) for name, value in differing.items()}


def handle_organization_record(adapter: Any, store: Store, record: Mapping[str, Any], now: dt.datetime,
                               policies: Any = None) -> str:
    """Notice, record and revert (or warn about) a hand edit of one organization; returns
    ``"unchanged"``, ``"unknown"``, ``"reverted"`` or ``"warned"``."""
    from integrations.billing.handler import ORG_REF_HEADER, OUTCOME_HEADER

    organization_id = int(record["id"])
    org_ref = str(organization_id)
    if store.get_subscription(org_ref) is None:
        return "unknown"
    found = contradictions(store, org_ref, record)
    if not found:
        return "unchanged"
    action = hand_edit_policy(policies)
    fields = ", ".join(sorted(found))
    with store.atomic():
        store.audit(HAND_EDIT, audit_subject(org_ref), {
            "action": action, "updated_by_id": record.get("updated_by_id"), "updated_at": str(record.get("updated_at")),
            "fields": {name: {"zammad": str(zammad), "contract": str(contract)}
                       for name, (zammad, contract) in found.items()},
        }, now)
        if action == "revert":
            # The billing job writes the contract's values back and re-evaluates the open
            # tickets (a downgraded plan may have reached them); one job per edit.
            body = json.dumps({"organization": {"zammad_organization_id": organization_id},
                               "reason": "hand edit"}).encode()
            store.receive("billing", f"hand-edit#{organization_id}#{record.get('updated_at')}", body,
                          {OUTCOME_HEADER: "applied", ORG_REF_HEADER: org_ref}, now)
    if action == "warn":
        log.warning("organization %s: hand edit of %s contradicts the billing contract; left as is (policy: warn)",
                    organization_id, fields)
        return "warned"
    log.warning("organization %s: hand edit of %s contradicts the billing contract; reverting", organization_id, fields)
    return "reverted"


def check_changed_organizations(adapter: Any, store: Store, since: dt.datetime | None, now: dt.datetime,
                                policies: Any = None) -> dict[str, int]:
    """Walk Zammad's organizations (``GET /api/v1/organizations``, page by page) and hand
    each one updated at or after ``since`` (all when ``None``) to
    `handle_organization_record`; returns how many ended how. For the catch-up's loop."""
    from integrations.zammad.mapping import parse_instant
    from integrations.zammad.resources import iter_all

    outcomes: dict[str, int] = {}
    for record in iter_all(adapter.client.organizations, per_page=500):
        updated = parse_instant(record.get("updated_at"))
        if since is not None and updated is not None and updated < since:
            continue
        outcome = handle_organization_record(adapter, store, record, now, policies)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return outcomes
