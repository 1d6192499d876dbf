"""Housekeeping: purging old history, and how old the queue's oldest work is."""

from __future__ import annotations

import datetime as dt

from integrations.store.sqlcore import SQLCore, utc


class HousekeepingSQL(SQLCore):
    """Retention across the table families."""

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
