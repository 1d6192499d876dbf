"""The store's logic, written once in SQL common to SQLite and PostgreSQL.

A dialect subclass supplies transactions (:meth:`SQLStore._transaction`), value
conversions, and the two places where locking differs:

* :attr:`SQLStore.SKIP_LOCKED` — ``FOR UPDATE SKIP LOCKED`` on PostgreSQL; empty on
  SQLite, where every write transaction is ``BEGIN IMMEDIATE`` and so already holds
  the database's single write lock;
* :meth:`SQLStore._lock` — a transaction-scoped advisory lock on PostgreSQL; nothing
  on SQLite, for the same reason.

SQL here uses ``?`` placeholders; the PostgreSQL subclass translates them.
"""

from __future__ import annotations

import abc
import datetime as dt
import json
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar

from integrations.store import schema
from integrations.store.base import (
    JOB_STATES,
    AuditEntry,
    HeldNotification,
    Job,
    ReceiveResult,
    Store,
    StoreError,
    Subscription,
    Timer,
    VipHash,
)

UTC = dt.timezone.utc


def utc(value: dt.datetime) -> dt.datetime:
    """``value`` in UTC; a naive datetime is refused (its zone would be a guess)."""
    if not isinstance(value, dt.datetime):
        raise TypeError(f"expected a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"naive datetime {value.isoformat()}: pass a timezone-aware one")
    return value.astimezone(UTC)


def iter_chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    """Split ``items`` into slices of at most ``size`` (for ``IN (...)`` lists)."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def utcnow() -> dt.datetime:
    """The current time, aware, in UTC."""
    return dt.datetime.now(UTC)


class Tx(abc.ABC):
    """One open transaction: run statements, get all rows back as tuples."""

    @abc.abstractmethod
    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run ``sql`` (``?`` placeholders) and return its rows (``[]`` if none)."""


_JOB_COLUMNS = (
    "j.id, j.event_id, e.source, e.delivery_id, e.body, e.headers, j.attempts, j.claims,"
    " j.not_before, j.state, j.last_error, j.claimed_by, j.lease_until, e.received_at"
)
_TIMER_COLUMNS = "ticket_id, deadline_key, step, due_at, fired_at"
_HELD_COLUMNS = "id, person, payload, release_at, released_at"


class SQLStore(Store):
    """Everything of :class:`~integrations.store.base.Store` on top of a few dialect hooks."""

    dialect: ClassVar[schema.Dialect]
    #: Appended to the sub-selects that pick rows to claim.
    SKIP_LOCKED: ClassVar[str] = ""

    def __init__(self) -> None:
        self._local = threading.local()

    # -- dialect hooks -------------------------------------------------------------

    @abc.abstractmethod
    def _transaction(self, write: bool) -> Any:
        """A context manager: a new transaction on a connection of this thread,
        yielding a :class:`Tx`; committed on success, rolled back on error."""

    def _lock(self, tx: Tx, key: str) -> None:
        """Serialise transactions that pass the same ``key`` (until commit)."""

    def lock(self, key: str) -> None:
        with self._tx() as tx:
            self._lock(tx, key)

    @abc.abstractmethod
    def _ts(self, value: dt.datetime) -> Any:
        """A UTC datetime as a query parameter."""

    @abc.abstractmethod
    def _from_ts(self, value: Any) -> dt.datetime:
        """A stored timestamp as an aware UTC datetime."""

    def _ots(self, value: Any) -> dt.datetime | None:
        return None if value is None else self._from_ts(value)

    def _json(self, value: Any) -> Any:
        """A JSON-serialisable value as a query parameter."""
        return json.dumps(value, sort_keys=True, separators=(",", ":"))

    def _from_json(self, value: Any) -> Any:
        """A stored JSON value as Python."""
        return json.loads(value) if isinstance(value, (str, bytes)) else value

    def _claim_sql(self, table: str, ready: str, order: str, assign: str, returning: str) -> str:
        """One statement that picks up to ``LIMIT ?`` ready rows, oldest first, and
        updates them, returning ``returning``.

        Parameters, in order: those of ``ready``, the limit, those of ``assign``, those
        of ``ready`` again (re-checked on the picked rows).

        The pick is a materialised CTE joined with ``UPDATE ... FROM``: PostgreSQL
        must run the locking sub-select exactly once (as ``WHERE id IN (...)`` it may
        re-run it per row, and skip the rows this very statement just updated,
        exceeding the limit).
        """
        return (
            f"WITH picked AS MATERIALIZED (SELECT id AS pick_id FROM {table} WHERE {ready}"
            f" ORDER BY {order} LIMIT ?{self.SKIP_LOCKED})"
            f" UPDATE {table} SET {assign} FROM picked"
            f" WHERE {table}.id = picked.pick_id AND ({ready}) RETURNING {returning}"
        )

    # -- transactions ---------------------------------------------------------

    @contextmanager
    def _tx(self, write: bool = True) -> Iterator[Tx]:
        """The thread's current :meth:`atomic` transaction, or a new one."""
        current: Tx | None = getattr(self._local, "tx", None)
        if current is not None:
            yield current
            return
        with self._transaction(write) as tx:
            yield tx

    @contextmanager
    def atomic(self) -> Iterator[None]:
        if getattr(self._local, "tx", None) is not None:
            yield
            return
        with self._transaction(True) as tx:
            self._local.tx = tx
            try:
                yield
            finally:
                self._local.tx = None

    def _migrate(self) -> None:
        """Create or upgrade the schema (serialised across processes)."""
        with self._transaction(True) as tx:
            self._lock(tx, "schema")
            tx.execute(schema.render(schema.SCHEMA_VERSION_TABLE, self.dialect))
            current = tx.execute("SELECT MAX(version) FROM schema_version")[0][0] or 0
            if current > schema.LATEST:
                raise StoreError(
                    f"the database schema is at version {current}, newer than this"
                    f" code's {schema.LATEST}: upgrade policydesk"
                )
            for version, description, statements in schema.MIGRATIONS:
                if version <= current:
                    continue
                for statement in statements:
                    tx.execute(schema.render(statement, self.dialect))
                tx.execute(
                    "INSERT INTO schema_version (version, description, applied_at)"
                    " VALUES (?, ?, ?)",
                    (version, description, self._ts(utcnow())),
                )

    def ping(self) -> None:
        with self._tx(write=False) as tx:
            tx.execute("SELECT 1")

    def schema_version(self) -> int:
        with self._tx(write=False) as tx:
            return int(tx.execute("SELECT MAX(version) FROM schema_version")[0][0] or 0)

    # -- events and jobs ---------------------------------------------------------

    def receive(
        self,
        source: str,
        delivery_id: str,
        body: bytes,
        headers: Mapping[str, str],
        now: dt.datetime,
    ) -> ReceiveResult:
        at = self._ts(utc(now))
        with self._tx() as tx:
            rows = tx.execute(
                "INSERT INTO events (source, delivery_id, body, headers, received_at)"
                " VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (source, delivery_id) DO NOTHING RETURNING id",
                (source, delivery_id, bytes(body), self._json(dict(headers)), at),
            )
            if not rows:
                existing = tx.execute(
                    "SELECT id FROM events WHERE source = ? AND delivery_id = ?",
                    (source, delivery_id),
                )
                return ReceiveResult(new=False, event_id=int(existing[0][0]))
            event_id = int(rows[0][0])
            job = tx.execute(
                "INSERT INTO jobs (event_id, state, not_before, created_at, updated_at)"
                " VALUES (?, 'pending', ?, ?, ?) RETURNING id",
                (event_id, at, at, at),
            )
            return ReceiveResult(new=True, event_id=event_id, job_id=int(job[0][0]))

    def _job(self, row: Sequence[Any]) -> Job:
        return Job(
            id=int(row[0]),
            event_id=int(row[1]),
            source=row[2],
            delivery_id=row[3],
            body=bytes(row[4]),
            headers=self._from_json(row[5]),
            attempts=int(row[6]),
            claims=int(row[7]),
            not_before=self._from_ts(row[8]),
            state=row[9],
            last_error=row[10],
            claimed_by=row[11],
            lease_until=self._ots(row[12]),
            received_at=self._ots(row[13]),
        )

    def _jobs_by_id(self, tx: Tx, ids: Sequence[int]) -> list[Job]:
        jobs: list[Job] = []
        for chunk in iter_chunks(list(ids), 500):
            marks = ", ".join("?" * len(chunk))
            rows = tx.execute(
                f"SELECT {_JOB_COLUMNS} FROM jobs j JOIN events e ON e.id = j.event_id"
                f" WHERE j.id IN ({marks})",
                tuple(chunk),
            )
            jobs.extend(self._job(row) for row in rows)
        jobs.sort(key=lambda job: (job.not_before, job.id))
        return jobs

    def claim(
        self, worker: str, now: dt.datetime, limit: int = 1, lease_seconds: float = 60
    ) -> list[Job]:
        if limit < 1:
            return []
        now = utc(now)
        at = self._ts(now)
        lease = self._ts(now + dt.timedelta(seconds=lease_seconds))
        ready = "(state = 'pending' AND not_before <= ?) OR (state = 'claimed' AND lease_until <= ?)"
        with self._tx() as tx:
            rows = tx.execute(
                self._claim_sql(
                    "jobs",
                    ready,
                    "not_before, id",
                    "state = 'claimed', claimed_by = ?, lease_until = ?, claims = claims + 1,"
                    " updated_at = ?",
                    "id",
                ),
                (at, at, limit, worker, lease, at, at, at),
            )
            return self._jobs_by_id(tx, [int(row[0]) for row in rows])

    def extend_lease(
        self, job_id: int, worker: str, now: dt.datetime, lease_seconds: float = 60
    ) -> bool:
        now = utc(now)
        with self._tx() as tx:
            rows = tx.execute(
                "UPDATE jobs SET lease_until = ?, updated_at = ?"
                " WHERE id = ? AND state = 'claimed' AND claimed_by = ? RETURNING id",
                (self._ts(now + dt.timedelta(seconds=lease_seconds)), self._ts(now), job_id, worker),
            )
            return bool(rows)

    @staticmethod
    def _owner(worker: str | None) -> tuple[str, tuple[Any, ...]]:
        if worker is None:
            return "", ()
        return " AND claimed_by = ?", (worker,)

    def complete(self, job_id: int, worker: str | None = None) -> bool:
        owner, params = self._owner(worker)
        with self._tx() as tx:
            rows = tx.execute(
                "UPDATE jobs SET state = 'done', lease_until = NULL, updated_at = ?"
                f" WHERE id = ? AND state IN ('claimed', 'pending'){owner} RETURNING id",
                (self._ts(utcnow()), job_id, *params),
            )
            return bool(rows)

    def retry(
        self,
        job_id: int,
        error: str,
        now: dt.datetime,
        delay_seconds: float,
        worker: str | None = None,
    ) -> bool:
        now = utc(now)
        owner, params = self._owner(worker)
        with self._tx() as tx:
            rows = tx.execute(
                "UPDATE jobs SET state = 'pending', attempts = attempts + 1,"
                " not_before = ?, last_error = ?, claimed_by = NULL, lease_until = NULL,"
                " updated_at = ?"
                f" WHERE id = ? AND state IN ('claimed', 'pending'){owner} RETURNING id",
                (
                    self._ts(now + dt.timedelta(seconds=delay_seconds)),
                    error,
                    self._ts(now),
                    job_id,
                    *params,
                ),
            )
            return bool(rows)

    def park(self, job_id: int, error: str, worker: str | None = None) -> bool:
        owner, params = self._owner(worker)
        with self._tx() as tx:
            rows = tx.execute(
                "UPDATE jobs SET state = 'parked', last_error = ?, lease_until = NULL,"
                " updated_at = ?"
                f" WHERE id = ? AND state IN ('claimed', 'pending'){owner} RETURNING id",
                (error, self._ts(utcnow()), job_id, *params),
            )
            return bool(rows)

    def parked(self, limit: int = 100) -> list[Job]:
        with self._tx(write=False) as tx:
            rows = tx.execute(
                f"SELECT {_JOB_COLUMNS} FROM jobs j JOIN events e ON e.id = j.event_id"
                " WHERE j.state = 'parked' ORDER BY j.updated_at, j.id LIMIT ?",
                (limit,),
            )
            return [self._job(row) for row in rows]

    def requeue(self, job_id: int, now: dt.datetime | None = None) -> bool:
        at = self._ts(utc(now) if now is not None else utcnow())
        with self._tx() as tx:
            rows = tx.execute(
                "UPDATE jobs SET state = 'pending', attempts = 0, not_before = ?,"
                " claimed_by = NULL, lease_until = NULL, updated_at = ?"
                " WHERE id = ? AND state = 'parked' RETURNING id",
                (at, at, job_id),
            )
            return bool(rows)

    def get_job(self, job_id: int) -> Job | None:
        with self._tx(write=False) as tx:
            jobs = self._jobs_by_id(tx, [job_id])
            return jobs[0] if jobs else None

    def queue_depth(self) -> int:
        with self._tx(write=False) as tx:
            rows = tx.execute("SELECT COUNT(*) FROM jobs WHERE state IN ('pending', 'claimed')")
            return int(rows[0][0])

    def counts(self) -> dict[str, int]:
        result = {state: 0 for state in JOB_STATES}
        with self._tx(write=False) as tx:
            for state, count in tx.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state"):
                result[state] = int(count)
        return result

    # -- timers ----------------------------------------------------------------

    def _timer(self, row: Sequence[Any]) -> Timer:
        return Timer(
            ticket_id=row[0],
            deadline_key=row[1],
            step=row[2],
            due_at=self._from_ts(row[3]),
            fired_at=self._ots(row[4]),
        )

    def set_timers(
        self,
        ticket_id: str,
        deadline_key: str,
        steps: Sequence[tuple[str, dt.datetime]],
    ) -> None:
        wanted = {name: self._ts(utc(due)) for name, due in steps}
        created = self._ts(utcnow())
        with self._tx() as tx:
            self._lock(tx, f"timers:{ticket_id}")
            tx.execute(
                "DELETE FROM timers WHERE ticket_id = ? AND fired_at IS NULL"
                " AND deadline_key <> ?",
                (ticket_id, deadline_key),
            )
            unfired = tx.execute(
                "SELECT step FROM timers WHERE ticket_id = ? AND deadline_key = ?"
                " AND fired_at IS NULL",
                (ticket_id, deadline_key),
            )
            for (step,) in unfired:
                if step not in wanted:
                    tx.execute(
                        "DELETE FROM timers WHERE ticket_id = ? AND deadline_key = ?"
                        " AND step = ? AND fired_at IS NULL",
                        (ticket_id, deadline_key, step),
                    )
            for step, due in wanted.items():
                tx.execute(
                    "INSERT INTO timers (ticket_id, deadline_key, step, due_at, created_at)"
                    " VALUES (?, ?, ?, ?, ?)"
                    " ON CONFLICT (ticket_id, deadline_key, step) DO UPDATE"
                    " SET due_at = excluded.due_at WHERE timers.fired_at IS NULL",
                    (ticket_id, deadline_key, step, due, created),
                )

    def clear_timers(self, ticket_id: str) -> int:
        with self._tx() as tx:
            self._lock(tx, f"timers:{ticket_id}")
            rows = tx.execute(
                "DELETE FROM timers WHERE ticket_id = ? AND fired_at IS NULL RETURNING id",
                (ticket_id,),
            )
            return len(rows)

    def timers_of(self, ticket_id: str) -> list[Timer]:
        with self._tx(write=False) as tx:
            rows = tx.execute(
                f"SELECT {_TIMER_COLUMNS} FROM timers WHERE ticket_id = ?"
                " ORDER BY due_at, deadline_key, step",
                (ticket_id,),
            )
            return [self._timer(row) for row in rows]

    def fire_due(self, now: dt.datetime, limit: int = 100) -> list[Timer]:
        if limit < 1:
            return []
        at = self._ts(utc(now))
        with self._tx() as tx:
            rows = tx.execute(
                self._claim_sql(
                    "timers", "fired_at IS NULL AND due_at <= ?", "due_at, id",
                    "fired_at = ?", _TIMER_COLUMNS,
                ),
                (at, limit, at, at),
            )
        timers = [self._timer(row) for row in rows]
        timers.sort(key=lambda t: (t.due_at, t.ticket_id, t.deadline_key, t.step))
        return timers

    def next_due(self) -> dt.datetime | None:
        with self._tx(write=False) as tx:
            rows = tx.execute("SELECT MIN(due_at) FROM timers WHERE fired_at IS NULL")
            return self._ots(rows[0][0])

    # -- audit -----------------------------------------------------------------

    def audit(
        self, kind: str, subject: str, data: Mapping[str, Any], now: dt.datetime
    ) -> int:
        with self._tx() as tx:
            rows = tx.execute(
                "INSERT INTO audit (at, kind, subject, data) VALUES (?, ?, ?, ?) RETURNING id",
                (self._ts(utc(now)), kind, subject, self._json(dict(data))),
            )
            return int(rows[0][0])

    def audit_log(
        self, subject: str | None = None, kind: str | None = None, limit: int = 100
    ) -> list[AuditEntry]:
        where: list[str] = []
        params: list[Any] = []
        if subject is not None:
            where.append("subject = ?")
            params.append(subject)
        if kind is not None:
            where.append("kind = ?")
            params.append(kind)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        with self._tx(write=False) as tx:
            rows = tx.execute(
                f"SELECT id, at, kind, subject, data FROM audit{clause} ORDER BY id DESC LIMIT ?",
                (*params, limit),
            )
        return [
            AuditEntry(id=int(r[0]), at=self._from_ts(r[1]), kind=r[2], subject=r[3],
                       data=self._from_json(r[4]))
            for r in rows
        ]

    # -- subscriptions -----------------------------------------------------------

    def get_subscription(self, org_ref: str) -> Subscription | None:
        with self._tx(write=False) as tx:
            rows = tx.execute(
                "SELECT org_ref, plan, started_at, commitment_end, billing_period, updated_at"
                " FROM subscriptions WHERE org_ref = ?",
                (org_ref,),
            )
        if not rows:
            return None
        r = rows[0]
        return Subscription(
            org_ref=r[0],
            plan=r[1],
            started_at=self._from_ts(r[2]),
            commitment_end=self._ots(r[3]),
            billing_period=r[4],
            updated_at=self._from_ts(r[5]),
        )

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
        sub = Subscription(
            org_ref=org_ref,
            plan=plan,
            started_at=utc(started_at),
            commitment_end=utc(commitment_end) if commitment_end is not None else None,
            billing_period=billing_period,
            updated_at=utc(now),
        )
        with self._tx() as tx:
            tx.execute(
                "INSERT INTO subscriptions"
                " (org_ref, plan, started_at, commitment_end, billing_period, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (org_ref) DO UPDATE SET plan = excluded.plan,"
                " started_at = excluded.started_at, commitment_end = excluded.commitment_end,"
                " billing_period = excluded.billing_period, updated_at = excluded.updated_at",
                (
                    org_ref,
                    plan,
                    self._ts(sub.started_at),
                    self._ts(sub.commitment_end) if sub.commitment_end else None,
                    billing_period,
                    self._ts(sub.updated_at),
                ),
            )
        return sub

    # -- account managers --------------------------------------------------------

    def _assign(self, tx: Tx, org_ref: str, role: str, person: str, at: Any) -> None:
        tx.execute(
            "INSERT INTO account_managers (org_ref, role, person, assigned_at)"
            " VALUES (?, ?, ?, ?) ON CONFLICT (org_ref, role) DO UPDATE"
            " SET person = excluded.person, assigned_at = excluded.assigned_at",
            (org_ref, role, person, at),
        )

    def assign_manager(
        self, org_ref: str, role: str, person: str, now: dt.datetime | None = None
    ) -> None:
        at = self._ts(utc(now) if now is not None else utcnow())
        with self._tx() as tx:
            self._lock(tx, f"managers:{role}")
            self._assign(tx, org_ref, role, person, at)

    def assign_least_loaded(
        self,
        org_ref: str,
        role: str,
        pool: Sequence[str],
        capacity: int | None = None,
        now: dt.datetime | None = None,
    ) -> str | None:
        at = self._ts(utc(now) if now is not None else utcnow())
        with self._tx() as tx:
            self._lock(tx, f"managers:{role}")
            current = tx.execute(
                "SELECT person FROM account_managers WHERE org_ref = ? AND role = ?",
                (org_ref, role),
            )
            if current:
                return str(current[0][0])
            loads = self._loads(tx, role)
            order = {person: index for index, person in enumerate(pool)}
            candidates = [
                p for p in dict.fromkeys(pool) if capacity is None or loads.get(p, 0) < capacity
            ]
            if not candidates:
                return None
            chosen = min(candidates, key=lambda p: (loads.get(p, 0), order[p]))
            self._assign(tx, org_ref, role, chosen, at)
            return chosen

    def unassign_manager(self, org_ref: str, role: str | None = None) -> int:
        with self._tx() as tx:
            if role is None:
                rows = tx.execute(
                    "DELETE FROM account_managers WHERE org_ref = ? RETURNING role", (org_ref,)
                )
            else:
                rows = tx.execute(
                    "DELETE FROM account_managers WHERE org_ref = ? AND role = ? RETURNING role",
                    (org_ref, role),
                )
            return len(rows)

    def managers_of(self, org_ref: str) -> dict[str, str]:
        with self._tx(write=False) as tx:
            rows = tx.execute(
                "SELECT role, person FROM account_managers WHERE org_ref = ? ORDER BY role",
                (org_ref,),
            )
            return {role: person for role, person in rows}

    def _loads(self, tx: Tx, role: str) -> dict[str, int]:
        rows = tx.execute(
            "SELECT person, COUNT(*) FROM account_managers WHERE role = ?"
            " GROUP BY person ORDER BY person",
            (role,),
        )
        return {person: int(count) for person, count in rows}

    def manager_loads(self, role: str) -> dict[str, int]:
        with self._tx(write=False) as tx:
            return self._loads(tx, role)

    # -- VIP codes ------------------------------------------------------------

    def put_vip_hash(
        self, org_ref: str, salt: bytes, digest: bytes, now: dt.datetime | None = None
    ) -> None:
        at = self._ts(utc(now) if now is not None else utcnow())
        with self._tx() as tx:
            tx.execute(
                "INSERT INTO vip_codes (org_ref, salt, digest, updated_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (org_ref) DO UPDATE SET salt = excluded.salt,"
                " digest = excluded.digest, updated_at = excluded.updated_at",
                (org_ref, bytes(salt), bytes(digest), at),
            )

    def get_vip_hash(self, org_ref: str) -> VipHash | None:
        with self._tx(write=False) as tx:
            rows = tx.execute(
                "SELECT org_ref, salt, digest, updated_at FROM vip_codes WHERE org_ref = ?",
                (org_ref,),
            )
        if not rows:
            return None
        r = rows[0]
        return VipHash(org_ref=r[0], salt=bytes(r[1]), digest=bytes(r[2]),
                       updated_at=self._from_ts(r[3]))

    # -- held notifications ------------------------------------------------------

    def _held(self, row: Sequence[Any]) -> HeldNotification:
        return HeldNotification(
            id=int(row[0]),
            person=row[1],
            payload=self._from_json(row[2]),
            release_at=self._from_ts(row[3]),
            released_at=self._ots(row[4]),
        )

    def hold_notification(
        self, person: str, payload: Mapping[str, Any], release_at: dt.datetime
    ) -> int:
        with self._tx() as tx:
            rows = tx.execute(
                "INSERT INTO held_notifications (person, payload, release_at, created_at)"
                " VALUES (?, ?, ?, ?) RETURNING id",
                (person, self._json(dict(payload)), self._ts(utc(release_at)),
                 self._ts(utcnow())),
            )
            return int(rows[0][0])

    def release_notifications(
        self, now: dt.datetime, limit: int = 1000
    ) -> list[HeldNotification]:
        if limit < 1:
            return []
        at = self._ts(utc(now))
        with self._tx() as tx:
            rows = tx.execute(
                self._claim_sql(
                    "held_notifications", "released_at IS NULL AND release_at <= ?",
                    "release_at, id", "released_at = ?", _HELD_COLUMNS,
                ),
                (at, limit, at, at),
            )
        held = [self._held(row) for row in rows]
        held.sort(key=lambda n: (n.release_at, n.id))
        return held

    def next_release(self) -> dt.datetime | None:
        with self._tx(write=False) as tx:
            rows = tx.execute(
                "SELECT MIN(release_at) FROM held_notifications WHERE released_at IS NULL"
            )
            return self._ots(rows[0][0])

    # -- batched enqueueing --------------------------------------------------------

    #: Deliveries per multi-row INSERT (SQLite allows 999 parameters in old builds).
    RECEIVE_CHUNK: ClassVar[int] = 150

    def receive_many(
        self,
        source: str,
        deliveries: Sequence[tuple[str, bytes, Mapping[str, str]]],
        now: dt.datetime,
    ) -> list[ReceiveResult]:
        at = self._ts(utc(now))
        results: dict[str, ReceiveResult] = {}
        with self._tx() as tx:
            for chunk in iter_chunks(list(deliveries), self.RECEIVE_CHUNK):
                wanted = list(dict.fromkeys(d for d, _b, _h in chunk if d not in results))
                if not wanted:
                    continue
                first = {d: (b, h) for d, b, h in reversed(chunk)}  # first occurrence wins
                params: list[Any] = []
                for d in wanted:
                    body, headers = first[d]
                    params += [source, d, bytes(body), self._json(dict(headers)), at]
                rows = tx.execute(
                    "INSERT INTO events (source, delivery_id, body, headers, received_at) VALUES "
                    + ", ".join(["(?, ?, ?, ?, ?)"] * len(wanted))
                    + " ON CONFLICT (source, delivery_id) DO NOTHING RETURNING id, delivery_id",
                    params,
                )
                new = {str(d): int(i) for i, d in rows}
                old = [d for d in wanted if d not in new]
                if old:
                    marks = ", ".join("?" * len(old))
                    for i, d in tx.execute(
                        f"SELECT id, delivery_id FROM events WHERE source = ? AND delivery_id IN ({marks})",
                        (source, *old),
                    ):
                        results[str(d)] = ReceiveResult(new=False, event_id=int(i))
                if new:
                    event_ids = list(new.values())
                    jobs = tx.execute(
                        "INSERT INTO jobs (event_id, state, not_before, created_at, updated_at) VALUES "
                        + ", ".join(["(?, 'pending', ?, ?, ?)"] * len(event_ids))
                        + " RETURNING id, event_id",
                        [p for e in event_ids for p in (e, at, at, at)],
                    )
                    job_of = {int(e): int(j) for j, e in jobs}
                    for d, e in new.items():
                        results[d] = ReceiveResult(new=True, event_id=e, job_id=job_of[e])
        out: list[ReceiveResult] = []
        seen: set[str] = set()
        for d, _b, _h in deliveries:
            r = results[d]
            # A delivery id repeated within the call is a duplicate after its first time.
            out.append(r if d not in seen else ReceiveResult(new=False, event_id=r.event_id))
            seen.add(d)
        return out

    # -- pending periods -------------------------------------------------------------

    def pending_periods(
        self, ticket_id: str, pending: bool, now: dt.datetime
    ) -> list[tuple[dt.datetime, dt.datetime | None]]:
        now = utc(now)
        at = self._ts(now)
        with self._tx() as tx:
            self._lock(tx, f"pending:{ticket_id}")
            open_rows = tx.execute(
                "SELECT id, started_at FROM pending_periods WHERE ticket_id = ? AND ended_at IS NULL",
                (ticket_id,),
            )
            if pending and not open_rows:
                tx.execute(
                    "INSERT INTO pending_periods (ticket_id, started_at) VALUES (?, ?)",
                    (ticket_id, at),
                )
            elif not pending and open_rows:
                started = self._from_ts(open_rows[0][1])
                tx.execute(
                    "UPDATE pending_periods SET ended_at = ? WHERE id = ?",
                    (self._ts(max(now, started)), open_rows[0][0]),
                )
            rows = tx.execute(
                "SELECT started_at, ended_at FROM pending_periods WHERE ticket_id = ?"
                " ORDER BY started_at, id",
                (ticket_id,),
            )
        return [(self._from_ts(s), self._ots(e)) for s, e in rows]

    # -- housekeeping ------------------------------------------------------------

    def purge(self, before: dt.datetime) -> dict[str, int]:
        at = self._ts(utc(before))
        with self._tx() as tx:
            events = tx.execute(
                "DELETE FROM events WHERE received_at < ? AND id IN"
                " (SELECT event_id FROM jobs WHERE state = 'done' AND updated_at < ?)"
                " AND NOT EXISTS (SELECT 1 FROM jobs WHERE jobs.event_id = events.id"
                " AND jobs.state <> 'done') RETURNING id",
                (at, at),
            )
            timers = tx.execute(
                "DELETE FROM timers WHERE fired_at IS NOT NULL AND fired_at < ? RETURNING id",
                (at,),
            )
            held = tx.execute(
                "DELETE FROM held_notifications WHERE released_at IS NOT NULL"
                " AND released_at < ? RETURNING id",
                (at,),
            )
        return {"events": len(events), "timers": len(timers), "held_notifications": len(held)}
