"""The work queue: claiming, leases, completion, retries, parking (table ``jobs``)."""

from __future__ import annotations

import datetime as dt

from integrations.store.claims import JOB_COLUMNS, ClaimsSQL
from integrations.store.records import JOB_STATES, Job
from integrations.store.sqlcore import utc, utcnow
from integrations.store.values import storable_error


class JobQueueSQL(ClaimsSQL):
    """What happens to a claimed job, the queue's state, and waiting for work."""

    def complete(self, job_id: int, worker: str | None = None) -> bool:
        owner, params = self._owner(worker)
        with self._tx(durable=False) as tx:  # a completion lost to a power failure: the job is done again
            rows = tx.execute(
                "UPDATE jobs SET state = 'done', lease_until = NULL, updated_at = ?"
                f" WHERE id = ? AND state IN ('claimed', 'pending'){owner} RETURNING work_key",
                (self._ts(utcnow()), job_id, *params),
            )
            if rows:
                self._release_key(tx, rows[0][0], job_id)
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
                f" WHERE id = ? AND state IN ('claimed', 'pending'){owner} RETURNING work_key",
                (
                    self._ts(now + dt.timedelta(seconds=delay_seconds)),
                    storable_error(error),
                    self._ts(now),
                    job_id,
                    *params,
                ),
            )
            if rows:
                self._release_key(tx, rows[0][0], job_id)
                self._work_arrived(tx)  # waiters recompute when the backoff ends
            return bool(rows)

    def park(self, job_id: int, error: str, worker: str | None = None) -> bool:
        owner, params = self._owner(worker)
        with self._tx() as tx:
            rows = tx.execute(
                "UPDATE jobs SET state = 'parked', last_error = ?, lease_until = NULL,"
                " updated_at = ?"
                f" WHERE id = ? AND state IN ('claimed', 'pending'){owner} RETURNING work_key",
                (storable_error(error), self._ts(utcnow()), job_id, *params),
            )
            if rows:
                self._release_key(tx, rows[0][0], job_id)
            return bool(rows)

    def parked(self, limit: int = 100) -> list[Job]:
        with self._tx(write=False) as tx:
            rows = tx.execute(
                f"SELECT {JOB_COLUMNS} FROM jobs j JOIN events e ON e.id = j.event_id"
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
            if rows:
                self._work_arrived(tx)
            return bool(rows)

    def get_job(self, job_id: int) -> Job | None:
        with self._tx(write=False) as tx:
            jobs = self._jobs_by_id(tx, [job_id])
            return jobs[0] if jobs else None

    def queue_depth(self) -> int:
        with self._tx(write=False) as tx:
            rows = tx.execute(f"SELECT COUNT(*) FROM jobs{self._using('jobs_open')} WHERE state IN ('pending', 'claimed')")
            return int(rows[0][0])

    def counts(self) -> dict[str, int]:
        result: dict[str, int] = {state: 0 for state in JOB_STATES}
        with self._tx(write=False) as tx:
            for state, count in tx.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state"):
                result[state] = int(count)
        return result

    # -- waiting for work ------------------------------------------------------

    def notify_work(self) -> None:
        self._work.notify()

    def wait_for_work(self, timeout: float) -> bool:
        bound = timeout
        try:
            wake = self._next_wake(utcnow())
        except Exception:  # noqa: BLE001 - the database is down: wait the full timeout
            wake = None
        if wake is not None:
            bound = min(bound, max(0.0, wake))
        self._listen()
        return self._work.wait(bound)

    def _next_wake(self, now: dt.datetime) -> float | None:
        """Seconds until a backoff ends or a lease runs out (work then becomes ready
        without anyone announcing it), or ``None``."""
        at = self._ts(now)
        with self._tx(write=False) as tx:
            rows = tx.execute(
                f"SELECT MIN(not_before) FROM jobs{self._using('jobs_ready')}"
                " WHERE state = 'pending' AND not_before > ?", (at,)
            )
            leases = tx.execute(
                f"SELECT MIN(lease_until) FROM jobs{self._using('jobs_lease')}"
                " WHERE state = 'claimed' AND lease_until > ?", (at,)
            )
        times = [self._from_ts(v) for v in (rows[0][0], leases[0][0]) if v is not None]
        return (min(times) - now).total_seconds() if times else None

    def _listen(self) -> None:
        """Start hearing other processes' announcements (PostgreSQL: LISTEN); nothing here."""
