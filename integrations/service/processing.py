"""What a queued Zammad event does: evaluate the ticket, write the difference, set its timers.

An event is evaluated from its own payload (the ticket and organization with every attribute
policydesk reads), so an update that changes nothing costs no Zammad call; policydesk's own
writes come back as events whose decision equals what was applied, and stop there. What
policydesk applied to a ticket (`mapping.AppliedState`) is kept with its audit entry, so the
next write is a diff without reading tags and mentions back. One function per kind of work,
named for what it does; the worker calls `Processor` with each claimed job.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sqlite3
import threading
from contextlib import contextmanager
from dataclasses import replace
from typing import Any, Callable, Iterator, Mapping

from integrations.service.worker import PermanentError
from integrations.store import Job, Store
from integrations.support_code import codes_entered
from integrations.zammad.adapter import ZammadAdapter
from integrations.zammad.errors import ZammadError, ZammadNotFound
from integrations.zammad.mapping import CLOSED_STATES, TICKET_FINGERPRINT, AppliedState, ZammadTicketState, parse_instant
from integrations.zammad.payload import EventRecords, records_from_payload
from integrations.zammad.sync_objects import TIME_EVENT_TRIGGERS
from plugin.clock import pauses_clock
from plugin.engine import Engine
from plugin.model import Decision, Organization, Ticket

#: The timer step that re-evaluates a ticket whose customised advice waits for the advice window.
ADVICE_WINDOW_STEP = "advice_window"
log = logging.getLogger("policydesk.processing")

#: Zammad computes escalation to the minute (lib/escalation.rb): allow that much difference.
DRIFT_TOLERANCE = dt.timedelta(minutes=1)
#: The audit kind whose newest entry per ticket holds what policydesk applied.
DECISION_AUDIT = "decision"


def is_transient(error: BaseException) -> bool:
    """Errors that retrying can fix: Zammad or the database unreachable, busy or failing.

    Malformed input, Zammad's refusals and bugs are not: they are parked at once, with the reason.
    """
    if isinstance(error, ZammadError):
        return error.transient
    if isinstance(error, (PermanentError, ValueError, TypeError, KeyError, AttributeError)):
        return False
    if isinstance(error, (OSError, TimeoutError, sqlite3.OperationalError)):
        return True
    kind = type(error)
    return kind.__module__.startswith("psycopg") and kind.__name__ in ("OperationalError", "InterfaceError")


def job_key(source: str, body: bytes) -> str | None:
    """The ticket a queued event is about (``"ticket:42"``), for per-ticket serialisation."""
    if source != "zammad":
        return None
    try:
        ticket_id = json.loads(body)["ticket"]["id"]
        return f"ticket:{int(ticket_id)}"
    except (ValueError, KeyError, TypeError):
        return None


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
        self._ticket_locks: dict[int, tuple[threading.RLock, int]] = {}
        self._guard = threading.Lock()
        if hasattr(adapter, "vocabulary"):
            adapter.vocabulary = lambda: self.engine().tag_vocabulary()

    @contextmanager
    def serialised(self, ticket_id: int) -> Iterator[None]:
        """Hold the ticket: no other evaluation of it in this process runs meanwhile (a Zammad
        event, a timer, a plan change), so two writers never race to post the same note."""
        with self._guard:
            lock, users = self._ticket_locks.get(ticket_id) or (threading.RLock(), 0)
            self._ticket_locks[ticket_id] = (lock, users + 1)
        try:
            with lock:
                yield
        finally:
            with self._guard:
                lock, users = self._ticket_locks[ticket_id]
                if users <= 1:
                    del self._ticket_locks[ticket_id]
                else:
                    self._ticket_locks[ticket_id] = (lock, users - 1)

    def __call__(self, job: Job, now: dt.datetime) -> str:
        handler = self.handlers.get(job.source)
        if handler is None:
            raise PermanentError(f"no handler for events from {job.source!r}")
        return handler(job, now)

    # ----------------------------------------------------------------- events

    def zammad_event(self, job: Job, now: dt.datetime) -> str:
        """A Zammad trigger fired for a ticket: bring the ticket in line with the policies."""
        payload = _json_object(job.body)
        ticket_id = _ticket_id(payload)
        with self.serialised(ticket_id):
            return self._zammad_event(job, payload, ticket_id, now)

    def _zammad_event(self, job: Job, payload: Mapping[str, Any], ticket_id: int, now: dt.datetime) -> str:
        trigger = job.headers.get("X-Zammad-Trigger", "")
        try:
            records: EventRecords | None = records_from_payload(payload)
        except ValueError as error:
            log.info("ticket %s: payload unusable (%s); reading the ticket from Zammad", ticket_id, error)
            records = None
        applied = self.applied_state(ticket_id)
        if records is not None and trigger not in TIME_EVENT_TRIGGERS and applied is not None \
                and records.ticket.get(TICKET_FINGERPRINT) == applied.fingerprint \
                and self.adapter.is_own_change(records.ticket):
            # policydesk's own write, and nothing since: the cheap end of an echo. Zammad's
            # escalation time events come whoever updated last: they are the drift check.
            return "skipped: own update"
        try:
            changed_at = parse_instant(records.ticket.get("updated_at")) if records else None
        except ValueError:
            changed_at = None  # processed anyway: the rest of the ticket is fine
        # A job tried before may have written already: read Zammad rather than trust the payload.
        from_payload = records is not None and job.attempts == 0 and job.claims <= 1 \
            and hasattr(self.adapter, "context_from_payload")
        if from_payload:
            try:
                context = self.adapter.context_from_payload(records, applied=applied)
            except ValueError as error:
                log.info("ticket %s: %s; reading the ticket from Zammad", ticket_id, error)
            else:
                return self._decide(ticket_id, *context, now, trigger, changed_at, applied)[2]
        return self.evaluate_ticket(ticket_id, now, trigger=trigger, changed_at=changed_at)[2]

    def reconcile_ticket(self, ticket_id: int, now: dt.datetime, trigger: str = "",
                         changed_at: dt.datetime | None = None, *, record: Mapping[str, Any] | None = None,
                         organization: Mapping[str, Any] | None = None) -> str:
        """Evaluate one ticket as it is in Zammad now, write what differs, reset its timers.

        ``changed_at``: when Zammad made the change that caused this (pending periods start
        and end then); ``now`` when unknown. ``record`` / ``organization``: the ticket
        (``expand=true``, e.g. from a search page) and its organization, when the caller has
        them (no read then).
        """
        return self.evaluate_ticket(ticket_id, now, trigger, changed_at, record=record,
                                    organization=organization)[2]

    def evaluate_ticket(self, ticket_id: int, now: dt.datetime, trigger: str = "",
                        changed_at: dt.datetime | None = None, *, record: Mapping[str, Any] | None = None,
                        organization: Mapping[str, Any] | None = None) -> tuple[Decision, Ticket, str]:
        """`reconcile_ticket`, also returning the decision and the ticket (with its pauses) it used."""
        with self.serialised(int(ticket_id)):
            return self._evaluate_ticket(ticket_id, now, trigger, changed_at, record, organization)

    def _evaluate_ticket(self, ticket_id: int, now: dt.datetime, trigger: str, changed_at: dt.datetime | None,
                         record: Mapping[str, Any] | None,
                         organization: Mapping[str, Any] | None) -> tuple[Decision, Ticket, str]:
        applied = self.applied_state(ticket_id)
        extra: dict[str, Any] = {}
        if record is not None:
            extra["record"] = record
        if organization is not None:
            extra["organization"] = organization
        if applied is not None:
            extra["applied"] = applied
        try:
            ticket, org, state = self.adapter.load_context(ticket_id, **extra)
        except ValueError as error:
            raise PermanentError(f"ticket {ticket_id}: Zammad's record is malformed: {error}") from None
        return self._decide(ticket_id, ticket, org, state, now, trigger, changed_at, applied)

    # ----------------------------------------------------------------- deciding

    def _decide(self, ticket_id: int, ticket: Ticket, organization: Organization, state: Any, now: dt.datetime,
                trigger: str, changed_at: dt.datetime | None,
                applied: AppliedState | None) -> tuple[Decision, Ticket, str]:
        if codes_entered(self.adapter, self.store, ticket_id, state, now, self.engine().policies):
            # a typed code was checked and cleared (and may have set the organization): read again
            ticket, organization, state = self.adapter.load_context(
                ticket_id, **({"applied": applied} if applied is not None else {}))
        record = getattr(state, "record", None) or {}
        observed = min(changed_at, now) if changed_at is not None else now
        ticket, paused = self._with_pauses(ticket_id, ticket, observed, applied)
        decision = self.engine().evaluate(ticket, organization, now)
        changes = self.adapter.apply_decision(ticket_id, decision, state=state, policies=self.engine().policies)
        self._check_zammad_sla(ticket_id, record, decision, trigger)
        new_applied = getattr(changes, "applied", None)
        timers = _timer_signature(ticket, decision, paused)
        reset_timers = applied is None or applied.timers != timers
        remember = new_applied is not None and (changes or reset_timers or new_applied.to_json() != applied.to_json())
        if reset_timers or remember or changes:  # else nothing to record: no write transaction at all
            # Timers and memory in one commit, not waiting for the disk: if a power failure
            # undoes it, it undoes the job's completion too, and the job is decided again.
            with self.store.atomic(durable=False):
                if reset_timers:
                    self._set_timers(ticket_id, ticket, decision)
                if remember:
                    self.store.audit(DECISION_AUDIT, f"ticket:{ticket_id}",
                                     _audit_record(decision, changes, replace(new_applied, timers=timers)), now)
                elif changes:
                    self.store.audit(DECISION_AUDIT, f"ticket:{ticket_id}", _audit_record(decision, changes, None),
                                     now)
        return decision, ticket, "applied" if changes else "unchanged"

    def applied_state(self, ticket_id: int | None) -> AppliedState | None:
        """What policydesk applied to the ticket last (from its newest decision audit), if anything."""
        if ticket_id is None:
            return None
        entries = self.store.audit_log(subject=f"ticket:{ticket_id}", kind=DECISION_AUDIT, limit=1)
        return AppliedState.from_json(entries[0].data.get("applied")) if entries else None

    def _with_pauses(self, ticket_id: int, ticket: Ticket, now: dt.datetime,
                     applied: AppliedState | None) -> tuple[Ticket, bool]:
        """Add the pause periods policydesk has seen (Zammad's ``ignore_escalation`` states)."""
        directory = getattr(self.adapter, "directory", None)
        flag = directory.ignore_escalation(ticket.state) if directory is not None else None
        pending = pauses_clock(self.engine().policies, ticket.state, flag)  # Zammad's ignore_escalation
        if not pending and applied is not None and applied.timers is not None and not applied.timers.endswith("|p"):
            return ticket, False  # never paused so far: nothing to record or add
        periods = self.store.pending_periods(str(ticket_id), pending=pending, now=now)
        if not periods:
            return ticket, False
        return replace(ticket, paused=tuple(periods)), True

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
        due_steps = dict(escalation.value.due)
        advice = getattr(decision, "advice", None)
        if advice is not None and advice.value.queued_until is not None:
            # the next advice window: re-evaluate then, so the advice owner takes the ticket
            due_steps[ADVICE_WINDOW_STEP] = advice.value.queued_until
        steps = [(name, when) for name, when in due_steps.items() if (name, when) not in fired]
        self.store.set_timers(str(ticket_id), key, sorted(steps, key=lambda item: item[1]))

    def _check_zammad_sla(self, ticket_id: int, record: Mapping[str, Any], decision: Decision, trigger: str) -> None:
        """Log when Zammad's own SLA clock disagrees with ours: its SLA configuration has drifted.

        Like with like: only a record that already shows this decision (Zammad chose its SLA
        from policydesk's tags), outside a pause (Zammad then has no escalation time), to the minute.
        """
        from integrations.zammad.mapping import decision_fingerprint

        try:
            zammad_due = parse_instant(record.get("first_response_escalation_at"))
        except ValueError:
            return
        ours = decision.first_response_due.value if decision.first_response_due else None
        if zammad_due is None or ours is None or record.get("first_response_at"):
            return
        if record.get(TICKET_FINGERPRINT) != decision_fingerprint(decision):
            return  # Zammad computed it before policydesk's writes: not comparable yet
        if abs(zammad_due.replace(second=0, microsecond=0) - ours.replace(second=0, microsecond=0)) > DRIFT_TOLERANCE:
            log.warning(
                "ticket %s: Zammad's first-response escalation %s differs from policydesk's deadline %s "
                "(trigger %r): Zammad's SLA configuration has drifted from the policies; run `policydesk sync`",
                ticket_id, zammad_due.isoformat(), ours.isoformat(), trigger,
            )


def _timer_signature(ticket: Ticket, decision: Decision, paused: bool) -> str:
    """What the timers depend on: the deadline and steps, whether they run, and pauses seen."""
    due = decision.first_response_due.value if decision.first_response_due else None
    escalation = decision.escalation.value if decision.escalation else None
    steps = sorted((k, v.isoformat()) for k, v in (escalation.due.items() if escalation else ()))
    running = ticket.state not in CLOSED_STATES and ticket.first_response_at is None
    plan = decision.plan.value if decision.plan else ""
    return f"{plan}@{due.isoformat() if due else ''}|{steps}|{running}" + ("|p" if paused else "")


def _ticket_id(payload: Mapping[str, Any]) -> int:
    ticket = payload.get("ticket")
    raw = ticket.get("id") if isinstance(ticket, Mapping) else None
    try:
        value = int(str(raw).strip()) if not isinstance(raw, bool) and raw is not None else 0
    except ValueError:
        value = 0
    if value <= 0:
        raise PermanentError("event has no ticket id")
    return value


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(body)
    except ValueError as error:
        raise PermanentError(f"stored event is not JSON: {error}") from None
    if not isinstance(payload, dict):
        raise PermanentError("stored event is not a JSON object")
    return payload


def _audit_record(decision: Decision, changes: Any, applied: AppliedState | None) -> dict[str, Any]:
    due = decision.first_response_due.value if decision.first_response_due else None
    record = {
        "plan": decision.plan.value if decision.plan else None,
        "calendar": decision.calendar.value if decision.calendar else None,
        "first_response_due": due.isoformat() if due else None,
        "tags_added": list(getattr(changes, "tags_added", [])),
        "tags_removed": list(getattr(changes, "tags_removed", [])),
        "fields": {k: str(v) for k, v in getattr(changes, "fields", {}).items()},
        "note": decision.note_text,
    }
    warnings = list(getattr(changes, "warnings", []))
    if warnings:
        record["warnings"] = warnings
    if applied is not None:
        record["applied"] = applied.to_json()
    return record


__all__ = ["CLOSED_STATES", "Processor", "ZammadNotFound", "ZammadTicketState", "is_transient", "job_key"]
