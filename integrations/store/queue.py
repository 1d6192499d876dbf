"""The work queue: claiming, leases, completion, retries, parking (table ``jobs``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from integrations.store.records import JOB_STATES, Job
from integrations.store.sqlcore import SQLCore, Tx, iter_chunks, utc, utcnow

JOB_COLUMNS = (
    "j.id, j.event_id, e.source, e.delivery_id, e.body, e.headers, j.attempts, j.claims,"
    " j.not_before, j.state, j.last_error, j.claimed_by, j.lease_until, e.received_at"
)


class JobQueueSQL(SQLCore):
    """The job half of the queue; events are stored by :class:`~.ingest.IngestSQL`."""

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
                f"SELECT {JOB_COLUMNS} FROM jobs j JOIN events e ON e.id = j.event_id"
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
        result: dict[str, int] = {state: 0 for state in JOB_STATES}
        with self._tx(write=False) as tx:
            for state, count in tx.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state"):
                result[state] = int(count)
        return result
