"""The escalation scheduler, its job, notifications and digests (SQLite and PostgreSQL).

A fake clock throughout: every instant is passed in. Proportionality is asserted on
statement counts, SQLite VM instructions and query plans, never on time (timing lives in
``benchmarks/bench_scheduler.py``).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from store_fixtures import open_same, pg_dsn, pg_schema, store  # noqa: F401

from integrations.zammad.mapping import TICKET_FINGERPRINT, decision_fingerprint
from integrations.zammad.sync_objects import ESCALATION_TRIGGER, ESCALATION_WARNING_TRIGGER
from integrations.notify import RecordingNotifier
from integrations.scheduler import Scheduler, digest_time, step_delivery_id, timer_job
from integrations.service.metrics import Metrics
from integrations.service.processing import Processor
from integrations.store import Store
from plugin.engine import Engine
from plugin.model import Organization, Ticket

ZURICH = ZoneInfo("Europe/Zurich")
UTC = dt.timezone.utc
S = dt.timedelta(seconds=1)
AM = "ana.keller@provider.example"


def zurich(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=ZURICH)


# --------------------------------------------------------------------------- harness


#: policydesk's own Zammad user in these tests.
OWN_USER_ID = 99


class FakeAdapter:
    """The ZammadAdapter surface the Processor uses, over in-memory tickets."""

    def __init__(self) -> None:
        self.tickets: dict[int, tuple[Ticket, Organization, dict[str, Any]]] = {}
        self.applied: list[tuple[int, Any]] = []

    def put(self, ticket: Ticket, org: Organization, record: dict[str, Any] | None = None) -> None:
        self.tickets[int(ticket.id)] = (ticket, org, record or {})

    def update(self, tid: int, **changes: Any) -> None:
        ticket, org, record = self.tickets[tid]
        self.tickets[tid] = (replace(ticket, **changes), org, record)

    def load_context(self, tid: int) -> tuple[Ticket, Organization, Any]:
        ticket, org, record = self.tickets[int(tid)]
        return ticket, org, SimpleNamespace(record=record)

    def apply_decision(self, tid: int, decision: Any, state: Any = None, policies: Any = None) -> None:
        self.applied.append((tid, decision))
        return None  # "unchanged": nothing to audit

    def is_own_change(self, payload: Any) -> bool:
        return (payload.get("ticket") or {}).get("updated_by_id") == OWN_USER_ID


class Harness:
    def __init__(self, store: Store, policies: Any) -> None:
        self.store = store
        self.policies = policies
        self.adapter = FakeAdapter()
        self.engine = Engine(policies)
        self.processor = Processor(self.adapter, lambda: self.engine, store)  # type: ignore[arg-type]
        self.metrics = Metrics()
        self.notifier = RecordingNotifier()
        self.scheduler = Scheduler(store, self.processor, lambda: policies, self.metrics,
                                   clock=lambda: dt.datetime.now(UTC), notifier=self.notifier)
        self.processor.handlers["timer"] = self.scheduler.job_handler()

    def ticket(self, tid: int, created: str, plan: str, channel: str = "email", **fields: Any) -> Ticket:
        managers = {"account_manager": AM} if plan in ("pro", "enterprise") else {}
        org = Organization(id=100 + tid, name=f"org {tid}", plan=plan, account_managers=managers)
        ticket = Ticket(id=tid, channel=channel, created_at=zurich(created), **fields)
        self.adapter.put(ticket, org)
        self.processor.reconcile_ticket(tid, zurich(created))
        return ticket

    def work(self, now: dt.datetime) -> list[str]:
        """Process every ready job at ``now`` (as the worker would)."""
        outcomes = []
        for job in self.store.claim("w", now, limit=100):
            outcomes.append(self.processor(job, now))
            self.store.complete(job.id)
        return outcomes

    def fired(self, step: str) -> float:
        return self.metrics.escalations.labels(step=step)._value.get()


@pytest.fixture
def h(store: Store, bundled_policies: Any) -> Harness:
    return Harness(store, bundled_policies)


def unfired(store: Store, tid: int) -> dict[str, dt.datetime]:
    return {t.step: t.due_at for t in store.timers_of(str(tid)) if t.fired_at is None}


# --------------------------------------------------------------------------- firing


def test_plus_email_warning_at_75_and_breach_at_100_once_at_the_instant(h: Harness) -> None:
    h.ticket(1, "2026-01-05 08:00", "plus")  # Monday; e-mail hours 06-23: 4 h -> 12:00
    warning, breach = zurich("2026-01-05 11:00"), zurich("2026-01-05 12:00")
    assert unfired(h.store, 1) == {"warning": warning, "breach": breach}

    assert not h.scheduler.sweep(warning - S).fired
    result = h.scheduler.sweep(warning)
    assert [(t.ticket_id, t.step) for t in result.fired] == [("1", "warning")] and result.enqueued == 1
    assert not h.scheduler.sweep(warning).fired
    assert not h.scheduler.sweep(breach - S).fired
    assert [t.step for t in h.scheduler.sweep(breach).fired] == ["breach"]
    assert not h.scheduler.sweep(breach + dt.timedelta(hours=5)).fired
    assert h.fired("warning") == 1 and h.fired("breach") == 1

    jobs = h.store.claim("w", breach, limit=10)
    assert sorted(j.delivery_id.rsplit(":", 1)[1] for j in jobs) == ["breach", "warning"]
    assert all(j.source == "timer" for j in jobs)
    warning_job = next(j for j in jobs if j.delivery_id.endswith("warning"))
    assert json.loads(warning_job.body)["due_at"] == warning.isoformat() or \
        dt.datetime.fromisoformat(json.loads(warning_job.body)["due_at"]) == warning
    # the job reconciles at that instant: the decision carries the step's tag and note
    assert h.processor(warning_job, warning) == "fired"  # Plus has no account manager to tell
    decision = h.adapter.applied[-1][1]
    assert "sla:warning" in decision.tag_names and "Escalation 'warning'" in decision.note_text


def test_concurrent_schedulers_fire_each_step_once(open_same: Callable[..., Store], bundled_policies: Any) -> None:
    stores = [open_same(), open_same()]
    now = zurich("2026-01-05 12:00")
    with stores[0].atomic():
        for n in range(300):
            stores[0].set_timers(f"T{n}", "k", [("warning", now - dt.timedelta(minutes=n % 7)), ("breach", now)])
    schedulers = [Scheduler(s, None, lambda: bundled_policies, Metrics(), batch_size=50) for s in stores]
    results: list[Any] = [None] * 4
    barrier = threading.Barrier(4)

    def sweep(i: int) -> None:
        barrier.wait()
        results[i] = schedulers[i % 2].sweep(now)

    threads = [threading.Thread(target=sweep, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    fired = [(t.ticket_id, t.step) for r in results for t in r.fired]
    assert len(fired) == 600 and len(set(fired)) == 600
    assert sum(r.enqueued for r in results) == 600
    assert stores[0].queue_depth() == 600


def test_first_response_clears_timers(h: Harness) -> None:
    h.ticket(1, "2026-01-05 08:00", "plus")
    assert unfired(h.store, 1)
    h.adapter.update(1, first_response_at=zurich("2026-01-05 09:00"), state="open")
    h.processor.reconcile_ticket(1, zurich("2026-01-05 09:00"))
    assert unfired(h.store, 1) == {}
    for when in ("2026-01-05 11:00", "2026-01-05 12:00", "2026-01-06 12:00"):
        assert not h.scheduler.sweep(zurich(when)).fired
    assert h.store.queue_depth() == 0


def test_plan_upgrade_replaces_timers(h: Harness) -> None:
    h.ticket(1, "2026-01-05 08:00", "plus")
    old_keys = {t.deadline_key for t in h.store.timers_of("1")}
    ticket, org, record = h.adapter.tickets[1]
    h.adapter.put(ticket, replace(org, plan="pro"), record)
    h.processor.reconcile_ticket(1, zurich("2026-01-05 08:30"))
    timers = h.store.timers_of("1")
    assert {t.deadline_key for t in timers}.isdisjoint(old_keys)  # Plus timers gone
    assert unfired(h.store, 1) == {"warning": zurich("2026-01-05 09:30"), "breach": zurich("2026-01-05 10:00")}
    fired = [t for when in ("09:30", "10:00", "11:00", "12:00")
             for t in h.scheduler.sweep(zurich(f"2026-01-05 {when}")).fired]
    assert [(t.step, t.due_at) for t in fired] == [("warning", zurich("2026-01-05 09:30")),
                                                  ("breach", zurich("2026-01-05 10:00"))]
    assert all(t.deadline_key not in old_keys for t in fired)


def test_pending_pauses_clock_and_resets_timers(h: Harness) -> None:
    h.ticket(1, "2026-01-05 08:00", "plus")  # due 12:00
    h.adapter.update(1, state="pending reminder")
    h.processor.reconcile_ticket(1, zurich("2026-01-05 09:00"))
    assert unfired(h.store, 1) == {}  # no deadline while paused
    assert not h.scheduler.sweep(zurich("2026-01-05 11:00")).fired
    h.adapter.update(1, state="open")
    h.processor.reconcile_ticket(1, zurich("2026-01-05 11:00"))  # 2 open hours pending
    assert h.store.pending_periods("1", pending=False, now=zurich("2026-01-05 11:00")) == [
        (zurich("2026-01-05 09:00"), zurich("2026-01-05 11:00"))]
    decision = h.adapter.applied[-1][1]
    assert decision.first_response_due.value == zurich("2026-01-05 14:00")  # 12:00 + 2 h
    assert unfired(h.store, 1) == {"warning": zurich("2026-01-05 13:00"), "breach": zurich("2026-01-05 14:00")}
    assert not h.scheduler.sweep(zurich("2026-01-05 12:59:59")).fired
    assert [t.step for t in h.scheduler.sweep(zurich("2026-01-05 13:00")).fired] == ["warning"]


def test_zammad_escalation_event_drift_is_logged(h: Harness, caplog: pytest.LogCaptureFixture) -> None:
    h.ticket(1, "2026-01-05 08:00", "plus")  # policydesk: 12:00 Zurich = 11:00Z
    ticket, org, _ = h.adapter.tickets[1]
    now = zurich("2026-01-05 13:30")
    # Like with like: Zammad's clock as it is after policydesk's writes (the record shows its fingerprint).
    ours = {TICKET_FINGERPRINT: decision_fingerprint(h.engine.evaluate(ticket, org, now))}
    h.adapter.put(ticket, org, {"first_response_escalation_at": "2026-01-05T12:30:00Z", **ours})
    # Last updated by policydesk itself, as usual: the time event is processed all the same.
    body = json.dumps({"ticket": {"id": 1, "updated_by_id": OWN_USER_ID}}).encode()
    h.store.receive("zammad", "esc-1", body, {"X-Zammad-Trigger": ESCALATION_WARNING_TRIGGER}, now)
    caplog.set_level(logging.WARNING, logger="policydesk.processing")
    [job] = h.store.claim("w", now)
    h.processor(job, now)
    [record] = [r for r in caplog.records if "drifted" in r.getMessage()]
    assert ESCALATION_WARNING_TRIGGER in record.getMessage() and "2026-01-05T12:00:00+01:00" in record.getMessage()
    caplog.clear()
    h.adapter.put(ticket, org, {"first_response_escalation_at": "2026-01-05T11:00:00Z", **ours})  # agrees
    h.store.receive("zammad", "esc-2", body, {"X-Zammad-Trigger": ESCALATION_TRIGGER}, now)
    [job] = h.store.claim("w", now)
    h.processor(job, now)
    assert not [r for r in caplog.records if "drifted" in r.getMessage()]


# --------------------------------------------------------------------------- proportional cost


def _bulk_timers(store: Store, due: list[dt.datetime], later: int, far: dt.datetime) -> None:
    """``len(due)`` timers due at the given instants plus ``later`` not due, in one go."""
    rows = [(f"D{n}", "k", "breach", when) for n, when in enumerate(due)]
    rows += [(f"L{n}", "k", "breach", far + dt.timedelta(seconds=n)) for n in range(later)]
    created = store._ts(far)  # type: ignore[attr-defined]
    # Several transactions: each stays well inside the store's per-transaction deadline.
    for batch in range(0, len(rows), 6000):
        with store._tx() as tx:  # type: ignore[attr-defined]
            for start in range(batch, min(batch + 6000, len(rows)), 150):
                chunk = rows[start:start + 150]
                tx.execute(
                    "INSERT INTO timers (ticket_id, deadline_key, step, due_at, created_at) VALUES "
                    + ", ".join(["(?, ?, ?, ?, ?)"] * len(chunk)),
                    [v for r in chunk for v in (r[0], r[1], r[2], store._ts(r[3]), created)],  # type: ignore[attr-defined]
                )
    if store.dialect == "postgres":
        with store._tx() as tx:  # type: ignore[attr-defined]
            tx.execute("ANALYZE timers")


@pytest.fixture
def count_statements(store: Store, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    if store.dialect == "sqlite":
        from integrations.store.sqlite import _SQLiteTx as TxClass
    else:
        from integrations.store.postgres import _PgTx as TxClass  # type: ignore[assignment]
    seen: list[str] = []
    original = TxClass.execute

    def counting(self: Any, sql: str, params: Any = ()) -> Any:
        seen.append(sql)
        return original(self, sql, params)

    monkeypatch.setattr(TxClass, "execute", counting)
    yield seen


def test_sweep_cost_follows_what_is_due(store: Store, bundled_policies: Any, count_statements: list[str]) -> None:
    base = dt.datetime(2026, 1, 5, 8, tzinfo=UTC)
    # 100 due at base, then 1,000 due an hour later, of 100,000 open-ticket timers
    due = [base + dt.timedelta(milliseconds=n) for n in range(100)]
    due += [base + dt.timedelta(hours=1, milliseconds=n) for n in range(1000)]
    _bulk_timers(store, due, 100_000 - len(due), base + dt.timedelta(days=30))

    class NoProcessor:
        def __getattr__(self, name: str) -> Any:
            raise AssertionError(f"the sweep must not touch tickets (processor.{name})")

    scheduler = Scheduler(store, NoProcessor(), lambda: bundled_policies, Metrics(), batch_size=500)
    ops = _vm_counter(store)

    count_statements.clear()
    small = scheduler.sweep(base + S)
    small_statements, small_ops = len(count_statements), ops()
    count_statements.clear()
    big = scheduler.sweep(base + dt.timedelta(hours=1, seconds=1))
    big_statements, big_ops = len(count_statements), ops() - small_ops

    assert len(small.fired) == small.enqueued == 100
    assert len(big.fired) == big.enqueued == 1000 and big.batches == 3  # 500 + 500 + an empty look
    assert store.queue_depth() == 1100
    # statements: a handful per batch of 500 / chunk of 150, nothing per open ticket
    assert small_statements <= 6 and big_statements <= 30
    if store.dialect == "sqlite":
        # work done grows ~10x for 10x as much due, and is far below one pass over 100,000 timers
        assert 5 * small_ops <= big_ops <= 20 * small_ops
        assert small_ops < 100_000
    plan = _fire_due_plan(store, base)
    assert "timers_due" in plan and "SCAN timers" not in plan and "Seq Scan" not in plan
    # nothing left due: an empty sweep is one index probe per table
    count_statements.clear()
    assert not scheduler.sweep(base + dt.timedelta(hours=2))
    assert len(count_statements) == 2


def _vm_counter(store: Store) -> Callable[[], int]:
    """SQLite: virtual-machine instructions run on this thread's connection (in 100s)."""
    if store.dialect != "sqlite":
        return lambda: 0
    counter = [0]

    def tick() -> int:
        counter[0] += 100
        return 0

    store._conn().set_progress_handler(tick, 100)  # type: ignore[attr-defined]
    return lambda: counter[0]


def _fire_due_plan(store: Store, at: dt.datetime) -> str:
    pick = "SELECT id FROM timers WHERE fired_at IS NULL AND due_at <= ? ORDER BY due_at, id LIMIT 500"
    with store._tx(write=False) as tx:  # type: ignore[attr-defined]
        if store.dialect == "sqlite":
            rows = tx.execute("EXPLAIN QUERY PLAN " + pick, (store._ts(at),))  # type: ignore[attr-defined]
            return "\n".join(str(r[-1]) for r in rows)
        rows = tx.execute("EXPLAIN " + pick, (store._ts(at),))  # type: ignore[attr-defined]
        return "\n".join(str(r[0]) for r in rows)


# --------------------------------------------------------------------------- notifications


def test_notification_during_account_manager_hours_goes_out_at_once(h: Harness) -> None:
    h.ticket(1, "2026-01-05 10:00", "pro")  # Pro e-mail: 2 h -> warning 11:30
    now = zurich("2026-01-05 11:30")
    assert [t.step for t in h.scheduler.sweep(now).fired] == ["warning"]
    assert h.work(now) == ["notified"]
    [(person, item)] = h.notifier.sent
    assert person == AM and item["step"] == "warning" and item["ticket_id"] == 1
    assert h.store.next_release() is None


def test_notification_at_20h_held_for_next_mornings_digest_once(h: Harness) -> None:
    h.ticket(1, "2026-01-05 18:00", "pro")  # warning 19:30, breach 20:00
    h.ticket(2, "2026-01-05 18:10", "pro")  # warning 19:40, breach 20:10
    for when in ("19:30", "19:40", "20:00", "20:10"):
        now = zurich(f"2026-01-05 {when}")
        h.scheduler.sweep(now)
        assert h.work(now) == ["held"]
    assert h.notifier.sent == []
    morning = zurich("2026-01-06 09:00")  # the account managers' calendar opens, digest 0 9 * * mon-fri
    assert h.store.next_release() == morning
    assert h.scheduler.sweep(morning - S).released == 0
    result = h.scheduler.sweep(morning)
    assert (result.released, result.digests) == (4, 1)
    assert h.work(morning) == ["digest"]
    [(person, items, _id)] = h.notifier.digests
    assert person == AM
    assert sorted((i["ticket_id"], i["step"]) for i in items) == [
        (1, "breach"), (1, "warning"), (2, "breach"), (2, "warning")]
    later = h.scheduler.sweep(morning + dt.timedelta(minutes=1))
    assert (later.released, later.digests) == (0, 0) and h.work(morning + dt.timedelta(minutes=1)) == []
    assert len(h.notifier.digests) == 1


def test_digest_time_rules(bundled_policies: Any) -> None:
    role = bundled_policies.roles["account_manager"]
    cal = bundled_policies.calendars[role.calendar]
    assert digest_time(role, cal, zurich("2026-01-05 20:00")) == zurich("2026-01-06 09:00")
    assert digest_time(role, cal, zurich("2026-01-09 19:00")) == zurich("2026-01-12 09:00")  # Fri -> Mon
    late = replace(role, digest="30 9 * * mon-fri")
    assert digest_time(late, cal, zurich("2026-01-05 07:00")) == zurich("2026-01-05 09:30")
    assert digest_time(replace(role, digest=None), cal, zurich("2026-01-05 07:00")) == zurich("2026-01-05 09:00")


def test_emergency_at_3am_notifies_at_once(h: Harness) -> None:
    h.ticket(1, "2026-01-06 01:30", "pro", channel="phone", emergency_requested=True,
             category="infrastructure", language="en")  # 24/7 calendar: 2 h -> warning 03:00
    now = zurich("2026-01-06 03:00")
    assert [t.step for t in h.scheduler.sweep(now).fired] == ["warning"]
    assert h.work(now) == ["notified"]
    [(person, item)] = h.notifier.sent
    assert person == AM and item["emergency"] is True
    assert h.store.next_release() is None


def test_answered_before_the_job_runs_notifies_nobody(h: Harness) -> None:
    h.ticket(1, "2026-01-05 10:00", "pro")
    now = zurich("2026-01-05 11:30")
    h.scheduler.sweep(now)
    h.adapter.update(1, first_response_at=now, state="open")
    assert h.work(now) == ["skipped: answered or closed"]
    assert h.notifier.sent == []


def test_run_loop_sweeps_only_as_leader_and_wakes_at_the_instant(h: Harness) -> None:
    h.ticket(1, "2026-01-05 08:00", "plus")
    clock = [zurich("2026-01-05 10:59:59.5")]
    h.scheduler.clock = lambda: clock[0]
    assert h.scheduler.next_wake(clock[0]) == zurich("2026-01-05 11:00")  # next cron tick == next due
    h.ticket(2, "2026-01-05 08:00:20", "plus")  # warning 11:00:20: between two cron ticks
    assert len(h.scheduler.sweep(zurich("2026-01-05 11:00")).fired) == 1
    assert h.scheduler.next_wake(zurich("2026-01-05 11:00:01")) == zurich("2026-01-05 11:00:20")
    clock[0] = zurich("2026-01-05 11:00:01")

    stop = threading.Event()
    sweeps: list[dt.datetime] = []
    original = h.scheduler.sweep

    def sweep(now: dt.datetime) -> Any:
        sweeps.append(now)
        clock[0] = zurich("2026-01-05 11:00:20")
        if len(sweeps) >= 2:
            stop.set()
        return original(now)

    h.scheduler.sweep = sweep  # type: ignore[method-assign]
    h.scheduler.max_sleep = 0.01
    h.store.try_lead = lambda name: True  # type: ignore[method-assign]
    h.scheduler.run(stop)
    assert sweeps == [zurich("2026-01-05 11:00:01"), zurich("2026-01-05 11:00:20")]
    assert h.store.queue_depth() == 2  # both warnings, ticket 2's at its instant

    not_leader = threading.Event()
    h.store.try_lead = lambda name: (not_leader.set(), False)[1]  # type: ignore[method-assign]
    sweeps.clear()
    thread = threading.Thread(target=h.scheduler.run, args=(stop_after := threading.Event(),))
    thread.start()
    not_leader.wait(2)
    stop_after.set()
    thread.join(2)
    assert sweeps == [] and not h.scheduler.leading


# --------------------------------------------------------------------------- against the Zammad stand-in


@pytest.fixture
def zammad() -> Iterator[Any]:
    from integrations.zammad_standin import running_standin

    with running_standin() as standin:
        yield standin


def test_timer_job_against_standin_tags_notes_and_mentions_account_manager(
    zammad: Any, store: Store, bundled_policies: Any
) -> None:
    from integrations.notify import NOTIFICATION_PREFERENCE, ZammadNotifier
    from integrations.zammad.adapter import ZammadAdapter, ZammadClient
    from integrations.zammad.mapping import NOTE_SUBJECT
    from integrations.zammad.resources import RetryPolicy

    ticket = next(t for t in zammad.state.all("tickets") if t["title"] == "Website down since 07:40")
    tid = ticket["id"]
    zammad.state.tables["tickets"][tid]["created_at"] = "2026-01-05T08:00:00.000Z"  # Mon 09:00 Zurich
    client = ZammadClient(zammad.url, zammad.token_for("policydesk@example.com"),
                          retry=RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.05))
    adapter = ZammadAdapter(client)
    engine = Engine(bundled_policies)
    processor = Processor(adapter, lambda: engine, store)
    metrics = Metrics()
    processor.handlers["timer"] = timer_job(processor, store, metrics, lambda: bundled_policies,
                                            ZammadNotifier(adapter))
    scheduler = Scheduler(store, processor, lambda: bundled_policies, metrics)

    processor.reconcile_ticket(tid, zurich("2026-01-05 09:05"))  # Pro phone: 2 h -> warning 10:30
    assert unfired(store, tid)["warning"] == zurich("2026-01-05 10:30")
    now = zurich("2026-01-05 10:30")
    [timer] = scheduler.sweep(now).fired
    [job] = store.claim("w", now)
    assert job.delivery_id == step_delivery_id(timer)
    assert processor(job, now) == "notified"
    store.complete(job.id)

    assert "sla:warning" in client.tags.list(tid)
    articles = client.ticket_articles.by_ticket(tid)
    notes = [a for a in articles if a.get("subject") == NOTE_SUBJECT]
    assert notes and "Escalation 'warning'" in notes[-1]["body"]
    ana = adapter.find_user(AM)
    assert any(int(m["user_id"]) == int(ana["id"]) for m in client.mentions.for_ticket(tid))
    [notification] = [a for a in articles if (a.get("preferences") or {}).get(NOTIFICATION_PREFERENCE)]
    assert f'data-mention-user-id="{ana["id"]}"' in notification["body"] and notification["internal"]

    # a retried job has one effect: no second notification note
    processor(job, now)
    again = client.ticket_articles.by_ticket(tid)
    assert len([a for a in again if (a.get("preferences") or {}).get(NOTIFICATION_PREFERENCE)]) == 1


def test_digest_against_standin_is_one_ticket_for_the_person(zammad: Any, store: Store) -> None:
    from integrations.notify import ZammadNotifier
    from integrations.zammad.adapter import ZammadAdapter, ZammadClient

    adapter = ZammadAdapter(ZammadClient(zammad.url, zammad.token_for("policydesk@example.com")))
    tickets = [t["id"] for t in zammad.state.all("tickets")][:2]
    items = [{"key": f"{t}:k:{s}:{AM}", "ticket_id": t, "step": s, "due_at": "2026-01-05T19:30:00+00:00",
              "role": "account_manager"} for t in tickets for s in ("warning", "breach")]
    before = len(zammad.state.all("tickets"))
    ZammadNotifier(adapter).send_digest(AM, items + items[:1], "digest:ana:1")
    ZammadNotifier(adapter).send_digest(AM, items, "digest:ana:1")  # the job retried: no second digest
    after = zammad.state.all("tickets")
    assert len(after) == before + 1
    digest = after[-1]
    ana = adapter.find_user(AM)
    assert digest["owner_id"] == ana["id"] and "4 escalation" in digest["title"]
    [article] = zammad.state.articles_of(digest["id"])
    assert article["body"].count("<li>") == 2 and f'data-mention-user-id="{ana["id"]}"' in article["body"]


def test_digest_drops_tickets_answered_or_closed_since(h: Harness) -> None:
    h.ticket(1, "2026-01-05 18:00", "pro")  # warning 19:30, breach 20:00: held for 09:00
    h.ticket(2, "2026-01-05 18:10", "pro")
    h.ticket(3, "2026-01-05 18:20", "pro")
    evening = zurich("2026-01-05 20:30")
    h.scheduler.sweep(evening)
    assert "held" in h.work(evening)
    held = h.store.next_release()
    assert held == zurich("2026-01-06 09:00")
    h.adapter.update(1, first_response_at=zurich("2026-01-05 21:00"), state="open")  # answered at night
    h.adapter.update(2, state="closed")
    morning = zurich("2026-01-06 09:00")
    h.scheduler.sweep(morning)
    assert h.work(morning) == ["digest"]
    [(person, items, _id)] = h.notifier.digests
    assert {i["ticket_id"] for i in items} == {3}
    print(f"\ndigest re-check: tickets 1 (answered) and 2 (closed) dropped, {len(items)} item(s) of ticket 3 sent")


def test_digest_with_nothing_left_sends_nothing(h: Harness) -> None:
    h.ticket(1, "2026-01-05 18:00", "pro")
    evening = zurich("2026-01-05 20:30")
    h.scheduler.sweep(evening)
    h.work(evening)
    h.adapter.update(1, state="closed")
    morning = zurich("2026-01-06 09:00")
    h.scheduler.sweep(morning)
    assert h.work(morning) == ["digest: nothing left"] and h.notifier.digests == []


def test_plus_breach_notifies_the_owner(h: Harness) -> None:
    h.ticket(1, "2026-01-05 10:00", "plus", owner="agent.one@provider.example")  # 4 h: breach at 14:00
    now = zurich("2026-01-05 14:00")
    fired = [t.step for t in h.scheduler.sweep(now).fired]
    assert "breach" in fired
    assert "notified" in h.work(now)
    assert any(person == "agent.one@provider.example" and item["kind"] == "owner" for person, item in h.notifier.sent)


def test_advice_waiting_for_its_window_is_handed_to_the_technical_account_manager_when_it_opens(h: Harness) -> None:
    """Enterprise advice asked on a Saturday waits for Monday 09:00 (Mon-Fri 09:00-18:00): a
    timer re-evaluates the ticket then, and routing gives it the technical account manager."""
    tam = "tom@provider.example"
    org = Organization(id=501, name="org 1", plan="enterprise",
                       account_managers={"account_manager": AM, "technical_account_manager": tam})
    saturday = zurich("2026-11-28 10:00")
    h.adapter.put(Ticket(id=1, channel="email", created_at=saturday, category="advice"), org)
    h.processor.reconcile_ticket(1, saturday)
    first = h.adapter.applied[-1][1]
    assert first.routing.value.group == "Advice" and first.routing.value.owner is None
    monday = zurich("2026-11-30 09:00")
    assert unfired(h.store, 1)["advice_window"] == monday
    before = monday - dt.timedelta(minutes=1)  # the 1 h first-response steps fired on Saturday already
    assert "advice_window" not in [t.step for t in h.scheduler.sweep(before).fired]
    h.work(before)
    assert h.adapter.applied[-1][1].routing.value.owner is None  # still waiting
    assert [t.step for t in h.scheduler.sweep(monday).fired] == ["advice_window"]
    assert "advice window: re-evaluated" in h.work(monday)  # with the digests held since Saturday
    opened = h.adapter.applied[-1][1]
    assert opened.routing.value.group == "Advice" and opened.routing.value.owner == tam
    assert "advice_window" not in unfired(h.store, 1)
