"""The durable store, on SQLite and on PostgreSQL (see store_fixtures.py)."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from integrations.store.schema import LATEST
from integrations.store import Store, StoreError, open_store, sqlite_path
from integrations.store.postgres import split_url
from store_fixtures import open_same, pg_dsn, pg_schema, store  # noqa: F401

from support import REPO
UTC = dt.timezone.utc
NOW = dt.datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def at(minutes: float) -> dt.datetime:
    return NOW + dt.timedelta(minutes=minutes)


def receive_many(store: Store, count: int, source: str = "zammad") -> list[int]:
    with store.atomic():
        return [
            store.receive(source, f"d{i}", b'{"n": %d}' % i, {"X-Zammad-Delivery": f"d{i}"}, NOW).job_id
            for i in range(count)
        ]


def run_threads(count: int, target: Callable[[int], None]) -> None:
    errors: list[BaseException] = []
    barrier = threading.Barrier(count)

    def run(index: int) -> None:
        try:
            barrier.wait()
            target(index)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors


# -- received events ---------------------------------------------------------


def test_receive_stores_event_and_one_job(store: Store) -> None:
    result = store.receive("zammad", "abc", b'{"ticket": 1}', {"X-Hub-Signature": "sha1=x"}, NOW)
    assert result.new and result.job_id is not None
    job = store.get_job(result.job_id)
    assert job is not None
    assert (job.event_id, job.source, job.delivery_id) == (result.event_id, "zammad", "abc")
    assert job.body == b'{"ticket": 1}' and job.headers == {"X-Hub-Signature": "sha1=x"}
    assert (job.state, job.attempts, job.not_before) == ("pending", 0, NOW)
    assert job.received_at == NOW and job.received_at.tzinfo is not None
    assert store.queue_depth() == 1


def test_duplicate_delivery_stores_and_enqueues_nothing(store: Store) -> None:
    first = store.receive("zammad", "abc", b"1", {}, NOW)
    again = store.receive("zammad", "abc", b"2", {}, at(1))
    assert not again.new and again.event_id == first.event_id and again.job_id is None
    assert store.counts()["pending"] == 1
    # The same delivery id from another source is another event.
    assert store.receive("billing", "abc", b"3", {}, NOW).new
    assert store.queue_depth() == 2


def test_concurrent_duplicates_have_one_effect(open_same: Callable[..., Store]) -> None:
    stores = [open_same(), open_same()]
    results: list[bool] = []
    run_threads(2, lambda i: results.append(stores[i].receive("zammad", "same", b"x", {}, NOW).new))
    assert sorted(results) == [False, True]
    assert stores[0].queue_depth() == 1


def test_received_event_is_visible_to_a_new_connection(open_same: Callable[..., Store]) -> None:
    writer = open_same()
    result = writer.receive("zammad", "durable", b"body", {"h": "v"}, NOW)
    reader = open_same()  # new connections (a new process would see the same)
    job = reader.get_job(result.job_id)
    assert job is not None and job.body == b"body"


def test_sqlite_receive_survives_sigkill_right_after_it_returns(tmp_path: Path) -> None:
    """'Acknowledged means stored': the writer dies with SIGKILL (no close, no
    checkpoint) the moment receive returns; a new store on the file has the event."""
    path = tmp_path / "kill.db"
    code = (
        "import datetime as dt, os, signal, sys\n"
        "from integrations.store import open_store\n"
        f"s = open_store({str(path)!r})\n"
        "now = dt.datetime(2026, 3, 2, 9, tzinfo=dt.timezone.utc)\n"
        "r = s.receive('zammad', 'k1', b'acked', {}, now)\n"
        "print(r.job_id, flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=30,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    job_id = int(proc.stdout.strip())
    with open_store(path) as again:
        job = again.get_job(job_id)
        assert job is not None and job.body == b"acked"
        assert not again.receive("zammad", "k1", b"acked", {}, NOW).new


def test_sqlite_durability_settings(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'deep' / 'dir' / 'x.db'}")
    try:
        conn = store._conn()  # type: ignore[attr-defined]
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    finally:
        store.close()


# -- the work queue ------------------------------------------------------------


def test_claim_complete(store: Store) -> None:
    ids = receive_many(store, 3)
    jobs = store.claim("w1", NOW, limit=2, lease_seconds=30)
    assert [j.id for j in jobs] == ids[:2]
    assert all(j.state == "claimed" and j.claimed_by == "w1" and j.claims == 1 for j in jobs)
    assert jobs[0].lease_until == NOW + dt.timedelta(seconds=30)
    assert store.counts() == {"pending": 1, "claimed": 2, "done": 0, "parked": 0}
    assert store.complete(jobs[0].id, worker="w1")
    assert not store.complete(jobs[0].id)  # already done
    assert not store.complete(jobs[1].id, worker="someone-else")
    assert store.complete(jobs[1].id)
    assert store.counts() == {"pending": 1, "claimed": 0, "done": 2, "parked": 0}
    assert store.queue_depth() == 1
    assert [j.id for j in store.claim("w1", NOW, limit=10)] == ids[2:]
    assert store.claim("w1", NOW) == []


def test_retry_backs_off_and_keeps_the_error(store: Store) -> None:
    (job_id,) = receive_many(store, 1)
    store.claim("w1", NOW)
    assert store.retry(job_id, "Zammad 503", NOW, delay_seconds=120, worker="w1")
    job = store.get_job(job_id)
    assert job is not None
    assert (job.state, job.attempts, job.last_error) == ("pending", 1, "Zammad 503")
    assert job.not_before == at(2) and job.claimed_by is None
    assert store.claim("w1", at(1)) == []
    (again,) = store.claim("w2", at(2))
    assert (again.id, again.attempts, again.claims) == (job_id, 1, 2)
    assert store.retry(job_id, "again", at(2), 60)
    assert store.get_job(job_id).attempts == 2  # type: ignore[union-attr]


def test_park_and_requeue(store: Store) -> None:
    ids = receive_many(store, 2)
    store.claim("w1", NOW, limit=2)
    assert store.park(ids[0], "ValidationError: bad payload", worker="w1")
    assert store.counts() == {"pending": 0, "claimed": 1, "done": 0, "parked": 1}
    parked = store.parked()
    assert [(j.id, j.state, j.last_error) for j in parked] == [
        (ids[0], "parked", "ValidationError: bad payload")
    ]
    assert parked[0].body == b'{"n": 0}'
    # A parked job is never claimed, even after its lease would have expired.
    assert [j.id for j in store.claim("w2", at(60), limit=10, lease_seconds=3600)] == [ids[1]]
    assert not store.requeue(ids[1])  # not parked
    assert store.requeue(ids[0], now=at(61))
    job = store.get_job(ids[0])
    assert job is not None and (job.state, job.attempts) == ("pending", 0)
    assert job.last_error == "ValidationError: bad payload"
    assert [j.id for j in store.claim("w2", at(61))] == [ids[0]]
    assert store.parked() == []


def test_expired_lease_is_claimable_again(store: Store) -> None:
    (job_id,) = receive_many(store, 1)
    (first,) = store.claim("crashed", NOW, lease_seconds=60)
    assert store.claim("w2", at(0.5)) == []  # lease still running
    (second,) = store.claim("w2", at(1.01))
    assert (second.id, second.claimed_by, second.claims) == (job_id, "w2", 2)
    assert not store.complete(job_id, worker="crashed")  # its claim is gone
    assert not store.extend_lease(job_id, "crashed", at(1.02))
    assert store.extend_lease(job_id, "w2", at(1.02), lease_seconds=600)
    assert store.claim("w3", at(5)) == []
    assert store.complete(job_id, worker="w2")


def test_two_workers_claim_200_jobs_each_exactly_once(open_same: Callable[..., Store]) -> None:
    first = open_same()
    ids = receive_many(first, 200)
    stores = [first, open_same()]
    claimed: list[list[int]] = [[], []]

    def work(index: int) -> None:
        while True:
            jobs = stores[index].claim(f"w{index}", NOW, limit=3, lease_seconds=300)
            if not jobs:
                return
            time.sleep(0.002)  # the work: the other worker gets the lock meanwhile
            for job in jobs:
                claimed[index].append(job.id)
                assert stores[index].complete(job.id, worker=f"w{index}")

    run_threads(2, work)
    assert claimed[0] and claimed[1], "the workers did not run concurrently"
    every = claimed[0] + claimed[1]
    assert Counter(every).most_common(1)[0][1] == 1
    assert sorted(every) == sorted(ids)
    assert first.counts() == {"pending": 0, "claimed": 0, "done": 200, "parked": 0}


_CLAIMER = """
import datetime as dt, sys, time
from integrations.store import open_store
store = open_store(sys.argv[1])
now = dt.datetime(2026, 3, 2, 9, tzinfo=dt.timezone.utc)
sys.stdin.readline()  # start together
while jobs := store.claim(sys.argv[2], now, limit=2, lease_seconds=300):
    time.sleep(0.002)  # the work
    for job in jobs:
        store.complete(job.id)
        print(job.id, flush=True)
"""


def test_sqlite_two_processes_claim_each_job_once(tmp_path: Path) -> None:
    path = tmp_path / "procs.db"
    with open_store(path) as setup:
        ids = receive_many(setup, 200)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [
        subprocess.Popen([sys.executable, "-c", _CLAIMER, str(path), f"p{i}"], cwd=REPO, env=env,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        for i in range(2)
    ]
    for proc in procs:
        proc.stdin.write("go\n")  # type: ignore[union-attr]
        proc.stdin.flush()  # type: ignore[union-attr]
    outputs = [proc.communicate(timeout=60)[0] for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0]
    every = [int(line) for out in outputs for line in out.split()]
    assert sorted(every) == sorted(ids)  # every job once, none twice


# -- timers ---------------------------------------------------------------------


def test_set_replace_clear_timers(store: Store) -> None:
    steps = [("warning", at(45)), ("breach", at(60))]
    store.set_timers("T1", "first_response@2026-03-02T10:00Z", steps)
    store.set_timers("T1", "first_response@2026-03-02T10:00Z", steps)  # idempotent
    assert [(t.step, t.due_at) for t in store.timers_of("T1")] == [("warning", at(45)), ("breach", at(60))]
    assert store.next_due() == at(45)

    # The warning fires; the same key set again does not re-arm it.
    assert [t.step for t in store.fire_due(at(50))] == ["warning"]
    store.set_timers("T1", "first_response@2026-03-02T10:00Z", steps)
    assert store.fire_due(at(55)) == []

    # A changed deadline (upgrade: tighter target) replaces the unfired timers.
    store.set_timers("T1", "first_response@2026-03-02T09:30Z", [("warning", at(20)), ("breach", at(30))])
    unfired = [(t.deadline_key, t.step) for t in store.timers_of("T1") if t.fired_at is None]
    assert unfired == [("first_response@2026-03-02T09:30Z", "warning"), ("first_response@2026-03-02T09:30Z", "breach")]
    fired = store.fire_due(at(31))
    assert [(t.deadline_key, t.step) for t in fired] == unfired

    store.set_timers("T2", "k", [("breach", at(90))])
    store.set_timers("T3", "k", [("breach", at(95))])
    assert store.clear_timers("T2") == 1  # first response given
    assert store.next_due() == at(95)
    assert store.clear_timers("T3") == 1 and store.next_due() is None
    assert store.fire_due(at(1000)) == []


def test_same_key_moves_unfired_steps_and_drops_removed_ones(store: Store) -> None:
    store.set_timers("T1", "k", [("warning", at(45)), ("breach", at(60))])
    store.set_timers("T1", "k", [("breach", at(70))])
    assert [(t.step, t.due_at) for t in store.timers_of("T1")] == [("breach", at(70))]


def test_fire_due_returns_due_timers_once_in_order(store: Store) -> None:
    store.set_timers("A", "k", [("breach", at(10))])
    store.set_timers("B", "k", [("warning", at(5)), ("breach", at(20))])
    fired = store.fire_due(at(15))
    assert [(t.ticket_id, t.step) for t in fired] == [("B", "warning"), ("A", "breach")]
    assert all(t.fired_at == at(15) for t in fired)
    assert store.fire_due(at(15)) == []
    assert store.next_due() == at(20)


def test_two_sweepers_fire_each_step_exactly_once(open_same: Callable[..., Store]) -> None:
    stores = [open_same(), open_same()]
    with stores[0].atomic():
        for i in range(150):
            stores[0].set_timers(f"T{i}", "k", [("warning", at(i % 30)), ("breach", at(30 + i % 30))])
    fired: list[list[tuple[str, str, str]]] = [[], []]

    def sweep(index: int) -> None:
        while batch := stores[index].fire_due(at(100), limit=7):
            fired[index].extend((t.ticket_id, t.deadline_key, t.step) for t in batch)

    run_threads(2, sweep)
    every = fired[0] + fired[1]
    assert len(every) == 300 and len(set(every)) == 300
    assert stores[1].next_due() is None


def test_due_timers_are_found_through_the_partial_index(store: Store) -> None:
    """The sweep's own statement reads the timers_due index, not the whole table."""
    sweep = store._claim_sql(  # type: ignore[attr-defined]
        "timers", "fired_at IS NULL AND due_at <= ?", "due_at, id", "fired_at = ?", "id"
    )
    if store.dialect == "sqlite":
        conn = store._conn()  # type: ignore[attr-defined]
        ts = store._ts(NOW)  # type: ignore[attr-defined]
        plan = " ".join(
            str(row) for row in conn.execute(f"EXPLAIN QUERY PLAN {sweep}", (ts, 100, ts, ts))
        )
        assert "USING INDEX timers_due" in plan, plan
        return
    import psycopg

    with psycopg.connect(store._conninfo, autocommit=True) as conn:  # type: ignore[attr-defined]
        conn.execute(f'SET search_path TO "{store.schema}"')  # type: ignore[attr-defined]
        # 3000 open tickets, nearly none due: the sweep must not read them all.
        conn.execute(
            "INSERT INTO timers (ticket_id, deadline_key, step, due_at, created_at)"
            " SELECT 'T' || g, 'k', 'breach', %s + g * interval '1 minute', %s"
            " FROM generate_series(1, 3000) g",
            (NOW, NOW),
        )
        conn.execute("ANALYZE timers")
        plan = "\n".join(
            row[0]
            for row in conn.execute(
                "EXPLAIN " + sweep.replace("?", "%s"), (at(5), 100, at(5), at(5))
            )
        )
    assert "timers_due" in plan, plan
    assert "Seq Scan" not in plan, plan
    assert len(store.fire_due(at(5))) == 5


# -- leadership ------------------------------------------------------------------


def test_postgres_leadership_one_leader_until_it_resigns(open_same: Callable[..., Store]) -> None:
    a, b = open_same(), open_same()
    if a.dialect == "sqlite":
        assert a.try_lead("scheduler") and b.try_lead("scheduler")  # single instance
        return
    assert a.try_lead("scheduler")
    assert a.try_lead("scheduler")  # re-entrant, still leading
    assert not b.try_lead("scheduler")
    assert b.try_lead("digests")  # another name is another lock
    a.resign("scheduler")
    assert b.try_lead("scheduler")
    assert not a.try_lead("scheduler")
    b.close()  # closing gives up leadership
    assert a.try_lead("scheduler")


def test_postgres_leadership_is_lost_with_its_connection(open_same: Callable[..., Store]) -> None:
    a, b = open_same(), open_same()
    if a.dialect == "sqlite":
        assert a.try_lead("scheduler") and b.try_lead("scheduler")  # single instance
        return
    import psycopg

    assert a.try_lead("scheduler")
    pid = a._lead_conn.info.backend_pid  # type: ignore[attr-defined]
    with psycopg.connect(a._conninfo, autocommit=True) as admin:  # type: ignore[attr-defined]
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    deadline = time.monotonic() + 5  # the backend exits (and unlocks) asynchronously
    while not b.try_lead("scheduler") and time.monotonic() < deadline:
        time.sleep(0.02)
    assert b.try_lead("scheduler")
    assert not a.try_lead("scheduler")  # noticed, and b holds it now


# -- notifications, audit, billing, managers, VIP --------------------------------


def test_held_notifications_are_released_once(open_same: Callable[..., Store]) -> None:
    a, b = open_same(), open_same()
    first = a.hold_notification("alice", {"ticket": 1, "text": "breach soon"}, at(60))
    second = a.hold_notification("bob", {"ticket": 2}, at(30))
    a.hold_notification("alice", {"ticket": 3}, at(600))
    assert a.release_notifications(at(10)) == []
    released = a.release_notifications(at(60))
    assert [(n.id, n.person) for n in released] == [(second, "bob"), (first, "alice")]
    assert released[1].payload == {"ticket": 1, "text": "breach soon"}
    assert released[1].released_at == at(60)
    assert b.release_notifications(at(61)) == [] and a.release_notifications(at(61)) == []
    assert [n.payload for n in b.release_notifications(at(600))] == [{"ticket": 3}]


def test_audit_log(store: Store) -> None:
    store.audit("plan_changed", "org:acme", {"from": "plus", "to": "pro"}, NOW)
    store.audit("downgrade_refused", "org:acme", {"from": "pro", "to": "plus"}, at(1))
    store.audit("decision", "ticket:7", {"plan": "pro", "fields": {"priority": "2 normal"}}, at(2))
    log = store.audit_log()
    assert [e.kind for e in log] == ["decision", "downgrade_refused", "plan_changed"]
    assert [e.kind for e in store.audit_log(subject="org:acme")] == ["downgrade_refused", "plan_changed"]
    (entry,) = store.audit_log(subject="org:acme", kind="plan_changed")
    assert entry.data == {"from": "plus", "to": "pro"} and entry.at == NOW
    assert len(store.audit_log(limit=1)) == 1


def test_subscriptions(store: Store) -> None:
    assert store.get_subscription("acme") is None
    zurich = dt.timezone(dt.timedelta(hours=1))
    start = dt.datetime(2026, 3, 1, 10, 0, tzinfo=zurich)
    sub = store.put_subscription(
        "acme", plan="plus", started_at=start, commitment_end=dt.datetime(2026, 9, 1, tzinfo=UTC),
        billing_period="monthly", now=NOW,
    )
    assert store.get_subscription("acme") == sub
    assert sub.started_at == start and sub.started_at.tzinfo == UTC
    store.put_subscription("acme", plan="pro", started_at=start, commitment_end=None,
                           billing_period="yearly", now=at(1))
    got = store.get_subscription("acme")
    assert got is not None and (got.plan, got.commitment_end, got.updated_at) == ("pro", None, at(1))


def test_atomic_commits_all_or_nothing(store: Store) -> None:
    with pytest.raises(RuntimeError):
        with store.atomic():
            store.put_subscription("acme", plan="pro", started_at=NOW, commitment_end=None,
                                   billing_period="monthly", now=NOW)
            store.audit("plan_changed", "org:acme", {"to": "pro"}, NOW)
            raise RuntimeError("crash between the two writes")
    assert store.get_subscription("acme") is None and store.audit_log() == []
    with store.atomic():
        store.put_subscription("acme", plan="pro", started_at=NOW, commitment_end=None,
                               billing_period="monthly", now=NOW)
        with store.atomic():  # nested blocks join the outer one
            store.audit("plan_changed", "org:acme", {"to": "pro"}, NOW)
    assert store.get_subscription("acme") is not None and len(store.audit_log()) == 1


def _commit_level(store: Store) -> str:
    """How the transaction this thread is in will commit: waiting for the disk or not."""
    with store._tx() as tx:  # type: ignore[attr-defined]  # joins the atomic() block
        if store.dialect == "sqlite":
            return {2: "durable", 1: "relaxed"}[tx.execute("PRAGMA synchronous")[0][0]]
        return {"on": "durable", "off": "relaxed"}[tx.execute("SHOW synchronous_commit")[0][0]]


def test_a_relaxed_block_commits_without_waiting_for_the_disk(store: Store) -> None:
    """atomic(durable=False) commits (others see it) without an fsync or WAL flush;
    a durable block on the same connection afterwards waits for the disk again."""
    with store.atomic(durable=False):
        assert _commit_level(store) == "relaxed"
        store.audit("bookkeeping", "job:1", {"n": 1}, NOW)
    with store.atomic():
        assert _commit_level(store) == "durable"
    seen: list[object] = []  # committed: another thread (its own connection) reads it
    reader = threading.Thread(target=lambda: seen.extend(e.data for e in store.audit_log(subject="job:1")))
    reader.start()
    reader.join()
    assert seen == [{"n": 1}]


def test_what_is_promised_cannot_join_a_relaxed_block(store: Store) -> None:
    with store.atomic(durable=False):
        with pytest.raises(StoreError, match="must be durable"):
            store.receive("zammad", "d1", b"{}", {}, NOW)
        with pytest.raises(StoreError, match="cannot join"):
            with store.atomic():
                pass
    assert store.counts()["pending"] == 0


def test_claims_leases_and_completions_are_relaxed_receiving_is_not(store: Store) -> None:
    """Which commits wait for the disk: a job's bookkeeping is redone if a power failure
    undoes it (only with every later commit), an acknowledged event is not."""
    levels: list[tuple[str, bool]] = []
    calling = [""]  # the public call under way
    real = store._transaction  # type: ignore[attr-defined]

    def recording(write: bool, durable: bool = True):  # type: ignore[no-untyped-def]
        if write:
            levels.append((calling[-1], durable))
        return real(write, durable)

    store._transaction = recording  # type: ignore[attr-defined]
    calling.append("receive")
    job = store.receive("zammad", "d1", b"{}", {}, NOW, key="ticket:1").job_id
    assert job is not None
    for name, call in [
        ("claim", lambda: [j.id for j in store.claim("w1", NOW, limit=1)] == [job]),
        ("extend_lease", lambda: store.extend_lease(job, "w1", NOW)),
        ("extend_leases", lambda: store.extend_leases([job], "w1", NOW) == {job}),
        ("complete", lambda: store.complete(job, worker="w1")),
        ("set_timers", lambda: store.set_timers("1", "k", [("warn", at(30))]) is None),
    ]:
        calling.append(name)
        assert call(), name  # each did its work, so its commit is the one recorded
    assert levels == [("receive", True), ("claim", False), ("extend_lease", False), ("extend_leases", False),
                      ("complete", False), ("set_timers", True)]


def test_account_managers(store: Store) -> None:
    store.assign_manager("acme", "account_manager", "alice", NOW)
    store.assign_manager("acme", "technical_account_manager", "tom", NOW)
    store.assign_manager("globex", "account_manager", "alice", NOW)
    store.assign_manager("initech", "account_manager", "bob", NOW)
    assert store.managers_of("acme") == {"account_manager": "alice", "technical_account_manager": "tom"}
    assert store.manager_loads("account_manager") == {"alice": 2, "bob": 1}
    assert store.manager_loads("technical_account_manager") == {"tom": 1}
    store.assign_manager("globex", "account_manager", "bob", NOW)  # reassigned
    assert store.manager_loads("account_manager") == {"alice": 1, "bob": 2}
    assert store.unassign_manager("acme") == 2 and store.managers_of("acme") == {}


def test_assign_least_loaded_respects_capacity(store: Store) -> None:
    pool = ["alice", "bob", "carol"]
    store.assign_manager("old", "am", "alice")
    picks = [store.assign_least_loaded(f"org{i}", "am", pool, capacity=2) for i in range(6)]
    assert picks == ["bob", "carol", "alice", "bob", "carol", None]
    assert store.assign_least_loaded("org0", "am", pool, capacity=2) == "bob"  # kept
    assert store.manager_loads("am") == {"alice": 2, "bob": 2, "carol": 2}


def test_concurrent_least_loaded_assignment_respects_capacity(open_same: Callable[..., Store]) -> None:
    stores = [open_same(), open_same()]
    results: list[str | None] = []

    def assign(index: int) -> None:
        for i in range(10):
            results.append(stores[index].assign_least_loaded(f"org{index}-{i}", "am", ["a", "b", "c"], 4))

    run_threads(2, assign)
    assert stores[0].manager_loads("am") == {"a": 4, "b": 4, "c": 4}
    assert results.count(None) == 8


def test_vip_hash(store: Store) -> None:
    assert store.get_vip_hash("acme") is None
    store.put_vip_hash("acme", b"\x00salt\xff", b"\x01" * 32, NOW)
    vip = store.get_vip_hash("acme")
    assert vip is not None and (vip.salt, vip.digest, vip.updated_at) == (b"\x00salt\xff", b"\x01" * 32, NOW)
    store.put_vip_hash("acme", b"new", b"\x02" * 32)
    assert store.get_vip_hash("acme").salt == b"new"  # type: ignore[union-attr]


# -- schema, URLs, housekeeping --------------------------------------------------


def test_schema_is_created_once_and_versioned(open_same: Callable[..., Store]) -> None:
    a = open_same()
    b = open_same()  # migrating an up-to-date database is a no-op
    assert a.schema_version() == b.schema_version() == LATEST
    with a.atomic():
        a._tx().__enter__().execute(  # type: ignore[attr-defined]
            "INSERT INTO schema_version (version, description, applied_at) VALUES (?, ?, ?)",
            (99, "from the future", a._ts(NOW)),  # type: ignore[attr-defined]
        )
    try:
        with pytest.raises(StoreError, match="newer"):
            open_same()
    finally:
        with a.atomic():
            a._tx().__enter__().execute("DELETE FROM schema_version WHERE version = 99")  # type: ignore[attr-defined]


def test_naive_datetimes_are_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="naive"):
        store.receive("zammad", "x", b"", {}, dt.datetime(2026, 3, 2, 9))
    with pytest.raises(ValueError, match="naive"):
        store.set_timers("T", "k", [("breach", dt.datetime(2026, 3, 2, 9))])
    assert store.queue_depth() == 0


def test_purge_keeps_open_work(store: Store) -> None:
    ids = receive_many(store, 3)
    store.claim("w", NOW, limit=3)
    store.complete(ids[0])
    store.park(ids[1], "bad")
    store.set_timers("T", "k", [("warning", at(1)), ("breach", at(2))])
    store.fire_due(at(1))
    store.hold_notification("alice", {}, at(1))
    store.release_notifications(at(1))
    removed = store.purge(dt.datetime.now(UTC) + dt.timedelta(days=1))
    assert removed == {"bodies": 0, "jobs": 1, "events": 1, "timers": 1, "held_notifications": 1, "audit": 0}
    assert store.get_job(ids[0]) is None and store.get_job(ids[1]) is not None
    assert store.counts() == {"pending": 0, "claimed": 1, "done": 0, "parked": 1}
    assert [t.step for t in store.timers_of("T")] == ["breach"]


def test_store_urls(tmp_path: Path) -> None:
    assert sqlite_path("sqlite:///var/lib/pd.db") == "/var/lib/pd.db"
    assert sqlite_path("sqlite:////var/lib/pd.db") == "/var/lib/pd.db"
    assert sqlite_path("sqlite:state.db") == "state.db"
    assert sqlite_path("/tmp/x.db") == "/tmp/x.db"
    with pytest.raises(StoreError):
        sqlite_path("sqlite://host/x.db")
    with pytest.raises(StoreError):
        open_store(":memory:")
    url, params = split_url("postgresql://u@h:5432/db?schema=s1&sslmode=disable&pool_size=3")
    assert url == "postgresql://u@h:5432/db?sslmode=disable"
    assert params == {"schema": "s1", "pool_size": "3"}
    with open_store(tmp_path / "plain.db") as store:
        assert store.dialect == "sqlite" and (tmp_path / "plain.db").exists()


def test_postgres_schema_from_url(pg_dsn: str, pg_schema: str) -> None:
    sep = "&" if "?" in pg_dsn else "?"
    with open_store(f"{pg_dsn}{sep}schema={pg_schema}") as store:
        assert store.dialect == "postgres" and store.schema == pg_schema  # type: ignore[attr-defined]
        store.ping()
    with pytest.raises(StoreError, match="schema"):
        open_store(pg_dsn, schema="bad-name; drop")


def test_vip_index_finds_the_organization_of_its_current_code(store: Store) -> None:
    assert store.org_by_vip_index(b"\x01" * 32) is None
    store.put_vip_index(b"\x01" * 32, "org-1", NOW)
    store.put_vip_index(b"\x02" * 32, "org-2", NOW)
    assert store.org_by_vip_index(b"\x01" * 32) == "org-1"
    store.put_vip_index(b"\x03" * 32, "org-1", NOW)  # the code was rotated
    assert store.org_by_vip_index(b"\x01" * 32) is None
    assert store.org_by_vip_index(b"\x03" * 32) == "org-1"
    assert store.org_by_vip_index(b"\x02" * 32) == "org-2"


def _vm_steps(store: Store, action: Callable[[], object]) -> int:
    """SQLite virtual-machine instructions ``action`` runs on this thread's connection:
    the work a query does, counted, not timed."""
    conn = store._conn()  # type: ignore[attr-defined]
    steps = [0]

    def count() -> int:
        steps[0] += 1
        return 0

    conn.set_progress_handler(count, 1)
    try:
        action()
    finally:
        conn.set_progress_handler(None, 1)
    return steps[0]


@pytest.mark.parametrize("keyed", [True, False])
def test_claiming_and_looking_up_decisions_cost_the_same_with_a_long_queue(tmp_path: Path, keyed: bool) -> None:
    """A claim reads only what it hands out, and a ticket's newest decision is one index
    seek, however many jobs are queued and decisions recorded. (Before: SQLite's planner
    chose the ``state`` index and read and sorted every pending job, and the ``kind`` index
    and read every decision: 6.3 ms per claim at 10,000 queued, 3.3 ms per lookup.)"""
    costs = []
    for queued in (50, 3000):
        store = open_store(tmp_path / f"queue-{queued}-{keyed}.db")
        store.receive_many("zammad", [(f"d{n}", b"{}", {}, *((f"ticket:{n}",) if keyed else ()))
                                      for n in range(queued)], NOW)
        with store.atomic():
            for n in range(queued):
                store.audit("decision", f"ticket:{n}", {"n": n}, NOW)
        claim = _vm_steps(store, lambda s=store: s.claim("w", NOW, limit=2, lease_seconds=60))
        lookup = _vm_steps(store, lambda s=store: s.audit_log(subject="ticket:new", kind="decision", limit=1))
        costs.append((claim, lookup))
        store.close()
    (claim_short, lookup_short), (claim_long, lookup_long) = costs
    assert claim_long < 2 * claim_short + 200, costs
    assert lookup_long < 2 * lookup_short + 50, costs
