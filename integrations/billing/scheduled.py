"""Cancellations that take effect later: scheduled at receipt, applied once on their day.

A cancellation effective on or after the commitment end but later than today is
*scheduled*: plan, account managers and VIP code stay until that day. It is kept as a
store timer (ticket id ``subscription:<org_ref>``, deadline key the event id, step
``subscription.cancelled``, due at 00:00 UTC of the effective day), so the scheduler's
``fire_due`` fires it exactly once even with several instances, in the same transaction
as the job that applies it. Any later applied event of the organization (an upgrade, a
renewal) withdraws it; a newer cancellation replaces it.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Any

from integrations.billing import audit_subject
from integrations.store import Store

log = logging.getLogger("policydesk.billing")

__all__ = ["STEP", "TIMER_PREFIX", "apply_scheduled", "is_subscription_timer", "pending_cancellation",
           "schedule_cancellation", "withdraw_cancellation"]

TIMER_PREFIX = "subscription:"
STEP = "subscription.cancelled"
SCHEDULED, APPLIED, WITHDRAWN = "billing.scheduled", "billing.applied", "billing.withdrawn"
UTC = dt.timezone.utc


def _timer_id(org_ref: str) -> str:
    return f"{TIMER_PREFIX}{org_ref}"


def is_subscription_timer(ticket_id: Any) -> bool:
    """Whether a fired timer (or its job body's ``ticket_id``) is a scheduled subscription change."""
    return str(ticket_id).startswith(TIMER_PREFIX)


def effective_instant(day: dt.date) -> dt.datetime:
    """When a change effective on ``day`` is applied: the start of that day, UTC."""
    return dt.datetime.combine(day, dt.time(), UTC)


def schedule_cancellation(store: Store, org_ref: str, event_id: str, effective: dt.date, now: dt.datetime) -> None:
    """Schedule the cancellation (inside the ``atomic`` block that records the event)."""
    store.set_timers(_timer_id(org_ref), event_id, [(STEP, effective_instant(effective))])
    store.audit(SCHEDULED, audit_subject(org_ref), {"event_id": event_id, "effective": effective.isoformat()}, now)


def pending_cancellation(store: Store, org_ref: str) -> tuple[str, dt.date] | None:
    """The scheduled, not yet applied cancellation: (event id, effective day), or ``None``."""
    for timer in store.timers_of(_timer_id(org_ref)):
        if timer.fired_at is None:
            return timer.deadline_key, timer.due_at.astimezone(UTC).date()
    return None


def withdraw_cancellation(store: Store, org_ref: str, reason: str, now: dt.datetime) -> str | None:
    """Remove a scheduled cancellation (a later upgrade or renewal); returns its event id."""
    pending = pending_cancellation(store, org_ref)
    if pending is None:
        return None
    store.clear_timers(_timer_id(org_ref))
    store.audit(WITHDRAWN, audit_subject(org_ref), {"event_id": pending[0], "reason": reason}, now)
    return pending[0]


def apply_scheduled(store: Store, default_plan: str, body: dict[str, Any], now: dt.datetime) -> str:
    """Carry out a fired scheduled cancellation (the scheduler's timer job): back to the
    default plan, managers released, the Zammad side queued as a billing job."""
    from integrations.billing.handler import ORG_REF_HEADER, OUTCOME_HEADER

    org_ref = str(body["ticket_id"])[len(TIMER_PREFIX):]
    event_id = str(body["deadline_key"])
    day = dt.datetime.fromisoformat(str(body["due_at"])).astimezone(UTC)
    with store.atomic():
        store.lock(f"billing:{org_ref}")
        current = store.get_subscription(org_ref)
        if current is None or current.plan == default_plan:
            return "skipped: nothing to cancel"
        store.put_subscription(org_ref, plan=default_plan, started_at=day, commitment_end=None,
                               billing_period=None, now=now)
        released = store.managers_of(org_ref)
        store.unassign_manager(org_ref)
        store.audit(APPLIED, audit_subject(org_ref), {
            "event_id": event_id, "type": STEP, "kind": "cancel", "from_plan": current.plan, "plan": default_plan,
            "scheduled": True, "released_managers": released,
            "reason": f"cancellation effective {day.date().isoformat()} applied"}, now)
        job_body = json.dumps({"organization": {"zammad_organization_id": int(org_ref)}}).encode()
        store.receive("billing", f"{event_id}#effective", job_body,
                      {OUTCOME_HEADER: "applied", ORG_REF_HEADER: org_ref}, now)
    log.info("organization %s: scheduled cancellation %s applied; back to %r", org_ref, event_id, default_plan)
    return "cancelled"
