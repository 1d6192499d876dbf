"""Escalation timers: per ticket and deadline key, each step fires once (table ``timers``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from integrations.store.records import Timer
from integrations.store.sqlcore import SQLCore, utc, utcnow
from integrations.store.values import check_text

_TIMER_COLUMNS = "ticket_id, deadline_key, step, due_at, fired_at"


class TimersSQL(SQLCore):
    """Setting, clearing and firing escalation timers."""

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
        check_text(ticket_id, "ticket id")
        check_text(deadline_key, "deadline key")
        wanted = {check_text(name, "step"): self._ts(utc(due)) for name, due in steps}
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
        check_text(ticket_id, "ticket id")
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
