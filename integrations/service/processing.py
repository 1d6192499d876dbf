"""What a queued Zammad event does: evaluate the ticket, write the difference, set its timers.

One function per kind of work, named for what it does; the worker calls `Processor`
with each claimed job.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import replace
from typing import Any, Callable, Mapping

from integrations.service.worker import PermanentError
from integrations.store import Job, Store
from integrations.support_code import codes_entered
from integrations.zammad.adapter import ZammadAdapter
from integrations.zammad.errors import ZammadNotFound, ZammadValidationError
from integrations.zammad.mapping import CLOSED_STATES, parse_instant
from integrations.zammad.sync_objects import TIME_EVENT_TRIGGERS
from plugin.engine import Engine
from plugin.model import Decision, Ticket

log = logging.getLogger("policydesk.processing")

#: A Zammad escalation time further than this from policydesk's deadline is drift.
DRIFT_TOLERANCE = dt.timedelta(minutes=1)


def is_transient(error: BaseException) -> bool:
    """Errors that retrying can fix: everything but malformed input and Zammad's refusals."""
    return not isinstance(error, (PermanentError, ZammadValidationError, ZammadNotFound))


class Processor:
    """Carries out jobs from the queue against Zammad.

    ``engine`` is a callable so that a policy reload takes effect on the next job.
    """

    def __init__(
        self,
        adapter: ZammadAdapter,
        engine: Callable[[], Engine],
        store: Store,
        handlers: Mapping[str, Callable[[Job, dt.datetime], str]] | None = None,
    ) -> None:
        self.adapter = adapter
        self.engine = engine
        self.store = store
        self.handlers: dict[str, Callable[[Job, dt.datetime], str]] = {"zammad": self.zammad_event}
        self.handlers.update(handlers or {})

    def __call__(self, job: Job, now: dt.datetime) -> str:
        handler = self.handlers.get(job.source)
        if handler is None:
            raise PermanentError(f"no handler for events from {job.source!r}")
        return handler(job, now)

    def zammad_event(self, job: Job, now: dt.datetime) -> str:
        """A Zammad trigger fired for a ticket: bring the ticket in line with the policies."""
        payload = _json_object(job.body)
        ticket_record = payload.get("ticket")
        if not isinstance(ticket_record, dict) or "id" not in ticket_record:
            raise PermanentError("event has no ticket id")
        trigger = job.headers.get("X-Zammad-Trigger", "")
        # Zammad's escalation time events come whoever updated the ticket last (often
        # policydesk itself): they are no loop, and they are how SLA drift is noticed.
        if trigger not in TIME_EVENT_TRIGGERS and self.adapter.is_own_change(payload):
            return "skipped: own update"
        # The state in the payload is the one Zammad saw at the change: a pending period
        # starts (or ends) then, not when a retried job finally runs.
        changed_at = parse_instant(ticket_record.get("updated_at"))
        return self.reconcile_ticket(int(ticket_record["id"]), now, trigger=trigger, changed_at=changed_at)

    def reconcile_ticket(self, ticket_id: int, now: dt.datetime, trigger: str = "",
                         changed_at: dt.datetime | None = None) -> str:
        """Evaluate one ticket as it is in Zammad now, write what differs, reset its timers.

        ``changed_at``: when Zammad made the change that caused this (pending periods start
        and end then); ``now`` when unknown.
        """
        return self.evaluate_ticket(ticket_id, now, trigger, changed_at)[2]

    def evaluate_ticket(self, ticket_id: int, now: dt.datetime, trigger: str = "",
                        changed_at: dt.datetime | None = None) -> tuple[Decision, Ticket, str]:
        """`reconcile_ticket`, also returning the decision and the ticket (with its pauses) it used."""
        ticket, organization, state = self.adapter.load_context(ticket_id)
        if codes_entered(self.adapter, self.store, ticket_id, state, now, self.engine().policies):
            ticket, organization, state = self.adapter.load_context(ticket_id)  # a code may have set the organization
        observed = min(changed_at, now) if changed_at is not None else now
        ticket = self._with_pauses(ticket_id, ticket, state.record, observed)
        decision = self.engine().evaluate(ticket, organization, now)
        self._check_zammad_sla(ticket_id, state.record, decision, trigger)
        changes = self.adapter.apply_decision(ticket_id, decision, state=state)
        self._set_timers(ticket_id, ticket, decision)
        if changes:
            self.store.audit("decision", f"ticket:{ticket_id}", _audit_record(decision, changes), now)
        return decision, ticket, "applied" if changes else "unchanged"

    def _with_pauses(self, ticket_id: int, ticket: Ticket, record: Mapping[str, Any], now: dt.datetime) -> Ticket:
        """Add the pending periods policydesk has seen for this ticket (the clock pauses in them)."""
        periods = self.store.pending_periods(str(ticket_id), pending=ticket.state.startswith("pending"), now=now)
        if not periods:
            return ticket
        return replace(ticket, paused=tuple(periods))

    def _set_timers(self, ticket_id: int, ticket: Ticket, decision: Decision) -> None:
        escalation = decision.escalation
        due = decision.first_response_due
        if (ticket.state in CLOSED_STATES or ticket.first_response_at is not None or escalation is None
                or due is None or due.value is None):
            self.store.clear_timers(str(ticket_id))
            return
        key = f"{decision.plan.value if decision.plan else ''}@{due.value.isoformat()}"
        # A new deadline (a pause, an upgrade) gets new timers, but a step that already fired
        # at the same instant does not fire (and notify) a second time.
        fired = {(t.step, t.due_at) for t in self.store.timers_of(str(ticket_id)) if t.fired_at is not None}
        steps = [(name, when) for name, when in escalation.value.due.items() if (name, when) not in fired]
        self.store.set_timers(str(ticket_id), key, sorted(steps, key=lambda item: item[1]))

    def _check_zammad_sla(self, ticket_id: int, record: Mapping[str, Any], decision: Decision, trigger: str) -> None:
        """Log when Zammad's own SLA clock disagrees with ours: its SLA configuration has drifted."""
        zammad_due = parse_instant(record.get("first_response_escalation_at"))
        ours = decision.first_response_due.value if decision.first_response_due else None
        if zammad_due is None or ours is None:
            return
        if abs(zammad_due - ours) > DRIFT_TOLERANCE:
            log.warning(
                "ticket %s: Zammad's first-response escalation %s differs from policydesk's deadline %s "
                "(trigger %r): Zammad's SLA configuration has drifted from the policies; run `policydesk sync`",
                ticket_id, zammad_due.isoformat(), ours.isoformat(), trigger,
            )


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(body)
    except ValueError as error:
        raise PermanentError(f"stored event is not JSON: {error}") from None
    if not isinstance(payload, dict):
        raise PermanentError("stored event is not a JSON object")
    return payload


def _audit_record(decision: Decision, changes: Any) -> dict[str, Any]:
    due = decision.first_response_due.value if decision.first_response_due else None
    return {
        "plan": decision.plan.value if decision.plan else None,
        "calendar": decision.calendar.value if decision.calendar else None,
        "first_response_due": due.isoformat() if due else None,
        "tags_added": list(changes.tags_added),
        "tags_removed": list(changes.tags_removed),
        "fields": {k: str(v) for k, v in changes.fields.items()},
        "note": decision.note_text,
    }
