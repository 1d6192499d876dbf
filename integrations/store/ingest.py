"""Received events: stored once per (source, delivery id), each with its job (``events``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from integrations.store.records import ReceiveResult
from integrations.store.sqlcore import SQLCore, iter_chunks, utc


class IngestSQL(SQLCore):
    """Receiving webhook events durably, one at a time or in batches."""

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
