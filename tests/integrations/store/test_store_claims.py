"""Per-ticket claims, coalescing and wake-ups, on SQLite and PostgreSQL (see store_fixtures.py)."""

from __future__ import annotations

import contextlib
import datetime as dt
import subprocess
import sys
import threading
import time
from collections.abc import Callable

from integrations.store import Store, ticket_key
from store_fixtures import _empty_pg, open_same, pg_dsn, pg_schema, store  # noqa: F401
from support import REPO

UTC = dt.timezone.utc
NOW = dt.datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def at(seconds: float) -> dt.datetime:
    return NOW + dt.timedelta(seconds=seconds)


def deliver(store: Store, delivery: str, ticket: int | None, source: str = "zammad") -> int:
    key = ticket_key(ticket) if ticket is not None else None
    result = store.receive(source, delivery, b'{"d": "%s"}' % delivery.encode(), {}, NOW, key=key)
    assert result.job_id is not None
    return result.job_id


def test_ticket_key_spelling() -> None:
    assert ticket_key(42) == ticket_key("42") == "ticket:42"


def test_a_burst_for_one_ticket_is_one_job_of_its_newest_event(store: Store) -> None:
    ids = [deliver(store, f"t1-{i}", 1) for i in range(5)]
    other = deliver(store, "t2-0", 2)
    jobs = store.claim("w1", NOW, limit=10)
    assert sorted((j.id, j.key, j.coalesced) for j in jobs) == [(ids[-1], "ticket:1", 4), (other, "ticket:2", 0)]
    for job_id in ids[:-1]:
        folded = store.get_job(job_id)
        assert folded is not None and folded.state == "done" and folded.last_error == f"coalesced into {ids[-1]}"
    newest = store.get_job(ids[-1])
    assert newest is not None and newest.coalesced == 4 and newest.delivery_id == "t1-4"
    assert store.counts() == {"pending": 0, "claimed": 2, "done": 4, "parked": 0}


def test_a_ticket_under_claim_is_skipped_until_released(open_same: Callable[..., Store]) -> None:
    a, b = open_same(), open_same()
    first = deliver(a, "x-0", 7)
    assert [j.id for j in a.claim("w1", NOW)] == [first]
    later = deliver(a, "x-1", 7)  # arrives while w1 works on the ticket
    assert b.claim("w2", NOW, limit=10) == []
    assert a.claim("w1", NOW, limit=10) == []  # not even its own worker: one job of a ticket at a time
    assert a.complete(first, worker="w1")
    assert [j.id for j in b.claim("w2", NOW, limit=10)] == [later]


def test_other_tickets_and_unkeyed_jobs_are_not_held_up(store: Store) -> None:
    deliver(store, "k-0", 1)
    assert len(store.claim("w1", NOW)) == 1
    keyed = deliver(store, "k-1", 2)
    loose = deliver(store, "k-2", None, source="billing")
    assert sorted(j.id for j in store.claim("w2", NOW, limit=10)) == sorted([keyed, loose])


def test_sources_of_one_ticket_coalesce_apart_but_never_run_at_once(store: Store) -> None:
    z = [deliver(store, f"z-{i}", 3) for i in range(2)]
    t = deliver(store, "timer-0", 3, source="scheduler")
    first = store.claim("w1", NOW, limit=10)
    assert len(first) == 1 and first[0].key == "ticket:3"
    assert store.claim("w2", NOW, limit=10) == []
    store.complete(first[0].id, worker="w1")
    second = store.claim("w2", NOW, limit=10)
    assert len(second) == 1
    assert {first[0].id, second[0].id} == {z[-1], t}


def test_the_newest_job_in_backoff_is_not_handed_out_early(store: Store) -> None:
    job = deliver(store, "b-0", 4)
    assert store.claim("w1", NOW)[0].id == job
    assert store.retry(job, "Zammad 503", NOW, delay_seconds=30, worker="w1")
    assert store.claim("w2", at(10)) == []
    newer = deliver(store, "b-1", 4)  # a new event: the ticket is evaluated now, the retry folded in
    jobs = store.claim("w2", at(10))
    assert [(j.id, j.coalesced) for j in jobs] == [(newer, 1)]
    assert store.get_job(job).state == "done"  # type: ignore[union-attr]


def test_the_ticket_claim_lasts_as_long_as_the_lease(store: Store) -> None:
    job = deliver(store, "l-0", 5)
    store.claim("w1", NOW, lease_seconds=60)
    assert store.extend_lease(job, "w1", at(50), lease_seconds=60)
    assert store.claim("w2", at(100)) == []  # the extended lease (until 110 s) holds the ticket
    taken = store.claim("w2", at(111))
    assert [(j.id, j.claimed_by, j.claims) for j in taken] == [(job, "w2", 2)]
    assert not store.complete(job, worker="w1")
    assert store.complete(job, worker="w2")


def test_park_and_retry_release_the_ticket(store: Store) -> None:
    job = deliver(store, "p-0", 6)
    store.claim("w1", NOW)
    later = deliver(store, "p-1", 6)
    assert store.park(job, "no such ticket", worker="w1")
    assert [j.id for j in store.claim("w2", NOW)] == [later]
    assert store.retry(later, "timeout", NOW, delay_seconds=0, worker="w2")
    assert [j.id for j in store.claim("w3", NOW)] == [later]


def test_concurrent_workers_never_hold_one_ticket_at_once(open_same: Callable[..., Store]) -> None:
    feeder = open_same()
    stores = [open_same() for _ in range(3)]
    running: dict[str, str] = {}
    overlaps: list[str] = []
    evaluations = [0]
    guard = threading.Lock()
    stop = threading.Event()

    def work(index: int) -> None:
        store, me = stores[index], f"w{index}"
        while not stop.is_set() or store.queue_depth():
            jobs = store.claim(me, dt.datetime.now(UTC), limit=4)
            if not jobs:
                store.wait_for_work(0.05)
                continue
            for job in jobs:
                with guard:
                    if job.key in running:
                        overlaps.append(f"{job.key}: {running[job.key]} and {me}")
                    running[str(job.key)] = me
                    evaluations[0] += 1
                time.sleep(0.001)
                with guard:
                    running.pop(str(job.key), None)
                assert store.complete(job.id, worker=me)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    for n in range(300):  # bursts on 10 tickets while the workers run
        feeder.receive("zammad", f"c-{n}", b"{}", {}, dt.datetime.now(UTC), key=ticket_key(n % 10))
    stop.set()
    for thread in threads:
        thread.join(60)
    counts = feeder.counts()
    print(f"\nper-ticket claims: 300 events, {evaluations[0]} evaluations, {len(overlaps)} overlaps, {counts}")
    assert overlaps == []
    assert counts["pending"] == counts["claimed"] == 0 and counts["done"] == 300
    assert evaluations[0] <= 300


_PG_WORKER = """
import datetime as dt, sys, time
from integrations.store import open_store
store = open_store(sys.argv[1], schema=sys.argv[2])
me = sys.argv[3]
sys.stdin.readline()
idle = 0
while idle < 40:
    jobs = store.claim(me, dt.datetime.now(dt.timezone.utc), limit=3)
    if not jobs:
        idle += 1
        store.wait_for_work(0.05)
        continue
    idle = 0
    for job in jobs:
        start = time.monotonic_ns()
        time.sleep(0.002)
        end = time.monotonic_ns()
        store.complete(job.id, worker=me)
        print(job.key, start, end, job.coalesced, flush=True)
store.close()
"""


def test_postgres_two_processes_never_hold_one_ticket_at_once(pg_dsn: str, pg_schema: str) -> None:
    from integrations.store import open_store

    feeder = open_store(pg_dsn, schema=pg_schema)
    _empty_pg(pg_dsn, pg_schema)
    try:
        procs = [
            subprocess.Popen([sys.executable, "-c", _PG_WORKER, pg_dsn, pg_schema, f"p{i}"], cwd=REPO,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            for i in range(2)
        ]
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        for n in range(200):
            feeder.receive("zammad", f"pp-{n}", b"{}", {}, dt.datetime.now(UTC), key=ticket_key(n % 8))
        intervals: dict[str, list[tuple[int, int, str]]] = {}
        coalesced = 0
        for i, proc in enumerate(procs):
            out, _ = proc.communicate(timeout=120)
            assert proc.returncode == 0
            for line in out.splitlines():
                key, start, end, folded = line.split()
                intervals.setdefault(key, []).append((int(start), int(end), f"p{i}"))
                coalesced += int(folded)
        overlaps = 0
        for spans in intervals.values():
            spans.sort()
            overlaps += sum(1 for a, b in zip(spans, spans[1:]) if b[0] < a[1])
        evaluations = sum(len(s) for s in intervals.values())
        by_process = {p: sum(1 for s in intervals.values() for x in s if x[2] == p) for p in ("p0", "p1")}
        print(f"\nPostgreSQL, 2 processes: 200 events, {evaluations} evaluations ({by_process}),"
              f" {coalesced} coalesced, {overlaps} overlaps")
        assert overlaps == 0
        assert evaluations + coalesced == 200
        assert feeder.counts()["done"] == 200
    finally:
        feeder.close()


# -- wake-ups ------------------------------------------------------------------


def test_a_waiting_worker_wakes_when_an_event_arrives(store: Store) -> None:
    assert store.wait_for_work(0)  # a thread's first call: it has seen nothing yet
    woke: list[bool] = []
    waiter = threading.Thread(target=lambda: woke.append(store.wait_for_work(60)))
    waiter.start()
    time.sleep(0.05)
    deliver(store, "wake-0", 1)
    waiter.join(20)
    assert woke == [True]


def test_wait_returns_at_once_for_work_that_arrived_before_it(store: Store) -> None:
    store.wait_for_work(0)
    deliver(store, "early-0", 1)  # between the worker's empty claim and its wait
    assert store.wait_for_work(60)
    time.sleep(0.3)  # PostgreSQL: time for the store's own NOTIFY to come back; it must not wake again
    assert not store.wait_for_work(0.01)


def test_wait_ends_when_a_backoff_ends(store: Store) -> None:
    store.wait_for_work(0)
    job = deliver(store, "bo-0", 1)
    store.claim("w1", dt.datetime.now(UTC))
    now = dt.datetime.now(UTC)
    store.retry(job, "timeout", now, delay_seconds=0.3, worker="w1")
    store.wait_for_work(0)  # consume the retry's own signal
    started = time.monotonic()
    store.wait_for_work(60)
    assert time.monotonic() - started < 30  # bounded by the backoff, not by the 60 s timeout


def test_a_released_ticket_with_queued_work_wakes_workers(store: Store) -> None:
    first = deliver(store, "r-0", 9)
    store.claim("w1", NOW)
    deliver(store, "r-1", 9)
    store.wait_for_work(0)
    woke: list[bool] = []
    waiter = threading.Thread(target=lambda: woke.append(store.wait_for_work(60)))
    waiter.start()
    time.sleep(0.05)
    store.complete(first, worker="w1")
    waiter.join(20)
    assert woke == [True]


_PG_WAITER = """
import sys, time
from integrations.store import open_store
store = open_store(sys.argv[1], schema=sys.argv[2])
store.wait_for_work(0)  # starts the listener
deadline = time.monotonic() + 20
while store._listener.connects < 1 and time.monotonic() < deadline:
    time.sleep(0.01)
print("listening", flush=True)
print(store.wait_for_work(60), flush=True)
store.close()
"""


def test_postgres_a_worker_in_another_process_wakes_on_notify(pg_dsn: str, pg_schema: str) -> None:
    from integrations.store import open_store

    feeder = open_store(pg_dsn, schema=pg_schema)
    proc = subprocess.Popen([sys.executable, "-c", _PG_WAITER, pg_dsn, pg_schema], cwd=REPO,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "listening"
        feeder.receive("zammad", "notify-0", b"{}", {}, NOW, key=ticket_key(1))
        out, _ = proc.communicate(timeout=30)
        assert out.strip() == "True"
    finally:
        proc.kill()
        feeder.close()


def test_postgres_a_store_does_not_wake_twice_for_its_own_announcement(pg_dsn: str, pg_schema: str) -> None:
    """Its workers were woken in-process at commit; its NOTIFY coming back must not wake them
    a second time (a spurious claim per event), while another store's NOTIFY does."""
    import psycopg

    from integrations.store.pglisten import Listener

    woken: list[float] = []
    listener = Listener(lambda: psycopg.connect(pg_dsn, autocommit=True), "policydesk_test_own",
                        lambda: woken.append(time.monotonic()), lambda conn, seconds: contextlib.nullcontext(),
                        timeout=5, own="mine")
    listener.start()
    try:
        deadline = time.monotonic() + 10
        while listener.connects == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            conn.execute("SELECT pg_notify('policydesk_test_own', 'mine')")
            time.sleep(0.5)
            assert woken == []
            conn.execute("SELECT pg_notify('policydesk_test_own', 'another process')")
            deadline = time.monotonic() + 10
            while not woken and time.monotonic() < deadline:
                time.sleep(0.01)
        assert len(woken) == 1
    finally:
        listener.stop()


def test_extend_leases_renews_many_in_one_call(store: Store) -> None:
    ids = [deliver(store, f"el-{n}", n) for n in range(3)]
    loose = deliver(store, "el-loose", None, source="billing")
    assert len(store.claim("w1", NOW, limit=10, lease_seconds=60)) == 4
    assert store.extend_leases([*ids, loose, 999], "w1", at(50), lease_seconds=60) == {*ids, loose}
    assert store.extend_leases(ids, "w2", at(50)) == set()
    assert store.claim("w2", at(100), limit=10) == []  # leases and ticket claims run until 110 s
    assert len(store.claim("w2", at(111), limit=10)) == 4
