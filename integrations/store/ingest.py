"""Received events: stored once per (source, delivery id), each with its job (``events``).

:meth:`IngestSQL.receive` outside an :meth:`~.sqlcore.SQLCore.atomic` block goes
through group commit (:mod:`integrations.store.groupcommit`): the receives waiting at
the same moment share one transaction and one fsync, and each returns only after that
commit. Inside an ``atomic`` block it joins the caller's transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from integrations.store.groupcommit import GroupCommit
from integrations.store.records import ReceiveResult, StoreError, StoreValueError
from integrations.store.sqlcore import SQLCore, Tx, iter_chunks, utc
from integrations.store.values import check_optional_text, check_text

#: ``(delivery_id, body, headers)`` or ``(delivery_id, body, headers, key)``.
Delivery = tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class _Event:
    """One event to store, its values already checked and converted."""

    source: str
    delivery_id: str
    body: bytes
    headers: Any
    key: str | None
    at: Any


class IngestSQL(SQLCore):
    """Receiving webhook events durably, one at a time or in batches."""

    #: Events per multi-row INSERT (SQLite allows 999 parameters in old builds).
    RECEIVE_CHUNK: ClassVar[int] = 150
    #: Group commits under way at once (see :class:`GroupCommit`). One, on SQLite (writes are
    #: serialised) and on PostgreSQL alike: a commit's NOTIFY serialises PostgreSQL's commits
    #: too, and on loopback more committers only compete for the CPU (ingest at 2,000/s on
    #: 2 cores: p99 12 ms with one, 64 ms with two, 59 ms with six). A database far away,
    #: where a commit is mostly waiting for the network, may gain from more.
    COMMIT_LANES: ClassVar[int] = 1

    def __init__(self) -> None:
        super().__init__()
        self._group: GroupCommit[_Event, ReceiveResult] = GroupCommit(
            self._write_group, alone=StoreValueError, lanes=self.COMMIT_LANES)

    def _event(
        self, source: str, delivery_id: str, body: bytes, headers: Mapping[str, str], key: str | None, at: Any
    ) -> _Event:
        return _Event(
            check_text(source, "source"),
            check_text(delivery_id, "delivery id"),
            bytes(body),
            self._json(dict(headers), "headers"),
            check_optional_text(key, "key"),
            at,
        )

    def receive(
        self,
        source: str,
        delivery_id: str,
        body: bytes,
        headers: Mapping[str, str],
        now: dt.datetime,
        key: str | None = None,
    ) -> ReceiveResult:
        event = self._event(source, delivery_id, body, headers, key, self._ts(utc(now)))
        if getattr(self._local, "tx", None) is not None:  # inside atomic(): join it
            if self._in_relaxed_block():
                raise StoreError("receive() inside atomic(durable=False): an acknowledged event must be durable")
            with self._tx() as tx:
                return self._store_events(tx, [event])[0]
        return self._group.submit(event)

    def receive_nowait(
        self,
        source: str,
        delivery_id: str,
        body: bytes,
        headers: Mapping[str, str],
        now: dt.datetime,
        key: str | None,
        done: Callable[[ReceiveResult | None, BaseException | None], None],
    ) -> None:
        event = self._event(source, delivery_id, body, headers, key, self._ts(utc(now)))
        if getattr(self._local, "tx", None) is not None:
            raise StoreError("receive_nowait() inside atomic(): it commits on its own, after this returns")
        self._group.submit_nowait(event, done)

    def _close_group_commit(self) -> None:
        """Write what is queued, then stop the committer threads (before the connections close)."""
        self._group.close()

    def _write_group(self, events: Sequence[_Event]) -> list[ReceiveResult]:
        with self._tx() as tx:
            return self._store_events(tx, events)

    def receive_many(
        self,
        source: str,
        deliveries: Sequence[Delivery],
        now: dt.datetime,
    ) -> list[ReceiveResult]:
        at = self._ts(utc(now))
        events = [
            self._event(source, d[0], d[1], d[2], d[3] if len(d) > 3 else None, at) for d in deliveries
        ]
        with self._tx() as tx:
            return self._store_events(tx, events)

    def _store_events(self, tx: Tx, events: Sequence[_Event]) -> list[ReceiveResult]:
        """Insert the new events and a job for each; a known (source, delivery id),
        also one repeated within ``events``, is a duplicate after its first time."""
        results: dict[tuple[str, str], ReceiveResult] = {}
        for chunk in iter_chunks(list(events), self.RECEIVE_CHUNK):
            first: dict[tuple[str, str], _Event] = {}
            for event in chunk:
                ident = (event.source, event.delivery_id)
                if ident not in results and ident not in first:
                    first[ident] = event
            if not first:
                continue
            rows = self._insert_events(tx, list(first.values()))
            new = {(str(s), str(d)): int(i) for i, s, d in rows}
            for ident in first:
                if ident not in new:
                    found = tx.execute(
                        "SELECT id FROM events WHERE source = ? AND delivery_id = ?", ident
                    )
                    results[ident] = ReceiveResult(new=False, event_id=int(found[0][0]))
            if new:
                fresh = [(new[(e.source, e.delivery_id)], e) for e in (first[ident] for ident in new)]
                job_of = {int(e): int(j) for j, e in self._insert_jobs(tx, fresh)}
                for ident, event_id in new.items():
                    results[ident] = ReceiveResult(new=True, event_id=event_id, job_id=job_of[event_id])
                self._work_arrived(tx)
        out: list[ReceiveResult] = []
        seen: set[tuple[str, str]] = set()
        for event in events:
            ident = (event.source, event.delivery_id)
            r = results[ident]
            out.append(r if ident not in seen else ReceiveResult(new=False, event_id=r.event_id))
            seen.add(ident)
        return out

    def _insert_events(self, tx: Tx, events: Sequence[_Event]) -> list[tuple[Any, ...]]:
        """Insert ``events`` (one statement); ``(id, source, delivery id)`` of those that were new."""
        return tx.execute(
            "INSERT INTO events (source, delivery_id, body, headers, received_at) VALUES "
            + ", ".join(["(?, ?, ?, ?, ?)"] * len(events))
            + " ON CONFLICT (source, delivery_id) DO NOTHING RETURNING id, source, delivery_id",
            [p for e in events for p in (e.source, e.delivery_id, e.body, e.headers, e.at)],
        )

    def _insert_jobs(self, tx: Tx, events: Sequence[tuple[int, _Event]]) -> list[tuple[Any, ...]]:
        """A pending job for each ``(event id, event)`` (one statement); ``(job id, event id)``."""
        return tx.execute(
            "INSERT INTO jobs (event_id, source, work_key, state, not_before, created_at, updated_at) VALUES "
            + ", ".join(["(?, ?, ?, 'pending', ?, ?, ?)"] * len(events)) + " RETURNING id, event_id",
            [p for i, e in events for p in (i, e.source, e.key, e.at, e.at, e.at)],
        )
