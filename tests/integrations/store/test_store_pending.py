"""The store additions for the scheduler: pending periods, batched receive, next release.

On SQLite and PostgreSQL (see ``store_fixtures``).
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable

from store_fixtures import open_same, pg_dsn, pg_schema, store  # noqa: F401

from integrations.store import Store
from integrations.store.schema import LATEST

UTC = dt.timezone.utc
T0 = dt.datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
H = dt.timedelta(hours=1)


def test_schema_has_the_pending_periods_migration(store: Store) -> None:
    assert LATEST >= 2 and store.schema_version() == LATEST


def test_pending_periods_open_close_idempotent(store: Store) -> None:
    assert store.pending_periods("1", pending=False, now=T0) == []
    assert store.pending_periods("1", pending=True, now=T0) == [(T0, None)]
    # still pending later: the open period keeps its start
    assert store.pending_periods("1", pending=True, now=T0 + H) == [(T0, None)]
    assert store.pending_periods("1", pending=False, now=T0 + 2 * H) == [(T0, T0 + 2 * H)]
    assert store.pending_periods("1", pending=False, now=T0 + 3 * H) == [(T0, T0 + 2 * H)]
    # a second period, oldest first; other tickets are separate
    assert store.pending_periods("1", pending=True, now=T0 + 4 * H) == [(T0, T0 + 2 * H), (T0 + 4 * H, None)]
    assert store.pending_periods("2", pending=True, now=T0) == [(T0, None)]
    # an end before the start (out-of-order clocks) is clamped to the start
    assert store.pending_periods("1", pending=False, now=T0 + 3 * H)[-1] == (T0 + 4 * H, T0 + 4 * H)


def test_pending_periods_concurrent_open_once(open_same: Callable[..., Store]) -> None:
    stores = [open_same(), open_same()]
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def go(n: int) -> None:
        try:
            barrier.wait()
            stores[n % 2].pending_periods("7", pending=True, now=T0 + dt.timedelta(seconds=n))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=go, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    periods = stores[0].pending_periods("7", pending=True, now=T0 + H)
    assert len(periods) == 1 and periods[0][1] is None


def test_receive_many_is_idempotent_and_ordered(store: Store) -> None:
    first = store.receive_many("timer", [(f"d{i}", f"{i}".encode(), {"h": "v"}) for i in range(400)], T0)
    assert [r.new for r in first] == [True] * 400
    assert len({r.job_id for r in first}) == 400
    again = store.receive_many("timer", [("d5", b"x", {}), ("new", b"n", {}), ("new", b"n", {})], T0)
    assert [r.new for r in again] == [False, True, False]
    assert again[0].event_id == first[5].event_id
    assert store.receive("timer", "d7", b"", {}, T0).new is False
    assert store.queue_depth() == 401
    jobs = store.claim("w", T0, limit=500)
    assert {j.delivery_id for j in jobs} == {f"d{i}" for i in range(400)} | {"new"}
    assert next(j for j in jobs if j.delivery_id == "d3").body == b"3"
    assert store.receive_many("timer", [], T0) == []


def test_receive_many_joins_atomic(store: Store) -> None:
    try:
        with store.atomic():
            store.receive_many("timer", [("a", b"", {})], T0)
            raise RuntimeError("roll back")
    except RuntimeError:
        pass
    assert store.queue_depth() == 0


def test_next_release(store: Store) -> None:
    assert store.next_release() is None
    store.hold_notification("ana", {"k": 1}, T0 + 2 * H)
    store.hold_notification("ana", {"k": 2}, T0 + H)
    assert store.next_release() == T0 + H
    assert len(store.release_notifications(T0 + H)) == 1
    assert store.next_release() == T0 + 2 * H


def test_pending_periods_that_change_nothing_do_not_wait_for_writers(open_same: Callable[..., Store]) -> None:
    """Every decision asks for the ticket's pauses; most change nothing. Those calls only
    read, so they do not queue behind the writers (on SQLite one write lock per database:
    the service's throughput bound). A change still waits for its turn."""
    store, other = open_same(), open_same()
    store.pending_periods("7", pending=True, now=T0)
    with other.atomic():  # a writer holds the lock (SQLite) or the rows it wrote (PostgreSQL)
        other.audit("test", "writer", {}, T0)
        answered: list[object] = []
        reader = threading.Thread(target=lambda: answered.append(store.pending_periods("7", pending=True,
                                                                                     now=T0 + H)))
        reader.start()
        reader.join(5)
        assert answered == [[(T0, None)]]
