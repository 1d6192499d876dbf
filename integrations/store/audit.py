"""The audit trail: decisions, plan changes, refusals (table ``audit``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from integrations.store.records import AuditEntry
from integrations.store.sqlcore import SQLCore, utc
from integrations.store.values import check_text


class AuditSQL(SQLCore):
    """Appending and reading audit records."""

    # -- audit -----------------------------------------------------------------

    def audit(
        self, kind: str, subject: str, data: Mapping[str, Any], now: dt.datetime
    ) -> int:
        check_text(kind, "audit kind")
        check_text(subject, "audit subject")
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
