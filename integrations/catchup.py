"""The running service catches up by itself: what Zammad gave up delivering, and policy reloads.

Zammad's webhook job tries 5 times over about 100 s (app/jobs/trigger_webhook_job.rb); a
change made while policydesk was down or answering 503 is never delivered again.
`CatchUp` asks Zammad, every ``interval``, for the tickets updated since its last run (a
``condition`` search on ``updated_at``: SQL in every Zammad, see
`integrations.zammad.search`) and queues each as an event in the store, like a webhook.
So the cost is proportional to the tickets that changed, not to all open tickets, and:

- a change is queued once: the delivery id is ``catchup:<ticket id>:<updated_at>``, which
  the store deduplicates across runs and instances;
- a change already applied is a no-op: the worker evaluates the ticket as it is now and
  the adapter writes nothing when the decision's fingerprint is unchanged;
- tickets last updated by policydesk itself are skipped: every policydesk write follows a
  fresh read of the ticket, so such a ticket is already in line.

The mark (up to when Zammad was looked at) is kept in the store's audit log, so a restart
after 5 minutes down resumes where it stopped.  Only the instance holding the store's
``catchup`` leadership runs it.

`Reevaluation` queues every open ticket after a policy reload, at a bounded rate, with
progress in the log and a gauge.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
from typing import Any, Callable

from integrations.zammad import search
from integrations.zammad.mapping import parse_instant

log = logging.getLogger("policydesk.catchup")

__all__ = ["CATCHUP_TRIGGER", "CatchUp", "REEVALUATION_TRIGGER", "Reevaluation"]

#: ``X-Zammad-Trigger`` of the events catch-up queues (processed like any ticket update).
CATCHUP_TRIGGER = "policydesk catch-up"
REEVALUATION_TRIGGER = "policydesk policy reload"
LEADERSHIP = "catchup"
MARK_SUBJECT = "service:catchup"
MARK_KIND = "catchup"
UTC = dt.timezone.utc


def _utcnow() -> dt.datetime:
    return dt.datetime.now(UTC)


def _queue(store: Any, ticket: dict[str, Any], delivery_id: str, trigger: str, now: dt.datetime) -> bool:
    body = json.dumps({"ticket": ticket}, separators=(",", ":"), default=str).encode()
    headers = {"X-Zammad-Trigger": trigger, "X-Zammad-Delivery": delivery_id}
    extra: dict[str, Any] = {}
    if _takes_key(store):  # the store serialises and coalesces a ticket's jobs by key
        from integrations.store import ticket_key

        extra["key"] = ticket_key(ticket["id"])
    return bool(store.receive("zammad", delivery_id, body, headers, now, **extra).new)


def _takes_key(store: Any) -> bool:
    import inspect

    try:
        return "key" in inspect.signature(store.receive).parameters
    except (TypeError, ValueError):
        return False


class CatchUp:
    """Queue the tickets Zammad changed since the last run; see the module docstring.

    :param interval: seconds between runs.
    :param overlap: each run looks this far before its mark (Zammad's clock, commit delays).
    :param first_lookback: how far back the very first run looks (no mark yet); 0: it only
        sets the mark (onboarding a desk is ``policydesk reconcile``'s job).
    :param settle: changes younger than this are left for the next run: Zammad may still be
        delivering them (5 attempts over about 100 s, app/jobs/trigger_webhook_job.rb).
    """

    def __init__(self, store: Any, adapter: Any, *, interval: float = 60.0, overlap: float = 120.0,
                 first_lookback: float = 0.0, settle: float = 150.0, clock: Callable[[], dt.datetime] = _utcnow,
                 metrics: Any = None,
                 organizations_changed: Callable[[dt.datetime, dt.datetime], Any] | None = None) -> None:
        self.store = store
        #: Called with (since, now) each run: hand edits of organizations (Zammad has no
        #: organization trigger, app/models/transaction/trigger.rb), see integrations.billing.hand_edit.
        self.organizations_changed = organizations_changed
        self.adapter = adapter
        self.interval = interval
        self.overlap = dt.timedelta(seconds=overlap)
        self.first_lookback = dt.timedelta(seconds=first_lookback)
        self.settle = dt.timedelta(seconds=settle)
        self.clock = clock
        self.queued_counter = None
        if metrics is not None and getattr(metrics, "registry", None) is not None:
            from prometheus_client import Counter

            self.queued_counter = Counter("policydesk_catchup_queued_total",
                                          "Ticket changes queued by the catch-up (deliveries Zammad gave up on)",
                                          registry=metrics.registry)

    def mark(self) -> dt.datetime | None:
        entries = self.store.audit_log(subject=MARK_SUBJECT, kind=MARK_KIND, limit=1)
        if not entries:
            return None
        return parse_instant((entries[0].data or {}).get("until"))

    def run_once(self) -> int:
        """One catch-up: returns how many ticket changes were newly queued."""
        now = self.clock()
        # Changes younger than `settle` may still be on their way (Zammad retries for ~100 s).
        until = now - self.settle
        mark = self.mark()
        queued = 0
        if mark is None and not self.first_lookback:
            self.store.audit(MARK_KIND, MARK_SUBJECT, {"until": until.isoformat(), "queued": 0}, now)
            return 0
        since = (mark - self.overlap) if mark is not None else until - self.first_lookback
        own = self.adapter.own_user_id()
        for record in search.tickets_changed_since(self.adapter.client, since, open_only=False):
            changed = parse_instant(record.get("updated_at"))
            if changed is not None and changed > until:
                continue  # the next run takes it, if its delivery has not arrived by then
            if _int(record.get("updated_by_id")) == own:
                continue  # policydesk wrote last, after reading the ticket: in line already
            delivery = f"catchup:{int(record['id'])}:{record.get('updated_at')}"
            # Only what says which change this is: the worker reads the ticket as it is now.
            change = {key: record.get(key) for key in ("id", "updated_at", "updated_by_id")}
            if _queue(self.store, change, delivery, CATCHUP_TRIGGER, now):
                queued += 1
        if self.organizations_changed is not None:
            outcomes = self.organizations_changed(since, now)
            if outcomes and any(k in ("reverted", "warned") for k in outcomes):
                log.info("catch-up: organizations edited by hand since %s: %s", since.isoformat(),
                         ", ".join(f"{k}={n}" for k, n in sorted(outcomes.items())))
        self.store.audit(MARK_KIND, MARK_SUBJECT, {"until": until.isoformat(), "queued": queued}, now)
        if queued:
            log.info("catch-up: queued %d ticket change(s) made since %s", queued, since.isoformat())
            if self.queued_counter is not None:
                self.queued_counter.inc(queued)
        return queued

    def run(self, stopping: threading.Event) -> None:
        """Run every ``interval`` while this instance leads, until ``stopping`` is set."""
        while not stopping.is_set():
            try:
                if self.store.try_lead(LEADERSHIP):
                    self.run_once()
            except Exception:  # Zammad or the store down: try again next time
                log.exception("catch-up failed; retrying in %.0f s", self.interval)
            stopping.wait(self.interval)
        try:
            self.store.resign(LEADERSHIP)
        except Exception:  # the store may already be closed
            pass


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


class Reevaluation:
    """After a policy reload: queue every open ticket at ``rate`` per second at most.

    Progress goes to the log (every ``log_every`` tickets) and to the gauge
    ``policydesk_reevaluation_remaining``.  A newer reload supersedes a running one.  When
    ``sync_zammad`` is given (``callable(policies)``), it runs first: Zammad's SLAs and
    calendars are brought in line as ``policydesk sync`` would.
    """

    def __init__(self, store: Any, adapter: Any, *, rate: float = 20.0, log_every: int = 100, metrics: Any = None,
                 sync_zammad: Callable[[Any], Any] | None = None, clock: Callable[[], dt.datetime] = _utcnow,
                 sleep: Callable[[float], Any] | None = None) -> None:
        self.store = store
        self.adapter = adapter
        self.rate = rate
        self.log_every = log_every
        self.sync_zammad = sync_zammad
        self.clock = clock
        self._generation = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.sleep = sleep or self._stop.wait
        self.remaining = None
        if metrics is not None and getattr(metrics, "registry", None) is not None:
            from prometheus_client import Gauge

            self.remaining = Gauge("policydesk_reevaluation_remaining",
                                   "Open tickets still to be queued for re-evaluation after a policy reload",
                                   registry=metrics.registry)

    def start(self, policies: Any = None) -> threading.Thread:
        """Begin a re-evaluation in a background thread (superseding one still running)."""
        with self._lock:
            self._generation += 1
            generation = self._generation
        thread = threading.Thread(target=self.run, args=(generation, policies), name="reevaluation", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self._stop.set()

    def run(self, generation: int, policies: Any = None) -> int:
        if self.sync_zammad is not None and policies is not None:
            try:
                self.sync_zammad(policies)
            except Exception:  # Zammad refusing a change must not stop the re-evaluation
                log.exception("policy reload: bringing Zammad's SLAs and calendars in line failed")
        started = self.clock()
        records = list(search.open_tickets(self.adapter.client))
        total = len(records)
        log.info("policy reload: re-evaluating %d open ticket(s) at up to %.0f/s", total, self.rate)
        queued = 0
        for done, record in enumerate(records, 1):
            if self._stop.is_set() or generation != self._generation:
                log.info("policy reload: re-evaluation stopped after %d/%d (superseded)", done - 1, total)
                return queued
            delivery = f"reload:{started.isoformat()}:{int(record['id'])}"
            # Only the id: the ticket is read fresh, and is evaluated even if policydesk wrote it last.
            if _queue(self.store, {"id": int(record["id"])}, delivery, REEVALUATION_TRIGGER, self.clock()):
                queued += 1
            if self.remaining is not None:
                self.remaining.set(total - done)
            if done % self.log_every == 0 or done == total:
                log.info("policy reload: %d/%d open ticket(s) queued for re-evaluation", done, total)
            if self.rate > 0:
                self.sleep(1.0 / self.rate)
        return queued


def sync_zammad_function(webhook_url: str | None, signature_token: str | None, adapter: Any) -> Callable[[Any], Any] | None:
    """``policydesk sync`` as a function of the policies, or ``None`` when not configured."""
    if not webhook_url or not signature_token:
        return None
    from integrations.zammad.sync import apply_plan, plan_sync
    from integrations.zammad.sync_objects import webhook_endpoint

    def sync_zammad(policies: Any) -> Any:
        plan = plan_sync(policies, adapter.client, endpoint=webhook_endpoint(webhook_url),
                         signature_token=signature_token)
        result = apply_plan(plan, adapter.client)
        for line in result.done:
            log.info("policy reload: sync: %s", line)
        for error in plan.errors:
            log.warning("policy reload: sync: %s", error)
        return result

    return sync_zammad


def install(service: Any, environ: Any = None) -> Reevaluation:
    """Start the catch-up thread of a running `integrations.service.runtime.Service` and
    return its `Reevaluation` (started by the policy watcher after each reload).

    Environment: ``POLICYDESK_CATCHUP_SECONDS`` (interval, default 60; 0 turns it off),
    ``POLICYDESK_CATCHUP_OVERLAP`` (default 120), ``POLICYDESK_CATCHUP_SETTLE`` (changes
    younger than this wait for the next run, default 150), ``POLICYDESK_CATCHUP_FIRST_LOOKBACK`` (how far
    the first run ever looks back, default 0: it only sets the mark), ``POLICYDESK_REEVALUATION_RATE`` (tickets/s, default 20),
    ``POLICYDESK_SYNC_ON_RELOAD=1`` with ``POLICYDESK_PUBLIC_URL``: bring Zammad's SLAs and
    calendars in line after each reload, as ``policydesk sync`` would.
    """
    import os

    from integrations.billing.hand_edit import check_changed_organizations

    env = os.environ if environ is None else environ

    def number(name: str, default: float) -> float:
        try:
            return float(env.get(name) or default)
        except ValueError:
            log.warning("%s=%r is not a number; using %s", name, env.get(name), default)
            return default

    interval = number("POLICYDESK_CATCHUP_SECONDS", 60.0)
    if interval > 0:
        catchup = CatchUp(service.store, service.adapter, interval=interval,
                          overlap=number("POLICYDESK_CATCHUP_OVERLAP", 120.0),
                          first_lookback=number("POLICYDESK_CATCHUP_FIRST_LOOKBACK", 0.0),
                          settle=number("POLICYDESK_CATCHUP_SETTLE", 150.0), metrics=service.metrics,
                          organizations_changed=lambda since, now: check_changed_organizations(
                              service.adapter, service.store, since, now, service.holder.policies))
        service._thread(lambda: catchup.run(service.stopping), "catch-up")
    sync_zammad = None
    if str(env.get("POLICYDESK_SYNC_ON_RELOAD") or "").lower() in ("1", "true", "yes"):
        sync_zammad = sync_zammad_function(env.get("POLICYDESK_PUBLIC_URL"),
                                           getattr(service.config, "zammad_webhook_token", None), service.adapter)
        if sync_zammad is None:
            log.warning("POLICYDESK_SYNC_ON_RELOAD is set but POLICYDESK_PUBLIC_URL or the webhook token is "
                        "missing: Zammad's SLAs will not follow policy reloads")
    return Reevaluation(service.store, service.adapter, rate=number("POLICYDESK_REEVALUATION_RATE", 20.0),
                        metrics=service.metrics, sync_zammad=sync_zammad)
