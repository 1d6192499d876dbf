"""How instants and durations are written for people (notes, explain)."""

from __future__ import annotations

import datetime as dt


def human_instant(t: dt.datetime) -> str:
    """``Sat 28 Nov 2026 08:00 CET`` — weekday, date, wall time and zone abbreviation."""
    return t.strftime("%a %d %b %Y %H:%M %Z").strip()


def human_minutes(minutes: float) -> str:
    """``4h``, ``90m`` -> ``1h30m``, ``0m``."""
    whole = int(round(minutes))
    hours, rest = divmod(whole, 60)
    if hours and rest:
        return f"{hours}h{rest:02d}m"
    return f"{hours}h" if hours else f"{rest}m"
