"""How every benchmark measures and reports: rounds, medians, comparisons in the same run.

A benchmark measures its subject and what it is compared with (another library, pluggy's
own call, the previous way) in the *same* run, in alternating rounds, so both see the same
machine load; and it reports the median of at least `MIN_ROUNDS` rounds with their min
and max, never a best round alone::

    from benchmarks.harness import Comparison, compare, table

    subject, baseline = compare(lambda: run_ours(), lambda: run_theirs(), work=len(inputs))
    print(table("µs per call", [Comparison("add, 1 hour", subject.per_op_us(), baseline.per_op_us(),
                                           "businesstimedelta", target="15x faster")]))

`measure` alone is for a subject without a comparison (then say why in the module's
docstring). `machine()` describes where the figures were taken.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

#: Fewest rounds any figure is the median of.
MIN_ROUNDS = 5


@dataclass(frozen=True)
class Rounds:
    """Seconds per round, and how much work (calls, decisions, requests) each round did."""

    seconds: tuple[float, ...]
    work: int = 1

    def __post_init__(self) -> None:
        if len(self.seconds) < MIN_ROUNDS:
            raise ValueError(f"a figure needs at least {MIN_ROUNDS} rounds, got {len(self.seconds)}")

    def rates(self) -> Figure:
        """Work per second: median, min and max over the rounds."""
        return Figure.of([self.work / s for s in self.seconds], "/s")

    def per_op_us(self) -> Figure:
        """Microseconds per unit of work: median, min and max over the rounds."""
        return Figure.of([s / self.work * 1e6 for s in self.seconds], "µs")


@dataclass(frozen=True)
class Figure:
    """One reported quantity: the median of its rounds, with the min and max."""

    median: float
    min: float
    max: float
    unit: str = ""
    rounds: int = 0

    @classmethod
    def of(cls, values: Sequence[float], unit: str = "") -> Figure:
        if len(values) < MIN_ROUNDS:
            raise ValueError(f"a figure needs at least {MIN_ROUNDS} rounds, got {len(values)}")
        return cls(statistics.median(values), min(values), max(values), unit, len(values))

    def show(self, digits: int | None = None) -> str:
        """``24,310/s (22,900–25,100)``: the median, then min–max."""
        return f"{_num(self.median, digits)}{self.unit} ({_num(self.min, digits)}–{_num(self.max, digits)})"


def _num(x: float, digits: int | None) -> str:
    if digits is None:
        digits = 0 if abs(x) >= 100 else (1 if abs(x) >= 10 else 2)
    return f"{x:,.{digits}f}"


def measure(run: Callable[[], object], *, work: int = 1, rounds: int = MIN_ROUNDS,
            min_seconds: float = 0.0) -> Rounds:
    """Time ``run()`` for ``rounds`` rounds (more while the total is under ``min_seconds``)."""
    seconds: list[float] = []
    total = 0.0
    while len(seconds) < rounds or total < min_seconds:
        t0 = time.perf_counter()
        run()
        elapsed = time.perf_counter() - t0
        seconds.append(elapsed)
        total += elapsed
    return Rounds(tuple(seconds), work)


def compare(subject: Callable[[], object], baseline: Callable[[], object], *, work: int = 1,
            baseline_work: int | None = None, rounds: int = MIN_ROUNDS, min_seconds: float = 0.0,
            ) -> tuple[Rounds, Rounds]:
    """Time ``subject`` and ``baseline`` in alternating rounds (ABBA order, so neither always
    runs first); each gets at least ``rounds`` rounds."""
    mine: list[float] = []
    theirs: list[float] = []
    total = 0.0
    i = 0
    while len(mine) < rounds or total < min_seconds:
        order = (subject, baseline) if i % 4 in (0, 3) else (baseline, subject)
        for run in order:
            t0 = time.perf_counter()
            run()
            elapsed = time.perf_counter() - t0
            (mine if run is subject else theirs).append(elapsed)
            total += elapsed
        i += 1
    return Rounds(tuple(mine), work), Rounds(tuple(theirs), baseline_work if baseline_work is not None else work)


@dataclass(frozen=True)
class Comparison:
    """One table row: a subject's figure next to what it is compared with.

    :param higher_is_better: for rates (``/s``) the ratio is subject / baseline; for times
        (``µs``) it is baseline / subject, so a ratio above 1 always means "subject better".
    """

    name: str
    subject: Figure
    baseline: Figure | None = None
    baseline_name: str = ""
    target: str = ""
    met: bool | None = None
    higher_is_better: bool = field(default=False)

    def ratio(self) -> float | None:
        if self.baseline is None:
            return None
        if self.higher_is_better:
            return self.subject.median / self.baseline.median
        return self.baseline.median / self.subject.median


def table(title: str, rows: Sequence[Comparison], digits: int | None = None) -> str:
    """A markdown table: median (min–max) of the subject and its comparison, and their ratio."""
    out = [
        f"{title} — median of ≥{MIN_ROUNDS} rounds (min–max), comparison measured in the same run",
        "",
        "| benchmark | policydesk | compared with | its figure | ratio | target |",
        "|---|---:|---|---:|---:|---|",
    ]
    for row in rows:
        ratio = row.ratio()
        verdict = "" if row.met is None else (": met" if row.met else ": NOT met")
        out.append(
            f"| {row.name} | {row.subject.show(digits)} | {row.baseline_name or '—'} | "
            f"{row.baseline.show(digits) if row.baseline else '—'} | "
            f"{'—' if ratio is None else f'{ratio:.1f}×'} | {row.target}{verdict} |"
        )
    return "\n".join(out)


def machine() -> str:
    """One line on where the figures come from (load matters: this machine is shared)."""
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return (f"{platform.python_implementation()} {platform.python_version()} on {platform.machine()}, "
            f"{os.cpu_count()} CPUs, load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
