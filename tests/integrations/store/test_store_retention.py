"""Retention: purge by kind and age, the queue's lag (issue 10), on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

from integrations.store import Store
from store_fixtures import open_same, pg_dsn, pg_schema, store  # noqa: F401

UTC = dt.timezone.utc
NOW = dt.datetime.now(UTC)
DAY = dt.timedelta(days=1)


def job_in_state(store: Store, delivery: str, state: str) -> int:
    job_id = store.receive("zammad", delivery, b'{"customer": "data"}', {}, NOW).job_id
    assert job_id is not None
    if state == "done":
        store.complete(job_id)
    elif state == "parked":
        store.park(job_id, "no such ticket")
    elif state == "claimed":
        assert [j.id for j in store.claim("w1", NOW)] == [job_id]
    return job_id


def test_purge_removes_only_finished_history_and_never_parked_work(store: Store) -> None:
    ids = {state: job_in_state(store, f"d-{state}", state) for state in ("done", "parked", "claimed", "pending")}
    counts = store.purge(NOW + DAY)
    print(f"\n{store.dialect}: purge {counts}")
    assert counts["jobs"] == counts["events"] == 1
    assert store.get_job(ids["done"]) is None
    for state in ("parked", "pending", "claimed"):
        job = store.get_job(ids[state])
        assert job is not None and job.state == state and job.body == b'{"customer": "data"}'
    assert store.purge(NOW + DAY)["jobs"] == 0  # idempotent


def test_nothing_newer_than_the_cut_is_purged(store: Store) -> None:
    job_in_state(store, "recent", "done")
    store.audit("decision", "ticket:1", {"n": 1}, NOW)
    assert store.purge(NOW - DAY, audit_before=NOW - DAY) == {
        "bodies": 0, "jobs": 0, "events": 0, "timers": 0, "held_notifications": 0, "audit": 0}


def test_bodies_can_go_earlier_than_the_jobs_and_deduplication_stays(store: Store) -> None:
    done = job_in_state(store, "body-1", "done")
    parked = job_in_state(store, "body-2", "parked")
    counts = store.purge(bodies_before=NOW + DAY)
    assert counts["bodies"] == 1 and counts["jobs"] == 0
    job = store.get_job(done)
    assert job is not None and job.body == b"" and job.delivery_id == "body-1"
    assert store.get_job(parked).body == b'{"customer": "data"}'  # type: ignore[union-attr]
    assert not store.receive("zammad", "body-1", b"{}", {}, NOW).new  # still a known delivery
    assert store.purge(bodies_before=NOW + DAY)["bodies"] == 0


def test_audit_rows_go_but_each_tickets_newest_decision_stays(store: Store) -> None:
    old = NOW - 400 * DAY
    for n in range(3):
        store.audit("decision", "ticket:1", {"n": n}, old)
        store.audit("decision", "ticket:2", {"n": n}, old)
    store.audit("plan-change", "org:1", {}, old)
    store.audit("plan-change", "org:1", {}, NOW)
    counts = store.purge(audit_before=NOW - 365 * DAY)
    assert counts["audit"] == 5
    kept = {(e.kind, e.subject, e.data.get("n")) for e in store.audit_log()}
    assert kept == {("decision", "ticket:1", 2), ("decision", "ticket:2", 2), ("plan-change", "org:1", None)}


def test_purge_works_in_batches(store: Store) -> None:
    store.PURGE_BATCH = 7  # type: ignore[attr-defined]
    with store.atomic():
        for n in range(30):
            job_id = store.receive("zammad", f"b-{n}", b"{}", {}, NOW).job_id
            store.complete(job_id or 0)
    assert store.purge(NOW + DAY)["jobs"] == 30
    assert store.counts()["done"] == 0


def test_oldest_pending_age(store: Store) -> None:
    assert store.oldest_pending_age(NOW) == 0.0
    job_in_state(store, "age-done", "done")
    job_in_state(store, "age-parked", "parked")
    assert store.oldest_pending_age(NOW + DAY) == 0.0  # finished and parked work is not lag
    job_in_state(store, "age-1", "claimed")
    assert store.oldest_pending_age(NOW + dt.timedelta(seconds=90)) == 90.0
    job_in_state(store, "age-2", "pending")
    assert store.oldest_pending_age(NOW + dt.timedelta(seconds=90)) == 90.0
