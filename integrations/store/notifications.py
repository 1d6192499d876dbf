"""Notifications held for a person's digest (table ``held_notifications``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from integrations.store.records import HeldNotification
from integrations.store.sqlcore import SQLCore, utc, utcnow
from integrations.store.values import check_text

_HELD_COLUMNS = "id, person, payload, release_at, released_at"


class NotificationsSQL(SQLCore):
    """Holding notifications and releasing them once when due."""

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
        check_text(person, "person")
        with self._tx() as tx:
            rows = tx.execute(
                "INSERT INTO held_notifications (person, payload, release_at, created_at)"
                " VALUES (?, ?, ?, ?) RETURNING id",
                (person, self._json(dict(payload), "payload"), self._ts(utc(release_at)),
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
