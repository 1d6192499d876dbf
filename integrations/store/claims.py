"""Claiming jobs: per-key serialisation and coalescing (tables ``jobs``, ``key_claims``).

A job with a key (``ticket:<id>``) is only claimed together with its key: a
``key_claims`` row per key, taken with ``INSERT ... ON CONFLICT DO UPDATE ... WHERE
the old lease expired``. The primary key makes that atomic across connections and
processes (PostgreSQL re-checks the condition on the latest row version), so two
workers never hold one ticket. On PostgreSQL a transaction-scoped advisory try-lock
first lets a claimer skip a key another claimer is taking right now instead of
waiting for it. The key claim expires with the job's lease and is released when the
job is completed, retried or parked.

Coalescing: for a key it may take, a claim hands out the newest queued job of that
(key, source) and marks the older ones done, "coalesced into <id>" — a burst of
triggers for one ticket costs one evaluation, of its latest event. A newest job still
in backoff is not handed out early (the key is left alone until then).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from integrations.store.records import Job
from integrations.store.sqlcore import SQLCore, Tx, iter_chunks, utc

JOB_COLUMNS = (
    "j.id, j.event_id, e.source, e.delivery_id, e.body, e.headers, j.attempts, j.claims,"
    " j.not_before, j.state, j.last_error, j.claimed_by, j.lease_until, e.received_at,"
    " j.work_key, j.coalesced"
)
#: Ready to claim, as two sets each read in its own partial index's order (one query over
#: both would read and sort every pending job): ``(index, condition, order)``. Queued and
#: due; claimed by a worker whose lease ran out.
READY = (("jobs_ready", "state = 'pending' AND not_before <= ?", "not_before, id"),
         ("jobs_lease", "state = 'claimed' AND lease_until <= ?", "lease_until, id"))
#: Not held by a live claim on its key.
KEY_FREE = ("(work_key IS NULL OR NOT EXISTS (SELECT 1 FROM key_claims k"
            " WHERE k.work_key = jobs.work_key AND k.lease_until > ?))")
#: Candidates looked at per job wanted (several may share a key or be taken by others).
CANDIDATES_PER_JOB = 4


class ClaimsSQL(SQLCore):
    """Claiming ready jobs, keyed ones one key at a time, and their leases."""

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
            key=row[14],
            coalesced=int(row[15] or 0),
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
        with self._tx(durable=False) as tx:  # a claim lost to a power failure: the job is claimed again
            candidates = self._candidates(tx, at, limit * CANDIDATES_PER_JOB + 8)
            unkeyed = sum(1 for _id, key, _source in candidates if key is None)
            claimed = self._claim_unkeyed(tx, limit if unkeyed else 0, worker, at, lease)
            tried: set[str] = set()
            for _job_id, key, source in candidates:
                if len(claimed) >= limit:
                    break
                if key is None or key in tried:
                    continue
                tried.add(key)
                job_id = self._claim_key(tx, key, source, worker, now, at, lease)
                if job_id is not None:
                    claimed.append(job_id)
            return self._jobs_by_id(tx, claimed)

    def _candidates(self, tx: Tx, at: Any, count: int) -> list[tuple[Any, ...]]:
        """Up to ``count`` ready jobs on free keys, ``(id, key, source)``, oldest first."""
        rows: list[tuple[Any, ...]] = []
        for index, ready, order in READY:
            rows += tx.execute(
                f"SELECT id, work_key, source, not_before FROM jobs{self._using(index)}"
                f" WHERE {ready} AND {KEY_FREE} ORDER BY {order} LIMIT ?", (at, at, count))
        rows.sort(key=lambda row: (row[3], row[0]))
        return [row[:3] for row in rows[:count]]

    def _claim_unkeyed(self, tx: Tx, count: int, worker: str, at: Any, lease: Any) -> list[int]:
        """Claim up to ``count`` ready jobs without a key, skipping those others are taking:
        due pending ones first, then those whose lease ran out."""
        claimed: list[int] = []
        assign = "state = 'claimed', claimed_by = ?, lease_until = ?, claims = claims + 1, updated_at = ?"
        for index, ready, order in READY:
            if len(claimed) >= count:
                break
            rows = tx.execute(self._claim_sql("jobs", f"work_key IS NULL AND {ready}", order, assign, "id",
                                              using=self._using(index)),
                              (at, count - len(claimed), worker, lease, at, at))
            claimed.extend(int(row[0]) for row in rows)
        return claimed

    def _claim_key(
        self, tx: Tx, key: str, source: str | None, worker: str, now: dt.datetime, at: Any, lease: Any
    ) -> int | None:
        """Take ``key`` and hand out its newest queued job of ``source`` (coalescing the
        older ones); ``None`` if another worker holds the key or the newest is not due."""
        if not self._try_lock(tx, f"key:{key}"):
            return None  # another claimer is taking it this very moment
        taken = tx.execute(
            "INSERT INTO key_claims (work_key, worker, job_id, lease_until) VALUES (?, ?, 0, ?)"
            " ON CONFLICT (work_key) DO UPDATE SET worker = excluded.worker, job_id = 0,"
            " lease_until = excluded.lease_until WHERE key_claims.lease_until <= ? RETURNING work_key",
            (key, worker, lease, at),
        )
        if not taken:
            return None
        source_match = "source = ?" if source is not None else "source IS NULL"
        queued = tx.execute(
            f"SELECT id, state, not_before FROM jobs{self._using('jobs_work_key')} WHERE work_key = ?"
            f" AND {source_match} AND state IN ('pending', 'claimed')"  # the partial index's own condition
            " AND (state = 'pending' OR (state = 'claimed' AND lease_until <= ?)) ORDER BY id DESC",
            (key, *((source,) if source is not None else ()), at),
        )
        if not queued or (queued[0][1] == "pending" and self._from_ts(queued[0][2]) > now):
            tx.execute("DELETE FROM key_claims WHERE work_key = ? AND job_id = 0", (key,))
            return None
        newest = int(queued[0][0])
        older = [int(row[0]) for row in queued[1:]]
        for chunk in iter_chunks(older, 500):
            tx.execute(
                "UPDATE jobs SET state = 'done', claimed_by = NULL, lease_until = NULL, updated_at = ?,"
                f" last_error = ? WHERE id IN ({', '.join('?' * len(chunk))})",
                (at, f"coalesced into {newest}", *chunk),
            )
        tx.execute(
            "UPDATE jobs SET state = 'claimed', claimed_by = ?, lease_until = ?, claims = claims + 1,"
            " coalesced = coalesced + ?, updated_at = ? WHERE id = ?",
            (worker, lease, len(older), at, newest),
        )
        tx.execute("UPDATE key_claims SET job_id = ? WHERE work_key = ?", (newest, key))
        return newest

    def extend_lease(
        self, job_id: int, worker: str, now: dt.datetime, lease_seconds: float = 60
    ) -> bool:
        now = utc(now)
        lease = self._ts(now + dt.timedelta(seconds=lease_seconds))
        with self._tx(durable=False) as tx:
            rows = tx.execute(
                "UPDATE jobs SET lease_until = ?, updated_at = ?"
                " WHERE id = ? AND state = 'claimed' AND claimed_by = ? RETURNING work_key",
                (lease, self._ts(now), job_id, worker),
            )
            if rows and rows[0][0] is not None:
                tx.execute(
                    "UPDATE key_claims SET lease_until = ? WHERE work_key = ? AND job_id = ?",
                    (lease, rows[0][0], job_id),
                )
            return bool(rows)

    def extend_leases(
        self, job_ids: Sequence[int], worker: str, now: dt.datetime, lease_seconds: float = 60
    ) -> set[int]:
        """:meth:`extend_lease` for many jobs in one transaction (one fsync, not one per job);
        returns the ids ``worker`` still holds."""
        now = utc(now)
        lease = self._ts(now + dt.timedelta(seconds=lease_seconds))
        held: set[int] = set()
        with self._tx(durable=False) as tx:
            for chunk in iter_chunks(list(job_ids), 500):
                rows = tx.execute(
                    "UPDATE jobs SET lease_until = ?, updated_at = ?"
                    f" WHERE id IN ({', '.join('?' * len(chunk))}) AND state = 'claimed' AND claimed_by = ?"
                    " RETURNING id, work_key",
                    (lease, self._ts(now), *chunk, worker),
                )
                for job_id, key in rows:
                    held.add(int(job_id))
                    if key is not None:
                        tx.execute(
                            "UPDATE key_claims SET lease_until = ? WHERE work_key = ? AND job_id = ?",
                            (lease, key, job_id),
                        )
        return held

    def _release_key(self, tx: Tx, key: str | None, job_id: int) -> None:
        """The job no longer runs: free its key, and wake workers if the key has more work."""
        if key is None:
            return
        released = tx.execute(
            "DELETE FROM key_claims WHERE work_key = ? AND job_id = ? RETURNING work_key", (key, job_id)
        )
        if released and tx.execute(
            f"SELECT 1 FROM jobs{self._using('jobs_work_key')} WHERE work_key = ?"
            " AND state IN ('pending', 'claimed') AND state = 'pending' LIMIT 1", (key,)
        ):
            self._work_arrived(tx)
