"""A brute-force reference for `plugin.calendar.BusinessCalendar`: it steps through time
one UTC minute at a time and asks the wall clock.

It is slow on purpose and written to be obviously right.  It relies on one fact that holds
for every zone the tests use: UTC offsets, DST transitions and windows all fall on whole
minutes, so the calendar is open either for the whole of a UTC minute or for none of it.
Instants are integer microseconds since the Unix epoch, so comparisons are exact.
"""

from __future__ import annotations

import datetime as dt
from typing import Callable, Collection, Mapping, Sequence
from zoneinfo import ZoneInfo

from plugin.model import Window

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
US = dt.timedelta(microseconds=1)
MINUTE = 60_000_000  # microseconds


def to_us(t: dt.datetime) -> int:
    return (t - EPOCH) // US


def from_us(x: int, tz: ZoneInfo) -> dt.datetime:
    return (EPOCH + dt.timedelta(microseconds=x)).astimezone(tz)


class Oracle:
    def __init__(
        self,
        tz: str,
        weekly: Mapping[int, Sequence[Window]],
        closed: Collection[dt.date] | Callable[[dt.date], bool] = (),
        special_days: Mapping[dt.date, Sequence[Window]] | None = None,
    ) -> None:
        self.tz = ZoneInfo(tz)
        self.weekly = weekly
        self.closed = closed
        self.special_days = special_days or {}

    def windows(self, day: dt.date) -> Sequence[Window]:
        if day in self.special_days:
            return self.special_days[day]
        is_closed = self.closed(day) if callable(self.closed) else day in self.closed
        if is_closed:
            return []
        return self.weekly.get(day.weekday(), [])

    def minute_is_open(self, minute: int) -> bool:
        """Is the calendar open during UTC minute number `minute` (since the epoch)?"""
        wall = (EPOCH + dt.timedelta(minutes=minute)).astimezone(self.tz)
        time_of_day = wall.hour * 60 + wall.minute
        return any(w.open <= time_of_day < w.close for w in self.windows(wall.date()))

    def is_open(self, x: int) -> bool:
        return self.minute_is_open(x // MINUTE)

    def next_open(self, x: int, max_minutes: int) -> int | None:
        """x if open, else the start of the first open minute; None if not within max_minutes."""
        if self.is_open(x):
            return x
        minute = x // MINUTE + 1
        for _ in range(max_minutes):
            if self.minute_is_open(minute):
                return minute * MINUTE
            minute += 1
        return None

    def add(self, x: int, need: int, max_minutes: int) -> int | None:
        """The instant at which `need` microseconds of open time have passed since x.

        Walks minute by minute; counts the open part of each minute; stops as soon as the
        target is reached (so a target reached at a closing instant is due at that instant).
        None if not reached within max_minutes minutes.
        """
        if need == 0:
            return self.next_open(x, max_minutes)
        t = x
        for _ in range(max_minutes):
            minute = t // MINUTE
            minute_end = (minute + 1) * MINUTE
            if self.minute_is_open(minute):
                if need <= minute_end - t:
                    return t + need
                need -= minute_end - t
            t = minute_end
        return None

    def open_between(self, a: int, b: int) -> int:
        """Open microseconds in [a, b)."""
        total = 0
        t = a
        while t < b:
            minute_end = (t // MINUTE + 1) * MINUTE
            if self.is_open(t):
                total += min(b, minute_end) - t
            t = minute_end
        return total

    def open_intervals(self, a: int, b: int) -> list[tuple[int, int]]:
        """Maximal open intervals within [a, b)."""
        out: list[tuple[int, int]] = []
        t = a
        while t < b:
            end = min(b, (t // MINUTE + 1) * MINUTE)
            if self.is_open(t):
                if out and out[-1][1] == t:
                    out[-1] = (out[-1][0], end)
                else:
                    out.append((t, end))
            t = end
        return out

    def next_closing(self, x: int, max_minutes: int) -> int | None:
        """The first closing instant strictly after x (the end of an open stretch)."""
        minute = x // MINUTE
        was_open = self.minute_is_open(minute)
        for _ in range(max_minutes):
            minute += 1
            now_open = self.minute_is_open(minute)
            if was_open and not now_open:
                return minute * MINUTE
            was_open = now_open
        return None
