"""Business time: when a calendar is open, and what instant a target in open time falls on.

A `BusinessCalendar` is a set of local wall-clock opening windows per weekday in an IANA
time zone, plus closed dates (holidays) and special days with their own windows.

Semantics (the property tests' brute-force oracle is the reference):

- The calendar is open at instant ``t`` iff the wall clock of ``t`` in the calendar's zone
  shows a time of day inside a window ``[open, close)`` of the date the wall clock shows.
  The windows of a date are ``special_days[date]`` if present, else none if the date is
  closed, else ``weekly[date.weekday()]``.
- Open time is real elapsed time.  A window touching a DST gap opens when the wall clock
  reaches it (02:30 on a spring-forward night opens at 03:00); during a fold the repeated
  wall-clock hour is open twice if a window covers it.
- A target reached exactly at a closing instant is due at that closing instant.

Cost: each calendar lazily builds, per UTC year, a sorted index of its open intervals in
integer microseconds since the epoch with cumulative open time, so `add` is two bisects
whatever the length of the target.  All arithmetic is exact to the microsecond.
"""

from __future__ import annotations

import datetime as dt
import math
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Collection, Mapping, Sequence
from collections.abc import Set as AbstractSet
from typing import NamedTuple
from zoneinfo import ZoneInfo

from plugin.model import Window

__all__ = ["BusinessCalendar", "Window"]

_UTC = dt.UTC
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=_UTC)
_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()
_US = 1_000_000  # microseconds per second
_ONE_US = dt.timedelta(microseconds=1)
_DAY = 86_400  # seconds
_US_PER_MINUTE = 60 * _US
_fromtimestamp = dt.datetime.fromtimestamp
#: How far `next_open` (and `add`, through closed stretches) looks before giving up.
HORIZON_YEARS = 10
#: Step used to detect UTC-offset transitions (no zone changes offset twice within 6 hours).
_PROBE = 6 * 3600


class _Chunk(NamedTuple):
    """The open intervals inside one UTC year ``[lo, hi)``, all in epoch microseconds."""

    year: int
    lo: int
    hi: int
    starts: list[int]
    ends: list[int]
    cum: list[int]  # open time before interval i, counted from lo
    cum_end: list[int]  # open time up to the end of interval i, counted from lo
    total: int


def _year_start_us(year: int) -> int:
    return (dt.date(year, 1, 1).toordinal() - _EPOCH_ORDINAL) * _DAY * _US


def _normalise(windows: Sequence[Window] | Sequence[tuple[int, int]], where: str) -> tuple[tuple[int, int], ...]:
    """Windows as sorted, merged ``(open, close)`` minute pairs; bad windows raise ValueError."""
    pairs = []
    for w in windows:
        o, c = (w.open, w.close) if isinstance(w, Window) else tuple(w)
        if not (isinstance(o, int) and isinstance(c, int) and 0 <= o < c <= 1440):
            raise ValueError(f"{where}: window {w!r} must satisfy 0 <= open < close <= 1440 (minutes)")
        pairs.append((o, c))
    merged: list[tuple[int, int]] = []
    for o, c in sorted(pairs):
        if merged and o <= merged[-1][1]:  # overlapping or touching windows are one window
            merged[-1] = (merged[-1][0], max(merged[-1][1], c))
        else:
            merged.append((o, c))
    return tuple(merged)


class BusinessCalendar:
    """Opening hours in a time zone; see the module docstring for the exact semantics.

    :param timezone: IANA name (``"Europe/Zurich"``) or a `ZoneInfo`.
    :param weekly: weekday (0 = Monday .. 6 = Sunday) -> windows that day; a missing
        weekday is closed all day.  Windows are local wall-clock minutes, close up to 1440.
    :param closed: dates closed all day: a callable ``date -> bool`` or a collection of
        dates.  Sets and mappings (e.g. a ``holidays`` object, which expands years
        lazily) are queried with ``in``; other collections are copied into a frozenset.
    :param special_days: a date's own windows, overriding ``weekly`` and ``closed``
        (``[]`` = closed that day).
    :param name: for messages.
    :raises ValueError: on a malformed window or weekday.
    """

    def __init__(
        self,
        timezone: str | ZoneInfo,
        weekly: Mapping[int, Sequence[Window]],
        *,
        closed: Callable[[dt.date], bool] | Collection[dt.date] = (),
        special_days: Mapping[dt.date, Sequence[Window]] | None = None,
        name: str = "",
    ) -> None:
        self.name = name
        self.timezone: ZoneInfo = ZoneInfo(timezone) if isinstance(timezone, str) else timezone
        self._weekly: dict[int, tuple[tuple[int, int], ...]] = {}
        for day, windows in weekly.items():
            if day not in range(7):
                raise ValueError(f"calendar {name!r}: weekday {day!r} must be 0 (Monday) .. 6 (Sunday)")
            self._weekly[day] = _normalise(windows, f"calendar {name!r} weekday {day}")
        self._special = {
            d: _normalise(w, f"calendar {name!r} special day {d}") for d, w in (special_days or {}).items()
        }
        if callable(closed):
            self._closed: Callable[[dt.date], bool] = closed
        elif isinstance(closed, (AbstractSet, Mapping)):
            self._closed = closed.__contains__  # keep lazy containers (holidays) lazy
        else:
            self._closed = frozenset(closed).__contains__
        self._chunks: dict[int, _Chunk] = {}
        self._last: _Chunk | None = None  # the chunk used last: most calls hit it again
        self._seen: tuple[dt.datetime | None, int] = (None, 0)  # the start `add` saw last, in µs

    def __repr__(self) -> str:
        return f"BusinessCalendar(name={self.name!r}, timezone={str(self.timezone)!r})"

    # ------------------------------------------------------------------ public API

    def is_open(self, t: dt.datetime) -> bool:
        """Whether the calendar is open at the aware instant ``t`` (windows are half-open)."""
        x = _to_us(t)
        c = self._chunk_at(x)
        i = bisect_right(c.starts, x) - 1
        return i >= 0 and x < c.ends[i]

    def next_open(self, t: dt.datetime) -> dt.datetime:
        """``t`` if open, else the next opening instant, in the calendar's zone.

        :raises ValueError: if ``t`` is naive or nothing opens within `HORIZON_YEARS`.
        """
        x = _to_us(t)
        c = self._chunk_at(x)
        i = bisect_right(c.starts, x) - 1
        if i >= 0 and x < c.ends[i]:
            return t.astimezone(self.timezone)
        if i + 1 < len(c.starts):
            return self._to_dt(c.starts[i + 1])
        for year in range(c.year + 1, c.year + HORIZON_YEARS + 2):
            c = self._chunk(year)
            if c.starts:
                return self._to_dt(c.starts[0])
        raise ValueError(f"calendar {self.name!r} does not open within {HORIZON_YEARS} years after {t.isoformat()}")

    def add(self, start: dt.datetime, minutes: float | int | dt.timedelta) -> dt.datetime:
        """The instant at which ``minutes`` of open time have passed, counting from ``start``.

        A closed ``start`` counts from the next opening.  A target reached exactly at a
        closing instant is due at that instant.  ``minutes == 0`` gives ``next_open(start)``.
        Cost does not depend on the size of ``minutes``.

        :raises ValueError: on naive ``start``, negative or non-finite ``minutes``, or a
            calendar that stays closed for `HORIZON_YEARS`.
        """
        # The hot path of every decision: helpers inlined, no datetime.replace for whole seconds.
        # A decision counts its deadline and its escalation steps from the same instant: its
        # position is kept (one tuple, so threads sharing the calendar see a matching pair).
        seen = self._seen
        if seen[0] is start:
            x = seen[1]
        else:
            try:
                x = (start - _EPOCH) // _ONE_US
            except TypeError:
                raise ValueError(f"expected a timezone-aware datetime, got {start!r}") from None
            self._seen = (start, x)
        if type(minutes) is int:
            need = minutes * _US_PER_MINUTE
        elif isinstance(minutes, dt.timedelta):
            need = minutes // _ONE_US
        else:
            if isinstance(minutes, float) and not math.isfinite(minutes):
                raise ValueError(f"minutes must be finite, got {minutes!r}")
            need = round(minutes * _US_PER_MINUTE)  # exact for ints; floats to the microsecond
        if need <= 0:
            if need < 0:
                raise ValueError(f"minutes must not be negative, got {minutes!r}")
            return self.next_open(start)
        c = self._last
        if c is None or not c.lo <= x < c.hi:
            c = self._chunk_at(x)
        starts = c.starts
        i = bisect_right(starts, x) - 1
        # Open time of the chunk before x, plus the target: the position we look for.
        if i >= 0:
            end = c.ends[i]
            target = need + c.cum[i] + (x if x < end else end) - starts[i]
        else:
            target = need
        if target > c.total:  # the target lies in a later year: carry the rest over
            empty_years = 0
            while target > c.total:
                empty_years = empty_years + 1 if c.total == 0 else 0
                if empty_years > HORIZON_YEARS:
                    raise ValueError(f"calendar {self.name!r} stays closed for {HORIZON_YEARS} years after "
                                     f"{start.isoformat()}")
                target -= c.total
                c = self._chunk(c.year + 1)
            starts = c.starts
        j = bisect_left(c.cum_end, target)  # first interval with cum[j] < target <= cum_end[j]
        seconds, micro = divmod(starts[j] + target - c.cum[j], _US)
        if micro:
            return _fromtimestamp(seconds, self.timezone).replace(microsecond=micro)
        return _fromtimestamp(seconds, self.timezone)

    def open_minutes_between(self, a: dt.datetime, b: dt.datetime) -> float:
        """Open time in ``[a, b)`` in minutes (0 if ``b <= a``); exact to the microsecond."""
        xa, xb = _to_us(a), _to_us(b)
        if xb <= xa:
            return 0.0
        ca, cb = self._chunk_at(xa), self._chunk_at(xb)
        total = self._position(cb, xb) - self._position(ca, xa)
        for year in range(ca.year, cb.year):  # whole years in between
            total += self._chunk(year).total
        return total / _US_PER_MINUTE

    def open_intervals(self, a: dt.datetime, b: dt.datetime) -> list[tuple[dt.datetime, dt.datetime]]:
        """The open intervals intersected with ``[a, b)``, merged where contiguous, as aware
        datetimes in the calendar's zone (``[]`` if ``b <= a``)."""
        xa, xb = _to_us(a), _to_us(b)
        out: list[list[int]] = []
        year = self._chunk_at(xa).year
        while xa < xb:
            c = self._chunk(year)
            if c.lo >= xb:
                break
            for k in range(max(0, bisect_right(c.starts, xa) - 1), len(c.starts)):
                s, e = max(c.starts[k], xa), min(c.ends[k], xb)
                if s >= xb:
                    break
                if s >= e:
                    continue
                if out and out[-1][1] == s:  # contiguous across a chunk boundary
                    out[-1][1] = e
                else:
                    out.append([s, e])
            year += 1
        return [(self._to_dt(s), self._to_dt(e)) for s, e in out]

    # ------------------------------------------------------------------ the index

    def _windows_on(self, day: dt.date) -> tuple[tuple[int, int], ...]:
        """The merged ``(open, close)`` minute windows of a local date."""
        if day in self._special:
            return self._special[day]
        if self._closed(day):
            return ()
        return self._weekly.get(day.weekday(), ())

    def _to_dt(self, x: int) -> dt.datetime:
        seconds, micro = divmod(x, _US)
        if micro == 0:  # the common case (whole-second instants): no replace() copy
            return _fromtimestamp(seconds, self.timezone)
        return _fromtimestamp(seconds, self.timezone).replace(microsecond=micro)

    @staticmethod
    def _position(c: _Chunk, x: int) -> int:
        """Open microseconds in ``[c.lo, x)``."""
        i = bisect_right(c.starts, x) - 1
        return 0 if i < 0 else c.cum[i] + min(x, c.ends[i]) - c.starts[i]

    def _chunk_at(self, x: int) -> _Chunk:
        last = self._last
        if last is not None and last.lo <= x < last.hi:
            return last
        try:
            year = (_EPOCH + dt.timedelta(microseconds=x)).year
        except OverflowError:
            raise ValueError("instant out of range") from None
        self._last = c = self._chunk(year)
        return c

    def _chunk(self, year: int) -> _Chunk:
        c = self._chunks.get(year)
        if c is None:
            if not 2 <= year <= 9998:  # the build looks at neighbouring dates and years
                raise ValueError(f"year {year} is out of range for calendar {self.name!r}")
            c = self._chunks[year] = self._build(year)
        return c

    def _offset(self, s: int) -> int:
        """UTC offset in seconds at epoch second ``s``."""
        off = dt.datetime.fromtimestamp(s, self.timezone).utcoffset()
        return int(off.total_seconds()) if off is not None else 0

    def _pieces(self, lo: int, hi: int) -> tuple[list[int], list[int]]:
        """Split epoch seconds ``[lo, hi)`` into constant-offset pieces: (bounds, offsets)."""
        bounds, offsets = [lo], [self._offset(lo)]
        s = lo
        while s < hi:
            nxt = min(s + _PROBE, hi)
            off = self._offset(nxt)
            if off != offsets[-1]:
                a, b = s, nxt  # offset(a) == offsets[-1] != offset(b): find the first changed second
                while b - a > 1:
                    m = (a + b) // 2
                    if self._offset(m) == offsets[-1]:
                        a = m
                    else:
                        b = m
                bounds.append(b)
                offsets.append(off)
            s = nxt
        bounds.append(hi)
        return bounds, offsets

    def _build(self, year: int) -> _Chunk:
        """All open intervals in UTC year ``year``, merged, with cumulative open time."""
        lo, hi = _year_start_us(year) // _US, _year_start_us(year + 1) // _US
        bounds, offsets = self._pieces(lo - 3 * _DAY, hi + 3 * _DAY)
        raw: list[tuple[int, int]] = []
        day = dt.date(year - 1, 12, 31)  # offsets are under a day: neighbouring dates reach in
        while day <= dt.date(year + 1, 1, 1):
            windows = self._windows_on(day)
            if windows:
                w0 = (day.toordinal() - _EPOCH_ORDINAL) * _DAY  # the date's midnight, read as UTC
                first = max(0, bisect_right(bounds, w0 - _DAY) - 1)
                last = bisect_left(bounds, w0 + 2 * _DAY)
                for p in range(first, min(last, len(offsets))):
                    off = offsets[p]
                    for o, c in windows:
                        # Instants of this piece whose wall clock (utc + off) lies in the window.
                        s = max(bounds[p], w0 + o * 60 - off, lo)
                        e = min(bounds[p + 1], w0 + c * 60 - off, hi)
                        if s < e:
                            raw.append((s, e))
            day += dt.timedelta(days=1)
        raw.sort()
        merged: list[list[int]] = []
        for s, e in raw:
            if merged and s <= merged[-1][1]:  # contiguous or overlapping: one interval
                merged[-1][1] = max(merged[-1][1], e)
            else:
                merged.append([s, e])
        starts = [s * _US for s, _ in merged]
        ends = [e * _US for _, e in merged]
        cum: list[int] = []
        cum_end: list[int] = []
        total = 0
        for s_us, e_us in zip(starts, ends):
            cum.append(total)
            total += e_us - s_us
            cum_end.append(total)
        return _Chunk(year, lo * _US, hi * _US, starts, ends, cum, cum_end, total)


def _to_us(t: dt.datetime) -> int:
    """Epoch microseconds of an aware datetime; ValueError if naive."""
    try:
        return (t - _EPOCH) // _ONE_US
    except TypeError:
        raise ValueError(f"expected a timezone-aware datetime, got {t!r}") from None
