"""The escalation scheduler: fire due ladder steps once, notify, and send digests.

How it works
============

* `integrations.service.processing.Processor.reconcile_ticket` keeps one timer per
  escalation step of every open, unanswered ticket with a deadline
  (``store.set_timers(ticket, "<plan>@<deadline>", steps)``); a first response or a
  closed ticket clears them, a new deadline (plan upgrade, pending pause) replaces them.
* `Scheduler.sweep` asks the store for what is due (``fire_due``: an index range scan
  over unfired timers, so its cost follows what is due, never the number of open
  tickets) and, **in the same transaction**, enqueues one durable job per fired step
  (source ``"timer"``, delivery id ``"<ticket>:<deadline key>:<step>"``). A step is
  therefore marked fired only together with the job that carries it out: if the process
  dies, both or neither are on disk; if Zammad is down, the worker retries the job with
  backoff. Firing is once-only even with several sweepers (``fire_due`` claims rows; the
  delivery id is idempotent too).
* The same sweep releases held notifications that are due and enqueues ONE digest job per
  person (same transaction, so a released notification is never lost).
* `timer_job` is the worker's handler for source ``"timer"``: for a step it reconciles the
  ticket at that instant (the decision now carries the step's tags, priority and note),
  then notifies the step's ``notify`` roles - unless the ticket was answered or closed
  meanwhile. Inside a person's role calendar hours, or for a granted emergency, the
  notification goes out at once; otherwise it is held until the role's digest tick
  (croniter on ``role.digest`` in the calendar's zone, at or after the calendar's next
  opening). For a digest it sends the person one message (`integrations.notify`).
* Timers of ticket id ``subscription:<org>`` are scheduled cancellations
  (`integrations.billing.scheduled`): their job applies the cancellation, once.
* `Scheduler.run` sweeps while this instance holds the ``"scheduler"`` leadership
  (re-checked every loop) and sleeps until the earliest of: the next tick of
  ``policies.escalation_sweep``, the earliest unfired timer (``store.next_due()``), the
  earliest held notification (``store.next_release()``), and ``max_sleep`` (so a timer
  set meanwhile by another thread or instance fires at most a second late).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from croniter import croniter

from integrations.billing.scheduled import apply_scheduled, is_subscription_timer
from integrations.service.processing import ADVICE_WINDOW_STEP
from integrations.settings import utcnow
from integrations.store import HeldNotification, Job, Store, Timer
from integrations.zammad.mapping import CLOSED_STATES

log = logging.getLogger("policydesk.scheduler")

UTC = dt.timezone.utc
#: Job source of fired steps and digests.
SOURCE = "timer"
#: The trigger name reconcile_ticket is given for a fired step (it appears in drift logs).
TIMER_TRIGGER = "policydesk:escalation-timer"
LEADERSHIP = "scheduler"


@dataclass(frozen=True)
class SweepResult:
    """What one sweep did."""

    #: The timers this sweep fired (each one is fired by exactly one sweep).
    fired: tuple[Timer, ...] = ()
    #: Jobs enqueued for fired steps (equal to ``len(fired)`` unless a delivery was known).
    enqueued: int = 0
    #: Held notifications released.
    released: int = 0
    #: Digest jobs enqueued (one per person with released notifications).
    digests: int = 0
    #: Store round trips of ``fire_due`` (one per batch): grows with what is due only.
    batches: int = 0

    def __bool__(self) -> bool:
        return bool(self.fired or self.released)


def step_delivery_id(timer: Timer) -> str:
    return f"{timer.ticket_id}:{timer.deadline_key}:{timer.step}"


def step_body(timer: Timer) -> bytes:
    return json.dumps({
        "kind": "step",
        "ticket_id": timer.ticket_id,
        "deadline_key": timer.deadline_key,
        "step": timer.step,
        "due_at": timer.due_at.isoformat(),
    }, sort_keys=True).encode()


def digest_time(role: Any, calendar: Any, now: dt.datetime) -> dt.datetime:
    """When a notification held at ``now`` for ``role`` goes out: the first tick of the
    role's digest schedule (croniter, in the calendar's zone) at or after the calendar's
    next opening; the opening itself when the role has no digest schedule."""
    opening = calendar.next_open(now)
    if not getattr(role, "digest", None):
        return opening
    start = opening.astimezone(calendar.timezone) - dt.timedelta(microseconds=1)
    return croniter(role.digest, start).get_next(dt.datetime).astimezone(UTC)


#: How often the leader looks whether monthly statements are due (see integrations.statement.delivery).
STATEMENTS_EVERY = dt.timedelta(minutes=10)


class Scheduler:
    """Fires due escalation steps and releases digests; see the module docstring.

    :param policies_provider: returns the current `plugin.model.Policies` (reloads apply).
    :param clock: the current time (tests pass a fake one).
    :param notifier: used by `job_handler`; defaults to a `ZammadNotifier` on the
        processor's adapter.
    :param batch_size: timers fired (and jobs enqueued) per transaction.
    :param max_sleep: longest sleep of `run` between two looks at the store.
    """

    def __init__(
        self,
        store: Store,
        processor: Any,
        policies_provider: Callable[[], Any],
        metrics: Any,
        clock: Callable[[], dt.datetime] = utcnow,
        notifier: Any = None,
        batch_size: int = 500,
        max_sleep: float = 1.0,
    ) -> None:
        self.store = store
        self.processor = processor
        self.policies_provider = policies_provider
        self.metrics = metrics
        self.clock = clock
        self.notifier = notifier
        self.batch_size = batch_size
        self.max_sleep = max_sleep
        self.leading = False
        #: Delivery ids of monthly statements this instance has enqueued (or found enqueued).
        self._statements_asked: set[str] = set()
        self._statements_next: dt.datetime | None = None

    def job_handler(self) -> Callable[[Job, dt.datetime], str]:
        """The handler to register as ``processor.handlers["timer"]``."""
        return timer_job(self.processor, self.store, self.metrics, self.policies_provider, self.notifier)

    # ----------------------------------------------------------------- one sweep

    def sweep(self, now: dt.datetime) -> SweepResult:
        """Fire every step due at ``now`` and enqueue its job; release due held
        notifications as one digest job per person. Safe to run concurrently."""
        fired: list[Timer] = []
        enqueued = batches = 0
        while True:
            with self.store.atomic():
                batch = self.store.fire_due(now, limit=self.batch_size)
                results = self.store.receive_many(
                    SOURCE, [(step_delivery_id(t), step_body(t), {}) for t in batch], now
                ) if batch else []
            batches += 1
            fired.extend(batch)
            enqueued += sum(1 for r in results if r.new)
            for timer in batch:
                self.metrics.escalations.labels(step=timer.step).inc()
            if len(batch) < self.batch_size:
                break
        if fired:
            log.info("fired %d escalation step(s)", len(fired))
        released, digests = self._release(now)
        return SweepResult(tuple(fired), enqueued, released, digests, batches)

    def enqueue_statements(self, now: dt.datetime) -> None:
        """Enqueue the monthly statements of each role once their day has come (the store
        keeps one job per delivery id, so other instances add nothing; each instance asks
        once per delivery, and looks at most every `STATEMENTS_EVERY`)."""
        from integrations.statement.delivery import due_deliveries

        if self._statements_next is not None and now < self._statements_next:
            return
        self._statements_next = now + STATEMENTS_EVERY

        due = [d for d in due_deliveries(self.policies_provider(), now, has_people=lambda r: bool(
            self.store.manager_loads(r))) if d[0] not in self._statements_asked]
        if due:
            self.store.receive_many(SOURCE, [(delivery_id, body, {}) for delivery_id, body in due], now)
            self._statements_asked.update(delivery_id for delivery_id, _ in due)

    def _release(self, now: dt.datetime) -> tuple[int, int]:
        released = digests = 0
        while True:
            with self.store.atomic():
                held = self.store.release_notifications(now, limit=1000)
                by_person: dict[str, list[HeldNotification]] = {}
                for note in held:
                    by_person.setdefault(note.person, []).append(note)
                deliveries = []
                for person, notes in by_person.items():
                    digest_id = f"digest:{person}:{min(n.id for n in notes)}"
                    body = {"kind": "digest", "person": person, "digest_id": digest_id,
                            "items": [n.payload for n in notes]}
                    deliveries.append((digest_id, json.dumps(body, sort_keys=True).encode(), {}))
                if deliveries:
                    self.store.receive_many(SOURCE, deliveries, now)
            released += len(held)
            digests += len(deliveries)
            if len(held) < 1000:
                return released, digests

    # ----------------------------------------------------------------- the loop

    def next_wake(self, now: dt.datetime) -> dt.datetime:
        """The earliest of the next sweep tick, the next due timer and the next release."""
        policies = self.policies_provider()
        zone = _zone(getattr(policies, "default_timezone", "UTC"))
        candidates = [croniter(policies.escalation_sweep, now.astimezone(zone)).get_next(dt.datetime)]
        for when in (self.store.next_due(), self.store.next_release()):
            if when is not None:
                candidates.append(when)
        return min(candidates)

    def run(self, stop_event: threading.Event) -> None:
        """Sweep at every wake-up while this instance leads, until ``stop_event`` is set."""
        while not stop_event.is_set():
            now = self.clock()
            wait = self.max_sleep
            try:
                self.leading = self.store.try_lead(LEADERSHIP)
                if self.leading:
                    self.sweep(now)
                    self.enqueue_statements(now)
                    wait = (self.next_wake(now) - self.clock()).total_seconds()
            except Exception:  # database down, a bad policy expression: log, wait, retry
                log.exception("scheduler sweep failed; retrying")
                self.leading = False
            stop_event.wait(min(max(wait, 0.0), self.max_sleep))
        try:
            self.store.resign(LEADERSHIP)
        except Exception:  # the store may already be closed
            pass


def _zone(name: str) -> Any:
    from zoneinfo import ZoneInfo

    try:
        return ZoneInfo(name)
    except Exception:
        return UTC


# --------------------------------------------------------------------------- the job


def timer_job(
    processor: Any,
    store: Store,
    metrics: Any,
    policies_provider: Callable[[], Any],
    notifier: Any = None,
) -> Callable[[Job, dt.datetime], str]:
    """The worker's handler for jobs from source ``"timer"`` (fired steps and digests)."""
    if notifier is None:
        from integrations.notify import ZammadNotifier

        notifier = ZammadNotifier(processor.adapter)

    def handler(job: Job, now: dt.datetime) -> str:
        try:
            body = json.loads(job.body)
        except ValueError as error:
            from integrations.service.worker import PermanentError

            raise PermanentError(f"timer job is not JSON: {error}") from None
        if body.get("kind") == "digest":
            from integrations.notify import dedupe

            held = dedupe(body.get("items") or [])
            adapter = getattr(processor, "adapter", None)
            items = still_open_items(adapter, held) if adapter is not None else held
            if items:
                notifier.send_digest(body["person"], items, body["digest_id"])
            log.info("digest %s: %d item(s) sent to %s, %d dropped (answered or closed since)",
                     body["digest_id"], len(items), body["person"], len(held) - len(items))
            return "digest" if items else "digest: nothing left"
        if body.get("kind") == "statements":  # the monthly statements of one role
            from integrations.statement.delivery import deliver_statements

            sent = deliver_statements(body, processor.adapter, store, policies_provider(), now)
            return f"statements sent: {sent}"
        if is_subscription_timer(body.get("ticket_id")):  # a scheduled cancellation's day has come
            return apply_scheduled(store, policies_provider().default_plan, body, now)
        return _fire_step(processor, store, policies_provider, notifier, body, now)

    return handler


def _fire_step(processor: Any, store: Store, policies_provider: Callable[[], Any], notifier: Any,
               body: Mapping[str, Any], now: dt.datetime) -> str:
    ticket_id = int(body["ticket_id"])
    step_name = str(body["step"])
    decision, ticket, outcome = processor.evaluate_ticket(ticket_id, now, trigger=TIMER_TRIGGER)
    if ticket.state in CLOSED_STATES or ticket.first_response_at is not None:
        log.info("ticket %s step %r: answered or closed meanwhile, nobody notified", ticket_id, step_name)
        return "skipped: answered or closed"
    if step_name == ADVICE_WINDOW_STEP:  # the evaluation above routed it to the advice owner
        log.info("ticket %s: the advice window opened; re-evaluated (%s)", ticket_id, outcome)
        return "advice window: re-evaluated"
    escalation = decision.escalation.value if decision.escalation is not None else None
    due = escalation.due.get(step_name) if escalation is not None else None
    if due is None or due > now:
        log.info("ticket %s step %r: no longer due (the deadline moved), nobody notified", ticket_id, step_name)
        return "skipped: no longer due"
    policies = policies_provider()
    plan = policies.plans.get(decision.plan.value) if decision.plan is not None else None
    step = next((s for s in plan.escalation if s.name == step_name), None) if plan is not None else None
    if step is None:
        log.info("ticket %s step %r: not in the plan's ladder any more", ticket_id, step_name)
        return "skipped: step not in ladder"
    notifications = getattr(decision, "notifications", None)
    if notifications is None:  # an engine without the notification hook: the step's roles, by their hours
        notifications = _role_notifications(policies, decision, step, now)
    note = next((c.value for c in decision.notes if c.value.startswith("Escalation ")), decision.note_text)
    emergency = decision.emergency is not None and decision.emergency.value.eligible
    sent = held = 0
    for notification in notifications:
        if notification.step_id not in (step_name, getattr(step, "id", step_name)):
            continue
        person = notification.person
        if notification.kind != "group" and not person:
            log.info("ticket %s step %r: nobody is the %s", ticket_id, step_name, notification.recipient)
            continue
        addressee = person if notification.kind != "group" else f"group:{notification.recipient}"
        item = {
            "key": f"{ticket_id}:{body['deadline_key']}:{step_name}:{addressee}",
            "ticket_id": ticket_id,
            "deadline_key": body["deadline_key"],
            "step": step_name,
            "kind": notification.kind,
            "role": notification.recipient,
            "role_title": _title(policies, notification),
            "due_at": due.isoformat(),
            "emergency": emergency,
            "text": notification.text or note,
        }
        if notification.kind == "group":
            notifier.notify_group(notification.recipient, item)  # a group has no hours: at once
            sent += 1
        elif notification.immediate:
            notifier.notify(person, item)
            sent += 1
        else:
            store.hold_notification(person, item, notification.deliver_at)
            held += 1
    log.info("ticket %s step %r (%s): %d notified, %d held for a digest", ticket_id, step_name, outcome, sent, held)
    # A small fixed set of outcomes: the worker uses it as a metrics label.
    return {(False, False): "fired", (True, False): "notified", (False, True): "held"}.get(
        (sent > 0, held > 0), "notified+held")


def _title(policies: Any, notification: Any) -> str:
    if notification.kind == "role":
        role = policies.roles.get(notification.recipient)
        return role.title if role is not None else notification.recipient
    return "ticket owner" if notification.kind == "owner" else f"group {notification.recipient}"


def _role_notifications(policies: Any, decision: Any, step: Any, now: dt.datetime) -> list[Any]:
    """The notifications of ``step`` for its roles, by their hours (`plugin.notification`)."""
    from plugin.model import Notification
    from plugin.notification import delivery_time

    managers = decision.account_managers.value if decision.account_managers is not None else {}
    urgent = "a granted 24/7 emergency" if decision.emergency is not None and decision.emergency.value.eligible else None
    out = []
    for role_name in step.notify:
        immediate, at, reason = delivery_time(policies, "role", role_name, now, urgent)
        out.append(Notification(getattr(step, "id", step.name), "role", role_name, managers.get(role_name), immediate,
                                at, "", "policydesk", reason))
    return out


def still_open_items(adapter: Any, items: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The digest items whose ticket is still open and unanswered, read from Zammad now:
    a ticket answered or closed since the item was held is dropped."""
    from integrations.zammad.errors import ZammadNotFound

    state: dict[int, bool] = {}
    kept = []
    for item in items:
        tid = int(item["ticket_id"])
        if tid not in state:
            try:
                ticket = adapter.load_context(tid)[0]
            except ZammadNotFound:
                state[tid] = False
                continue
            state[tid] = ticket.state not in CLOSED_STATES and ticket.first_response_at is None
        if state.get(tid):
            kept.append(item)
    return kept


def held_items(notes: Sequence[HeldNotification]) -> list[dict[str, Any]]:
    """The payloads of held notifications (for tools that show what waits)."""
    return [dict(n.payload) for n in notes]
