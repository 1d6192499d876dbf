"""Cost of `BusinessCalendar.add` against the PyPI package ``businesstimedelta``.

Calendar: the seed's phone hours (Mon-Fri 06:00-19:00, Europe/Zurich), without and with
the CH/ZH public holidays of the ``holidays`` package.  Targets: 1 hour, 8 hours, 30 days of
open time.  Both libraries get the same starts (fixed seed, whole minutes in 2026); the
brute-force oracle of the tests checks a sample of results of both.

businesstimedelta (WorkDayRule + HolidayRule over pytz) walks one working period per
loop iteration, and its HolidayRule scans day by day for the next holiday, so its cost
grows with the target; policydesk's index is warmed first and costs two bisects.

Semantic differences found (shown by `dst_differences`): businesstimedelta localizes
window edges with pytz's default ``is_dst=False``, so a window edge in a DST gap is moved
by the gap (02:30 on a spring-forward night opens at 03:30 instead of 03:00), and a
window inside a fold is counted once (the standard-time pass) instead of twice.  It also
cannot express several windows a day (without one rule per window), 24:00 ends or one-off
special opening days.  On the phone calendar (06:00-19:00, far from 02:00-03:00) they
agree.
"""

from __future__ import annotations

import datetime as dt
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from zoneinfo import ZoneInfo

import businesstimedelta as btd
import holidays
import pytz

from benchmarks.harness import Comparison, compare, machine, table
from plugin.calendar import BusinessCalendar
from plugin.model import Window

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "helpers"))
from calendar_oracle import MINUTE, Oracle, from_us, to_us  # noqa: E402  (the tests' reference)

ZONE = "Europe/Zurich"
TZ = ZoneInfo(ZONE)
PYTZ = pytz.timezone(ZONE)
PHONE = {d: [Window(6 * 60, 19 * 60)] for d in range(5)}
TARGETS = [("1 hour", 60), ("8 hours", 8 * 60), ("30 days", 30 * 1440)]
SEED = 20261127
N_STARTS = 200
ROUNDS = 7
#: policydesk's rounds go over the starts this many times, so that a round lasts long
#: enough (milliseconds) not to be one scheduler slice on a shared machine.
REPEAT = 20
TARGET_RATIO = 15  # at 1 hour (issue 14)
SAMPLE = {60: 40, 8 * 60: 40, 30 * 1440: 4}  # starts checked against the oracle per target


def starts(n: int = N_STARTS) -> list[dt.datetime]:
    """Whole-minute instants spread over 2026, as Zurich wall-clock datetimes."""
    rng = random.Random(SEED)
    t0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    return [(t0 + dt.timedelta(minutes=rng.randrange(365 * 1440))).astimezone(TZ) for _ in range(n)]


def calendars() -> list[tuple[str, BusinessCalendar, btd.Rules, Oracle]]:
    out = []
    for label, closed in (("phone", None), ("phone + CH/ZH holidays", holidays.country_holidays("CH", subdiv="ZH"))):
        workday = btd.WorkDayRule(start_time=dt.time(6), end_time=dt.time(19), working_days=[0, 1, 2, 3, 4], tz=PYTZ)
        rules = [workday] + ([btd.HolidayRule(closed, tz=PYTZ)] if closed is not None else [])
        ours = BusinessCalendar(ZONE, PHONE, closed=closed if closed is not None else (), name=label)
        out.append((label, ours, btd.Rules(rules), Oracle(ZONE, PHONE, closed if closed is not None else ())))
    return out


def dst_differences() -> list[str]:
    """Where businesstimedelta and policydesk disagree around DST, computed, not asserted."""
    lines = []
    cases = [
        ("window 02:30-04:00, spring-forward 2026-03-29", dt.time(2, 30), dt.time(4), dt.datetime(2026, 3, 29)),
        ("window 02:00-03:00, fall-back 2026-10-25", dt.time(2), dt.time(3), dt.datetime(2026, 10, 25)),
    ]
    for label, o, c, day in cases:
        ours = BusinessCalendar(ZONE, {d: [Window(o.hour * 60 + o.minute, c.hour * 60 + c.minute)] for d in range(7)})
        theirs = btd.Rules([btd.WorkDayRule(start_time=o, end_time=c, working_days=list(range(7)), tz=PYTZ)])
        a, b = day.replace(tzinfo=TZ), (day + dt.timedelta(days=1)).replace(tzinfo=TZ)
        mine_open = ours.open_minutes_between(a, b)
        their_start, their_end = theirs.next(PYTZ.localize(day))
        their_open = (their_end - their_start).total_seconds() / 60
        lines.append(f"  {label}: policydesk opens {ours.next_open(a).strftime('%H:%M %Z')}, counts {mine_open:.0f} min; "
                     f"businesstimedelta opens {their_start.astimezone(TZ).strftime('%H:%M %Z')}, counts {their_open:.0f} min")
    return lines


def main() -> None:
    inputs = starts()
    pytz_inputs = [s.astimezone(PYTZ) for s in inputs]
    rows: list[Comparison] = []
    checks: list[str] = []
    disagreements: list[str] = []
    for label, ours, theirs, oracle in calendars():
        ours.add(dt.datetime(2025, 12, 31, tzinfo=TZ), 366 * 1440)  # warm the index for 2026-2027
        for target_label, minutes in TARGETS:
            delta = btd.BusinessTimeDelta(theirs, hours=minutes // 60, seconds=minutes % 60 * 60)
            add = ours.add

            def run_ours(add: Callable[..., dt.datetime] = add, minutes: int = minutes) -> None:
                for _ in range(REPEAT):
                    for s in inputs:
                        add(s, minutes)

            def run_theirs(delta: btd.BusinessTimeDelta = delta) -> None:
                for s in pytz_inputs:
                    s + delta

            mine, other = compare(run_ours, run_theirs, work=len(inputs) * REPEAT, baseline_work=len(inputs),
                                  rounds=ROUNDS)
            t0 = time.perf_counter()
            checked = 0
            for s, ps in list(zip(inputs, pytz_inputs))[: SAMPLE[minutes]]:
                expected = oracle.add(to_us(s), minutes * MINUTE, 400 * 1440)
                got_ours, got_theirs = to_us(ours.add(s, minutes)), to_us(ps + delta)
                checked += 1
                if not (expected == got_ours == got_theirs):
                    want = "none within 400 days" if expected is None else from_us(expected, TZ).isoformat()
                    disagreements.append(f"  {label}, {target_label} from {s.isoformat()}: oracle {want}, policydesk "
                                         f"{from_us(got_ours, TZ).isoformat()}, businesstimedelta {from_us(got_theirs, TZ).isoformat()}")
            checks.append(f"  {label}, {target_label}: {checked} results checked against the oracle "
                          f"({(time.perf_counter() - t0) / checked * 1e6:.0f} µs per check)")
            row = Comparison(f"{label}, {target_label}", mine.per_op_us(), other.per_op_us(), "businesstimedelta",
                             target=f"{TARGET_RATIO}× faster" if minutes == 60 else "")
            if minutes == 60:
                row = Comparison(row.name, row.subject, row.baseline, row.baseline_name, row.target,
                                 met=(row.ratio() or 0) >= TARGET_RATIO)
            rows.append(row)

    print(f"add(start, target) on {ZONE}, {N_STARTS} starts in 2026 (seed {SEED}); machine: {machine()}")
    print(table("µs per add() call", rows))
    print("flat in the target length: policydesk's median µs at 1 hour / 8 hours / 30 days = "
          + ", ".join(" / ".join(f"{r.subject.median:.2f}" for r in rows[i:i + 3]) for i in range(0, len(rows), 3)))
    print(f"agreement with the oracle: {'all sampled results agree' if not disagreements else f'{len(disagreements)} disagreements'}")
    for line in checks + disagreements[:10]:
        print(line)
    print("DST semantics (not exercised by the phone calendar):")
    for line in dst_differences():
        print(line)


if __name__ == "__main__":
    main()
