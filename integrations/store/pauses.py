"""Pending periods of a ticket: the SLA clock pauses in them (table ``pending_periods``)."""

from __future__ import annotations

import datetime as dt

from integrations.store.sqlcore import SQLCore, utc
from integrations.store.values import check_text


class PausesSQL(SQLCore):
    """Recording when a ticket enters and leaves Zammad's pending states."""

    # -- pending periods -------------------------------------------------------------

    def pending_periods(
        self, ticket_id: str, pending: bool, now: dt.datetime
    ) -> list[tuple[dt.datetime, dt.datetime | None]]:
        check_text(ticket_id, "ticket id")
        now = utc(now)
        at = self._ts(now)
        with self._tx(write=False) as tx:  # most calls change nothing: no write lock for them
            rows = tx.execute(
                "SELECT started_at, ended_at FROM pending_periods WHERE ticket_id = ?"
                " ORDER BY started_at, id",
                (ticket_id,),
            )
        if (any(e is None for _, e in rows)) == pending:
            return [(self._from_ts(s), self._ots(e)) for s, e in rows]
        with self._tx() as tx:  # open or close a period, checked again under the ticket's lock
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
