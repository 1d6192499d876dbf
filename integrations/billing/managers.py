"""Reassigning an organization's account manager (``policydesk managers assign`` or a
billing event's ``subscription.account_managers``).

The store's assignment is the authority; the queued billing job then writes the Zammad
organization's attribute and re-evaluates its open tickets, so the adapter's mention diff
replaces the former manager's mention by the new one.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import uuid
from typing import Any

from integrations.billing import audit_subject
from integrations.store import Store
from plugin.errors import UserError

log = logging.getLogger("policydesk.billing")

__all__ = ["ASSIGNED", "ManagerError", "assignment_problem", "reassign"]

ASSIGNED = "managers.assigned"


class ManagerError(UserError):
    """The assignment is not possible (no subscription, a role the plan lacks, a person outside the pool)."""


def assignment_problem(policies: Any, plan_name: str, role: str, person: str) -> str | None:
    """Why ``person`` cannot be the ``role`` of an organization on ``plan_name``, or ``None``."""
    plan = policies.plans.get(plan_name)
    if plan is None or role not in plan.account_manager_roles:
        roles = ", ".join(plan.account_manager_roles) if plan is not None else ""
        return f"plan {plan_name!r} has no {role!r} (its roles: {roles or 'none'})"
    spec = policies.roles.get(role)
    if spec is not None and spec.pool and person not in spec.pool:
        return f"{person!r} is not in the {role} pool ({', '.join(spec.pool)})"
    return None


def reassign(store: Store, policies: Any, org_ref: str, role: str, person: str, now: dt.datetime,
             by: str, enqueue: bool = True) -> str | None:
    """Make ``person`` the organization's ``role`` (inside or outside an ``atomic`` block);
    returns the former manager. Audited; the Zammad side is queued unless ``enqueue`` is
    false (a billing event queues its own job)."""
    from integrations.billing.handler import ORG_REF_HEADER, OUTCOME_HEADER

    with store.atomic():
        store.lock(f"billing:{org_ref}")
        subscription = store.get_subscription(org_ref)
        if subscription is None:
            raise ManagerError(f"organization {org_ref} has no subscription in this store")
        problem = assignment_problem(policies, subscription.plan, role, person)
        if problem is not None:
            raise ManagerError(problem)
        former = store.managers_of(org_ref).get(role)
        if former == person:
            return former
        store.assign_manager(org_ref, role, person, now)
        store.audit(ASSIGNED, audit_subject(org_ref), {"role": role, "from": former, "to": person, "by": by}, now)
        if enqueue:
            body = json.dumps({"organization": {"zammad_organization_id": int(org_ref)}, "reason": ASSIGNED}).encode()
            store.receive("billing", f"managers#{org_ref}#{role}#{uuid.uuid4().hex[:12]}", body,
                          {OUTCOME_HEADER: "applied", ORG_REF_HEADER: org_ref}, now)
    log.info("organization %s: %s is now %s (was %s)", org_ref, role, person, former or "nobody")
    return former
