"""The store's interface (the values it returns are in :mod:`integrations.store.records`).

The store keeps everything policydesk must not lose: received webhook events (for
idempotency), the work queue, per-ticket escalation timers, the audit trail,
subscriptions, account-manager assignments, hashed VIP codes and held notifications.

Two implementations share one schema (:mod:`integrations.store.schema`) and one body
of SQL (:mod:`integrations.store.sqlstore`): SQLite (the single-instance default) and
PostgreSQL (several instances). Open one with :func:`integrations.store.open_store`.

Every datetime passed in must be timezone-aware (a naive one raises ``ValueError``);
everything is stored as UTC and returned aware, in UTC.
"""

from __future__ import annotations

import abc
import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, ClassVar, Literal

from integrations.store.records import (
    JOB_STATES,
    AuditEntry,
    HeldNotification,
    Job,
    JobState,
    ReceiveResult,
    StoreError,
    StoreUnavailable,
    StoreValueError,
    Subscription,
    Timer,
    VipHash,
    ticket_key,
)

__all__ = [
    "AuditEntry",
    "HeldNotification",
    "Job",
    "JobState",
    "ReceiveResult",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "StoreValueError",
    "Subscription",
    "Timer",
    "VipHash",
    "ticket_key",
    "JOB_STATES",
]


class Store(abc.ABC):
    """The durable store. Thread-safe: one instance serves every thread of a process.

    Methods taking ``now`` use it for the time they record or compare against, so
    tests and the scheduler control the clock; methods without it record the current
    UTC time.
    """

    #: ``"sqlite"`` or ``"postgres"``.
    dialect: ClassVar[Literal["sqlite", "postgres"]]

    # -- lifecycle ---------------------------------------------------------------

    @abc.abstractmethod
    def close(self) -> None:
        """Close every connection (and give up leadership). The store is unusable after."""

    @abc.abstractmethod
    def ping(self) -> None:
        """Run a trivial query; raises if the database cannot be reached (for /healthz)."""

    @abc.abstractmethod
    def schema_version(self) -> int:
        """The schema version the database is at."""

    @abc.abstractmethod
    def atomic(self, durable: bool = True) -> AbstractContextManager[None]:
        """A transaction that store calls made inside it (same thread) join.

        ``with store.atomic(): store.put_subscription(...); store.audit(...)`` commits
        both or neither. Nested ``atomic()`` blocks join the outer one.

        ``durable=False`` is for bookkeeping that is redone when it is lost: claims,
        leases, completions, a decision's timers and memory. It is committed without
        waiting for the disk (SQLite: ``synchronous=NORMAL`` for that commit; PostgreSQL:
        ``synchronous_commit = off``). A power failure may then undo it, but only
        together with every commit after it: the log is written in order, so the store
        comes back as it was at some earlier instant, never a mix, and the next durable
        commit makes everything before it durable too. A job whose completion was undone
        is simply done again (its Zammad writes compare the fingerprint first). Never
        for what the service promised someone (an acknowledged webhook, a billing
        answer, a fired escalation): a `receive` inside such a block is refused.
        """

    @abc.abstractmethod
    def lock(self, key: str) -> None:
        """Inside `atomic`, serialise with every other `atomic` block that locks ``key``,
        until commit (several instances included). A no-op where write transactions are
        serialised already (SQLite)."""

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- received events and the work queue --------------------------------------

    @abc.abstractmethod
    def receive(
        self,
        source: str,
        delivery_id: str,
        body: bytes,
        headers: Mapping[str, str],
        now: dt.datetime,
        key: str | None = None,
    ) -> ReceiveResult:
        """Store a received event and enqueue one job for it, in one durable transaction.

        When this returns, the event is on disk (the webhook may be acknowledged);
        concurrent calls share one commit (group commit), each returning after it.
        A duplicate (same ``source`` and ``delivery_id``) stores and enqueues nothing
        and returns ``new=False`` with the earlier event's id. ``key`` (e.g.
        :func:`ticket_key`) serialises and coalesces the job with others of that key
        (see :meth:`claim`). Text the database cannot hold raises
        :class:`StoreValueError`.
        """

    @abc.abstractmethod
    def receive_nowait(
        self,
        source: str,
        delivery_id: str,
        body: bytes,
        headers: Mapping[str, str],
        now: dt.datetime,
        key: str | None,
        done: Callable[[ReceiveResult | None, BaseException | None], None],
    ) -> None:
        """:meth:`receive` without waiting: ``done(result, None)`` is called once the event
        is durable, ``done(None, error)`` if it could not be stored, from another thread
        (for an event loop, which must not block on the disk). Text the database cannot
        hold raises :class:`StoreValueError` here, before anything is queued. Not inside
        an :meth:`atomic` block.
        """

    @abc.abstractmethod
    def claim(
        self, worker: str, now: dt.datetime, limit: int = 1, lease_seconds: float = 60
    ) -> list[Job]:
        """Claim up to ``limit`` ready jobs for ``worker`` until ``now + lease_seconds``.

        Ready: pending with ``not_before <= now``, or claimed with an expired lease
        (its worker crashed or hung). Oldest first. Concurrent callers never get the
        same job while its lease runs.

        Jobs with a key: a key whose job is under a live claim is skipped (several
        processes included), so one ticket's jobs never run at once; of a key it
        hands out the newest queued job per source and marks the older ones done
        ("coalesced into <id>", counted in :attr:`Job.coalesced`); a newest job still
        in backoff is not handed out early. :meth:`complete`, :meth:`retry` and
        :meth:`park` release the key; :meth:`extend_lease` extends it.
        """

    @abc.abstractmethod
    def extend_lease(
        self, job_id: int, worker: str, now: dt.datetime, lease_seconds: float = 60
    ) -> bool:
        """Extend ``worker``'s claim on a job; ``False`` if it no longer holds it."""

    def extend_leases(
        self, job_ids: Sequence[int], worker: str, now: dt.datetime, lease_seconds: float = 60
    ) -> set[int]:
        """:meth:`extend_lease` for many jobs at once (the SQL store: one transaction);
        returns the ids ``worker`` still holds."""
        return {j for j in job_ids if self.extend_lease(j, worker, now, lease_seconds)}

    @abc.abstractmethod
    def complete(self, job_id: int, worker: str | None = None) -> bool:
        """Mark a claimed (or pending) job done.

        With ``worker``, only if that worker still holds the claim. ``False`` when
        nothing changed (already done, parked, or claimed by someone else).
        """

    @abc.abstractmethod
    def retry(
        self,
        job_id: int,
        error: str,
        now: dt.datetime,
        delay_seconds: float,
        worker: str | None = None,
    ) -> bool:
        """Put a failed job back: attempts + 1, ``not_before = now + delay_seconds``,
        ``last_error = error``. With ``worker``, only if it still holds the claim."""

    @abc.abstractmethod
    def park(self, job_id: int, error: str, worker: str | None = None) -> bool:
        """Park a job that will not succeed by retrying, keeping ``error``.

        A parked job is never claimed again until :meth:`requeue`; it is listed by
        :meth:`parked` and counted by :meth:`counts`, never dropped.
        """

    @abc.abstractmethod
    def parked(self, limit: int = 100) -> list[Job]:
        """Parked jobs, oldest first, with their last error."""

    @abc.abstractmethod
    def requeue(self, job_id: int, now: dt.datetime | None = None) -> bool:
        """Make a parked job pending again (ready at ``now``) with a fresh attempt
        count; its last error is kept. ``False`` if it is not parked."""

    @abc.abstractmethod
    def get_job(self, job_id: int) -> Job | None:
        """One job by id, in any state."""

    @abc.abstractmethod
    def queue_depth(self) -> int:
        """Jobs not yet done or parked (pending + claimed)."""

    @abc.abstractmethod
    def counts(self) -> dict[str, int]:
        """Number of jobs per state: ``pending``, ``claimed``, ``done``, ``parked``
        (every key present)."""

    # -- escalation timers ------------------------------------------------------

    @abc.abstractmethod
    def set_timers(
        self,
        ticket_id: str,
        deadline_key: str,
        steps: Sequence[tuple[str, dt.datetime]],
    ) -> None:
        """Make ``steps`` (step name, due time) the ticket's timers for ``deadline_key``.

        Unfired timers of the ticket under any other deadline key are removed (the
        deadline changed). For the same key it is idempotent: fired steps stay fired
        and are never re-armed, unfired ones get the given due time, unfired steps not
        in ``steps`` are removed.
        """

    @abc.abstractmethod
    def clear_timers(self, ticket_id: str) -> int:
        """Remove the ticket's unfired timers (first response given, ticket closed).

        Returns how many. Fired ones are kept as the record that they fired, so
        re-setting the same deadline key does not fire them again.
        """

    @abc.abstractmethod
    def timers_of(self, ticket_id: str) -> list[Timer]:
        """All of a ticket's timers, fired or not, by due time."""

    @abc.abstractmethod
    def fire_due(self, now: dt.datetime, limit: int = 100) -> list[Timer]:
        """Atomically mark up to ``limit`` due, unfired timers fired (at ``now``) and
        return them, by due time.

        Each (ticket, deadline key, step) is returned once, even with several
        sweepers at the same time. Cost is proportional to the number due (an index
        on ``due_at`` over unfired timers).
        """

    @abc.abstractmethod
    def next_due(self) -> dt.datetime | None:
        """When the earliest unfired timer is due, or ``None``."""

    # -- audit ---------------------------------------------------------------

    @abc.abstractmethod
    def audit(
        self, kind: str, subject: str, data: Mapping[str, Any], now: dt.datetime
    ) -> int:
        """Append an audit record (JSON-serialisable ``data``); returns its id."""

    @abc.abstractmethod
    def audit_log(
        self, subject: str | None = None, kind: str | None = None, limit: int = 100
    ) -> list[AuditEntry]:
        """Audit records, newest first, optionally only for a subject and/or kind."""

    # -- subscriptions (billing) --------------------------------------------------

    @abc.abstractmethod
    def get_subscription(self, org_ref: str) -> Subscription | None:
        """The organization's subscription, or ``None``."""

    @abc.abstractmethod
    def put_subscription(
        self,
        org_ref: str,
        *,
        plan: str,
        started_at: dt.datetime,
        commitment_end: dt.datetime | None,
        billing_period: str | None,
        now: dt.datetime,
    ) -> Subscription:
        """Create or replace the organization's subscription; returns it.

        Record the plan change with :meth:`audit` (in the same :meth:`atomic` block).
        """

    # -- account managers ---------------------------------------------------------

    @abc.abstractmethod
    def assign_manager(
        self, org_ref: str, role: str, person: str, now: dt.datetime | None = None
    ) -> None:
        """Make ``person`` the organization's manager in ``role`` (replacing any)."""

    @abc.abstractmethod
    def assign_least_loaded(
        self,
        org_ref: str,
        role: str,
        pool: Sequence[str],
        capacity: int | None = None,
        now: dt.datetime | None = None,
    ) -> str | None:
        """Atomically assign the least-loaded person of ``pool`` (ties: pool order)
        with fewer than ``capacity`` organizations in ``role``; returns them.

        If the organization already has a manager in ``role`` it is kept and returned.
        ``None`` when everyone in the pool is at capacity. Safe with several instances.
        """

    @abc.abstractmethod
    def unassign_manager(self, org_ref: str, role: str | None = None) -> int:
        """Remove the organization's manager in ``role`` (all roles if ``None``)."""

    @abc.abstractmethod
    def managers_of(self, org_ref: str) -> dict[str, str]:
        """The organization's managers, ``{role: person}``."""

    @abc.abstractmethod
    def manager_loads(self, role: str) -> dict[str, int]:
        """How many organizations each person manages in ``role`` (people with at
        least one)."""

    # -- VIP codes -----------------------------------------------------------

    @abc.abstractmethod
    def put_vip_hash(
        self, org_ref: str, salt: bytes, digest: bytes, now: dt.datetime | None = None
    ) -> None:
        """Store (replace) the organization's salted VIP-code hash."""

    @abc.abstractmethod
    def get_vip_hash(self, org_ref: str) -> VipHash | None:
        """The organization's VIP-code hash, or ``None``."""

    def put_vip_index(self, index: bytes, org_ref: str, now: dt.datetime | None = None) -> None:
        """Make ``index`` (a keyed digest of the organization's VIP code, computed by
        billing) find ``org_ref``; the organization's previous index stops finding it."""
        raise NotImplementedError

    def org_by_vip_index(self, index: bytes) -> str | None:
        """The organization whose current VIP index is ``index`` (a primary-key lookup)."""
        raise NotImplementedError

    # -- held notifications (digests) ---------------------------------------------

    @abc.abstractmethod
    def hold_notification(
        self, person: str, payload: Mapping[str, Any], release_at: dt.datetime
    ) -> int:
        """Hold a notification for ``person`` until ``release_at``; returns its id."""

    @abc.abstractmethod
    def release_notifications(
        self, now: dt.datetime, limit: int = 1000
    ) -> list[HeldNotification]:
        """Atomically mark held notifications due at ``now`` released and return them
        (by release time, then id). Each is returned once, even with several callers."""

    def next_release(self) -> dt.datetime | None:
        """When the earliest held, unreleased notification is due, or ``None``.

        (Not abstract, so other implementations keep working; the SQL store answers it
        from the ``held_due`` index.)
        """
        return None

    # -- waiting for work --------------------------------------------------------

    def wait_for_work(self, timeout: float) -> bool:
        """Block until work may be ready, at most ``timeout`` seconds; ``True`` if woken.

        Returns at once if, since this thread last returned from here, an event was
        received, a job retried or requeued, or a busy key released — in this process,
        or (PostgreSQL, LISTEN/NOTIFY) in another one. Also returns when a backoff
        ends or a lease runs out. A thread's first call returns ``True`` at once.
        (This default just sleeps a little.)
        """
        import time

        time.sleep(min(timeout, 0.2))
        return False

    def notify_work(self) -> None:
        """Wake every thread of this process waiting in :meth:`wait_for_work`."""

    def oldest_pending_age(self, now: dt.datetime) -> float:
        """Seconds since the oldest job not yet done or parked was enqueued (``0.0``
        when there is none): the queue's lag, for a metric."""
        return 0.0

    # -- batched enqueueing -------------------------------------------------------

    def receive_many(
        self,
        source: str,
        deliveries: Sequence[tuple[Any, ...]],
        now: dt.datetime,
    ) -> list[ReceiveResult]:
        """:meth:`receive` for many ``(delivery_id, body, headers)`` or ``(delivery_id,
        body, headers, key)`` of one source, in order, in one transaction (joins an
        :meth:`atomic` block).

        Same idempotency as :meth:`receive`: a known (source, delivery id) enqueues
        nothing and gives ``new=False``. The SQL store does it in a few statements per
        few hundred deliveries; this default calls :meth:`receive` for each.
        """
        with self.atomic():
            return [self.receive(source, d[0], d[1], d[2], now, *d[3:4]) for d in deliveries]

    # -- pending periods (the SLA clock pauses) -------------------------------------

    def pending_periods(
        self, ticket_id: str, pending: bool, now: dt.datetime
    ) -> list[tuple[dt.datetime, dt.datetime | None]]:
        """Record whether the ticket is in a pending state at ``now``; return every
        pending period of the ticket, oldest first (``(start, None)`` for an open one).

        ``pending=True`` opens a period at ``now`` unless one is open; ``pending=False``
        closes the open one at ``now`` (never before its start). Idempotent: calling it
        again with the same ``pending`` changes nothing. Safe with several instances.
        """
        raise NotImplementedError

    # -- scheduler leadership -----------------------------------------------------

    @abc.abstractmethod
    def try_lead(self, name: str) -> bool:
        """Become (or stay) the leader named ``name``; ``True`` if this store leads.

        Call it on every scheduler tick: it also notices a lost leadership.
        """

    @abc.abstractmethod
    def resign(self, name: str | None = None) -> None:
        """Give up leadership of ``name`` (every name if ``None``)."""

    # -- housekeeping ----------------------------------------------------------

    @abc.abstractmethod
    def purge(
        self,
        before: dt.datetime | None = None,
        *,
        bodies_before: dt.datetime | None = None,
        jobs_before: dt.datetime | None = None,
        audit_before: dt.datetime | None = None,
    ) -> dict[str, int]:
        """Delete history older than the given times; returns counts per kind.

        * ``jobs_before`` (default ``before``): done jobs finished before it, with
          their events (their delivery ids no longer deduplicate); also fired timers
          and released notifications.
        * ``bodies_before`` (default ``jobs_before``): empties the stored body (customer
          data) of events whose jobs are all done, keeping the event for
          deduplication.
        * ``audit_before`` (default: keep all): audit records, except each ticket's
          newest ``decision`` record (what policydesk last applied to it).

        Pending, claimed and parked work, and their events, are never purged. Keys of
        the result: ``bodies``, ``jobs``, ``events``, ``timers``,
        ``held_notifications``, ``audit``.
        """
