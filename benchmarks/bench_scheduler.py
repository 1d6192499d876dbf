"""Escalation sweep time: 100,000 open-ticket timers of which 1,000 are due.

One sweep = ``fire_due`` (mark the due timers fired) + one durable ``"timer"`` job per
fired step, in one transaction per batch of 500 (what `integrations.scheduler.Scheduler`
does). Target: < 100 ms for 1,000 due among 100,000, on SQLite and PostgreSQL; and the
time follows what is due (100 vs 1,000 vs 10,000 due), not the number of open tickets.
Each figure is the median of ``BENCH_ROUNDS`` (default 5) sweeps, each over a fresh fill,
with min and max.

PostgreSQL: ``POLICYDESK_BENCH_PG`` or ``postgresql://postgres@127.0.0.1:5432/test``
(skipped with a message when unreachable); a scratch schema is created and dropped.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
import time
import uuid
from pathlib import Path

from benchmarks.harness import Figure
from integrations.scheduler import Scheduler
from integrations.service.metrics import Metrics
from integrations.store import Store, open_store

UTC = dt.UTC
OPEN_TIMERS = 100_000
TARGET_MS = 100.0
#: Sweeps per figure (each over a fresh fill): the median is reported, with min and max.
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
BASE = dt.datetime(2026, 1, 5, 8, tzinfo=UTC)
PG = os.environ.get("POLICYDESK_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")


class _Policies:
    escalation_sweep = "* * * * *"
    default_timezone = "Europe/Zurich"


def _fill(store: Store, due: int, total: int) -> None:
    """``due`` timers due before BASE, the rest of ``total`` a month later."""
    created = store._ts(BASE)  # type: ignore[attr-defined]
    rows = [(f"T{n}", "plan@due", "breach",
             BASE - dt.timedelta(seconds=due - n) if n < due else BASE + dt.timedelta(days=30, seconds=n))
            for n in range(total)]
    # Filling 100,000 rows takes longer than the store's per-transaction deadline (meant for
    # the service's short transactions): lift it for the fill, as the store's migration does.
    local = getattr(store, "_local", None)
    if local is not None:
        local.deadline = None
    try:
        _insert(store, rows, created, total)
    finally:
        if local is not None and hasattr(local, "deadline"):
            del local.deadline
    with store._tx() as tx:  # type: ignore[attr-defined]
        tx.execute("ANALYZE" if store.dialect == "sqlite" else "ANALYZE timers")


def _insert(store: Store, rows: list, created: object, total: int) -> None:
    with store._tx() as tx:  # type: ignore[attr-defined]
        tx.execute("DELETE FROM timers")
        tx.execute("DELETE FROM jobs")
        tx.execute("DELETE FROM events")
        for start in range(0, total, 150):
            chunk = rows[start:start + 150]
            tx.execute(
                "INSERT INTO timers (ticket_id, deadline_key, step, due_at, created_at) VALUES "
                + ", ".join(["(?, ?, ?, ?, ?)"] * len(chunk)),
                [v for r in chunk for v in (r[0], r[1], r[2], store._ts(r[3]), created)],  # type: ignore[attr-defined]
            )


def _sweep_ms(store: Store, due: int, total: int = OPEN_TIMERS, rounds: int = ROUNDS) -> Figure:
    """One sweep over a fresh fill, ``rounds`` times: its milliseconds (median, min, max)."""
    scheduler = Scheduler(store, None, lambda: _Policies(), Metrics())
    times = []
    for _ in range(rounds):
        _fill(store, due, total)
        t0 = time.perf_counter()
        result = scheduler.sweep(BASE)
        times.append((time.perf_counter() - t0) * 1000)
        assert len(result.fired) == result.enqueued == due, result
    return Figure.of(times)


def _ms(figure: Figure) -> str:
    return f"{figure.median:7.1f} ms ({figure.min:.1f}–{figure.max:.1f})"


def _bench(name: str, store: Store) -> list[str]:
    lines = []
    main = _sweep_ms(store, 1000)
    verdict = "ok" if main.median < TARGET_MS else f"SLOWER than the {TARGET_MS:.0f} ms target"
    lines.append(f"{name:10s} 1,000 due of {OPEN_TIMERS:,} timers: {_ms(main)}  ({verdict})")
    for due in (100, 1000, 10_000):
        figure = _sweep_ms(store, due)
        lines.append(f"{name:10s} {due:>6,} due of {OPEN_TIMERS:,}: {_ms(figure)}"
                     f"  ({figure.median / due * 1000:6.1f} us per fired step)")
    small = _sweep_ms(store, 1000, total=2000)
    lines.append(f"{name:10s} 1,000 due of 2,000 timers:   {_ms(small)}  (open tickets barely matter:"
                 f" x{main.median / small.median:.2f} for 50x the timers)")
    return lines


def main() -> str:
    lines = []
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(Path(tmp) / "bench.db")
        try:
            lines += _bench("sqlite", store)
        finally:
            store.close()
    schema = f"bench_sched_{uuid.uuid4().hex[:8]}"
    try:
        import psycopg

        store = open_store(PG, schema=schema)
    except Exception as exc:  # no server: say so, do not fail the other benchmarks
        lines.append(f"postgres   skipped: {exc}")
        return "\n".join(lines)
    try:
        lines += _bench("postgres", store)
    finally:
        store.close()
        with psycopg.connect(PG, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    return "\n".join(lines)


if __name__ == "__main__":
    print(main())
