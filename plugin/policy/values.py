"""How policy values are written: times, days, durations, percentages, dates.

Shared by the cross-checks (which report a malformed value) and the build (which reads a
value already checked).
"""

from __future__ import annotations

import re
from typing import Any

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_TIME = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DURATION = re.compile(r"(?:([0-9]+)h)?(?:([0-9]+)m)?")
_PERCENT = re.compile(r"([0-9]+(?:\.[0-9]+)?)%")


#: The longest first-response target a policy may set: a year of 24/7 open time. Larger
#: ones are typos, and would run past the calendar's horizon.
MAX_TARGET_MINUTES = 366 * 24 * 60


def parse_duration(text: str) -> int:
    """Minutes in a duration: ``"4h"`` -> 240, ``"90m"`` -> 90, ``"1h30m"`` -> 90.

    :raises ValueError: if ``text`` is not hours and/or minutes in that form.
    """
    match = _DURATION.fullmatch(text) if isinstance(text, str) else None
    if match is None or not any(match.groups()):
        raise ValueError(f'expected a duration like "2h", "90m" or "1h30m"; got {text!r}')
    hours, minutes = match.groups()
    return int(hours or 0) * 60 + int(minutes or 0)


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _items(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _minutes(text: Any, *, closing: bool = False) -> int | None:
    """``"06:30"`` -> 390; ``"24:00"`` -> 1440 for a closing time; ``None`` if malformed."""
    if not isinstance(text, str):
        return None
    if closing and text == "24:00":
        return 1440
    match = _TIME.fullmatch(text)
    return int(match[1]) * 60 + int(match[2]) if match else None


def _days(key: str) -> list[int] | None:
    """``"mon-fri"`` -> [0..4]; ``None`` if not a day or range; [] for a backwards range."""
    first, _, last = key.partition("-")
    if first not in DAYS or (last and last not in DAYS):
        return None
    start, end = DAYS.index(first), DAYS.index(last or first)
    return list(range(start, end + 1))


def _percent(text: Any) -> float | None:
    match = _PERCENT.fullmatch(text) if isinstance(text, str) else None
    return float(match[1]) if match else None


def _is_date(text: Any) -> bool:
    return isinstance(text, str) and _DATE.fullmatch(text) is not None


