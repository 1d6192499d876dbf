"""How instants and durations are written for people (notes, explain)."""

from __future__ import annotations

import datetime as dt
from locale import LC_TIME, setlocale

_FORMAT = "%a %d %b %Y %H:%M %Z"
#: ``%a`` and ``%b`` in the C locale (the one Python runs in unless a program calls
#: ``locale.setlocale``); any other locale goes through ``strftime``.
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_C_LOCALES = frozenset({"C", "POSIX"})


def human_instant(t: dt.datetime) -> str:
    """``Sat 28 Nov 2026 08:00 CET`` — weekday, date, wall time and zone abbreviation."""
    # Same text as t.strftime(_FORMAT).strip(), built without strftime (about twice as
    # fast: this runs for several reasons and notes of every decision).
    if 1000 <= t.year and setlocale(LC_TIME) in _C_LOCALES:
        zone = t.tzname() or ""
        return (f"{_DAYS[t.weekday()]} {t.day:02d} {_MONTHS[t.month - 1]} {t.year} "
                f"{t.hour:02d}:{t.minute:02d} {zone}").strip()
    return t.strftime(_FORMAT).strip()


def human_minutes(minutes: float) -> str:
    """``4h``, ``90m`` -> ``1h30m``, ``0m``."""
    whole = int(round(minutes))
    hours, rest = divmod(whole, 60)
    if hours and rest:
        return f"{hours}h{rest:02d}m"
    return f"{hours}h" if hours else f"{rest}m"


def parse_instant(text: str, naive: dt.tzinfo | None) -> dt.datetime:
    """An ISO 8601 date-time (``Z`` allowed) as an aware datetime; the one parser of instants.

    Without an offset the text is wall time in ``naive``; with ``naive=None`` such text is
    refused. Raises ``ValueError`` with a message a person can act on.
    """
    stripped = text.strip()
    try:
        parsed = dt.datetime.fromisoformat(stripped[:-1] + "+00:00" if stripped[-1:] in "zZ" and stripped else stripped)
    except ValueError:
        raise ValueError(f"{text[:60]!r} is not an ISO 8601 date-time such as 2026-11-27T21:00:00Z "
                         "or 2026-11-27T21:00+01:00") from None
    if parsed.tzinfo is not None:
        return parsed
    if naive is None:
        raise ValueError(f"{text[:60]!r} has no UTC offset; write it as {stripped}Z (UTC) or with its offset, "
                         "e.g. +01:00")
    return parsed.replace(tzinfo=naive)
