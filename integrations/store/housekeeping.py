"""Housekeeping: purging old history (retention), and how old the queue's oldest work is.

Purging deletes in small batches, each its own transaction, so a large backlog of
history never holds the write lock (SQLite) or runs into the statement timeout
(PostgreSQL) while webhooks keep arriving.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

from integrations.store.sqlcore import SQLCore, Tx, utc

#: An event whose jobs are all done (and at least one exists), finished before ``?``.
_FINISHED_EVENT = (
    "EXISTS (SELECT 1 FROM jobs j WHERE j.event_id = events.id)"
    " AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.event_id = events.id"
    " AND (j.state <> 'done' OR j.updated_at >= ?))"
)


class HousekeepingSQL(SQLCore):
    """Retention across the table families."""

    #: Rows per purge transaction.
    PURGE_BATCH: ClassVar[int] = 500

    def purge(
        self,
        before: dt.datetime | None = None,
        *,
        bodies_before: dt.datetime | None = None,
        jobs_before: dt.datetime | None = None,
        audit_before: dt.datetime | None = None,
    ) -> dict[str, int]:
        jobs_cut = jobs_before if jobs_before is not None else before
        bodies_cut = bodies_before if bodies_before is not None else jobs_cut
        counts = {"bodies": 0, "jobs": 0, "events": 0, "timers": 0, "held_notifications": 0, "audit": 0}
        if jobs_cut is not None:
            at = self._ts(utc(jobs_cut))
            counts["jobs"], counts["events"] = self._purge_finished(at)
            counts["timers"] = self._batches(
                "DELETE FROM timers WHERE id IN (SELECT id FROM timers WHERE fired_at IS NOT NULL"
                " AND fired_at < ? LIMIT ?) RETURNING id", (at,))
            counts["held_notifications"] = self._batches(
                "DELETE FROM held_notifications WHERE id IN (SELECT id FROM held_notifications"
                " WHERE released_at IS NOT NULL AND released_at < ? LIMIT ?) RETURNING id", (at,))
        if bodies_cut is not None:
            at = self._ts(utc(bodies_cut))
            counts["bodies"] = self._batches(
                "UPDATE events SET body = ? WHERE id IN (SELECT id FROM events WHERE received_at < ?"
                f" AND length(body) > 0 AND {_FINISHED_EVENT} LIMIT ?) RETURNING id", (b"", at, at))
        if audit_before is not None:
            at = self._ts(utc(audit_before))
            # Each ticket's newest decision is what policydesk last applied to it: kept.
            counts["audit"] = self._batches(
                "DELETE FROM audit WHERE id IN (SELECT id FROM audit WHERE at < ? AND id NOT IN"
                " (SELECT MAX(id) FROM audit WHERE kind = 'decision' GROUP BY subject) LIMIT ?)"
                " RETURNING id", (at,))
        return counts

    def _batches(self, sql: str, params: tuple[Any, ...]) -> int:
        """Run ``sql`` (its last parameter the batch size) until it affects no more rows."""
        total = 0
        while True:
            with self._tx() as tx:
                done = len(tx.execute(sql, (*params, self.PURGE_BATCH)))
            total += done
            if done < self.PURGE_BATCH:
                return total

    def _purge_finished(self, at: Any) -> tuple[int, int]:
        """Delete done jobs finished before ``at`` with their events; (jobs, events)."""
        jobs = events = 0
        while True:
            with self._tx() as tx:
                ids = [int(row[0]) for row in tx.execute(
                    f"SELECT id FROM events WHERE received_at < ? AND {_FINISHED_EVENT} LIMIT ?",
                    (at, at, self.PURGE_BATCH),
                )]
                if ids:
                    jobs += self._delete_ids(tx, "jobs", "event_id", ids)
                    events += self._delete_ids(tx, "events", "id", ids)
            if len(ids) < self.PURGE_BATCH:
                return jobs, events

    @staticmethod
    def _delete_ids(tx: Tx, table: str, column: str, ids: list[int]) -> int:
        marks = ", ".join("?" * len(ids))
        return len(tx.execute(f"DELETE FROM {table} WHERE {column} IN ({marks}) RETURNING 1", ids))

    def oldest_pending_age(self, now: dt.datetime) -> float:
        with self._tx(write=False) as tx:
            rows = tx.execute(
                f"SELECT created_at FROM jobs{self._using('jobs_open')}"
                " WHERE state IN ('pending', 'claimed') ORDER BY id LIMIT 1"
            )
        if not rows:
            return 0.0
        return max(0.0, (utc(now) - self._from_ts(rows[0][0])).total_seconds())
