"""Replay of 1,000,000 synthetic tickets: wall-clock time, all CPUs (target: under 60 s).

The history is generated once (``integrations.replay.generate``, seed 1, 90 days) and kept
in ``$POLICYDESK_BENCH_DIR`` (default: the system temp dir) for later runs; generating is
not timed. The replay reads the JSONL file, parses and checks every line, replays every
ticket under the bundled policies and builds the summary, as ``policydesk replay`` does.

Each figure is the median of ``BENCH_ROUNDS`` (default 5) replays of the file, with min and
max. ``python -m benchmarks replay`` or ``python -m benchmarks.bench_replay [N]``.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.harness import Figure
from integrations.replay.generate import generate
from integrations.replay.records import write_records
from integrations.replay.run import replay_file
from plugin.policy import load_policies

POLICIES = Path(__file__).resolve().parent.parent / "policies"
N_TICKETS = 1_000_000
SEED = 1
TARGET_SECONDS = 60.0
#: Replays of the same file; the median is reported, with min and max.
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))


def history(n: int) -> Path:
    """The generated history of ``n`` tickets, written on first use."""
    directory = Path(os.environ.get("POLICYDESK_BENCH_DIR", tempfile.gettempdir()))
    path = directory / f"policydesk-replay-{n}-seed{SEED}.jsonl"
    if not path.exists():
        t0 = time.perf_counter()
        partial = path.with_suffix(".partial")
        write_records(generate(n, load_policies(POLICIES), seed=SEED), partial, "jsonl")
        partial.rename(path)
        print(f"generated {n:,} tickets in {time.perf_counter() - t0:.1f} s -> {path}", flush=True)
    return path


def main(argv: list[str] | None = None) -> str:
    argv = sys.argv[1:] if argv is None else argv
    n = int(argv[0]) if argv and argv[0].isdigit() else N_TICKETS
    path = history(n)
    jobs = os.cpu_count() or 1
    times = []
    for _ in range(ROUNDS):
        t0 = time.perf_counter()
        result = replay_file(path, POLICIES, jobs=jobs, progress=None)
        times.append(time.perf_counter() - t0)
    seconds = Figure.of(times, " s")
    verdict = "met" if seconds.median < TARGET_SECONDS * n / N_TICKETS else "MISSED"
    per_ticket = Figure.of([t / max(1, result.tickets) * 1e6 for t in times], " µs")
    total = result.summary.total()
    return "\n".join([
        f"history: {path} ({path.stat().st_size / 1e6:.0f} MB)",
        "",
        f"| benchmark | tickets | jobs | wall time, median of {ROUNDS} (min–max) | per ticket | target |",
        "|---|---:|---:|---:|---:|---|",
        f"| replay_file, bundled policies | {result.tickets:,} | {jobs} | {seconds.show(1)} | "
        f"{per_ticket.show(1)} | < {TARGET_SECONDS:.0f} s per 1M: {verdict} |",
        "",
        f"cached: {result.cached}; met {total.counts['met']:,}, breached {total.counts['breached']:,}",
    ])


if __name__ == "__main__":
    print(main())
