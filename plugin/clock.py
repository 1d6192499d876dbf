"""The deadline clock, once for the whole product: a deadline and its inverse, with pauses.

Business time is the open time of a calendar (`plugin.calendar.BusinessCalendar`). The
clock starts when the request arrives and stops at the first response; while the ticket is
in a state that pauses it (`pauses_clock`), no time counts. The live engine
(`plugin.hooks.sla`), replay, `explain` and the statement all use these functions.

Which states pause is policy (``clock.pause_states`` in plans.yaml). The default follows
Zammad: a state pauses when its ``ignore_escalation`` is true
(`lib/escalation/ticket_biz_break.rb`); in a fresh Zammad those are ``pending reminder``,
``pending close``, ``closed``, ``merged`` and ``removed`` (`db/seeds/ticket_states.rb`).
The contract's terms name no pause; following Zammad keeps Zammad's own countdown (the
SLAs sync writes) and policydesk's deadline the same, and a ticket waiting for the
customer does not use the team's time. docs/plugins.md says so too.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING

from plugin.model import Policies

if TYPE_CHECKING:
    from plugin.calendar import BusinessCalendar

#: A pause: (start, end); an end of ``None`` means paused now.
Pause = tuple[dt.datetime, "dt.datetime | None"]

#: The states of a fresh Zammad whose ``ignore_escalation`` is true (db/seeds/ticket_states.rb).
ZAMMAD_PAUSE_STATES = frozenset({"pending reminder", "pending close", "closed", "merged", "removed"})


def pauses_clock(policies: Policies, state: str | None, ignore_escalation: bool | None = None) -> bool:
    """Whether a ticket in ``state`` has its clock paused.

    :param policies: ``policies.pause_states``: a set of state names, or ``None`` to follow Zammad.
    :param state: The ticket state's name.
    :param ignore_escalation: Zammad's flag for that state, when the caller read it from
        Zammad; ``None`` falls back to `ZAMMAD_PAUSE_STATES`.
    """
    if not state:
        return False
    if policies.pause_states is not None:
        return state in policies.pause_states
    if ignore_escalation is not None:
        return ignore_escalation
    return state in ZAMMAD_PAUSE_STATES


def deadline(calendar: BusinessCalendar, start: dt.datetime, minutes: float, pauses: Sequence[Pause] = ()) -> dt.datetime | None:
    """When ``minutes`` of ``calendar``'s open time have run from ``start``, skipping ``pauses``.

    ``pauses`` are oldest first and do not overlap. ``None`` while the clock is paused
    before the target is reached (the deadline is not known until the pause ends).
    """
    remaining, cursor = float(minutes), start
    for pause_start, pause_end in pauses:
        if pause_end is not None and pause_end <= cursor:
            continue
        pause_start = max(pause_start, cursor)
        due: dt.datetime = calendar.add(cursor, remaining)
        if due <= pause_start:
            return due
        remaining -= calendar.open_minutes_between(cursor, pause_start)
        if pause_end is None:
            return None
        cursor = pause_end
    end: dt.datetime = calendar.add(cursor, remaining)
    return end


def business_minutes(calendar: BusinessCalendar, a: dt.datetime, b: dt.datetime, pauses: Sequence[Pause] = ()) -> float:
    """Open minutes of ``calendar`` in ``[a, b)`` outside ``pauses`` (0 when ``b <= a``).

    The inverse of `deadline`: ``business_minutes(c, s, deadline(c, s, m, p), p) == m``.
    Real minutes: an hour across a DST change counts 60.
    """
    if b <= a:
        return 0.0
    between = calendar.open_minutes_between
    total: float = between(a, b)
    for pause_start, pause_end in pauses:
        s = pause_start if pause_start > a else a
        e = b if pause_end is None or pause_end > b else pause_end
        if s < e:
            total -= between(s, e)
    return total


def minutes_late(calendar: BusinessCalendar, due: dt.datetime, at: dt.datetime, pauses: Sequence[Pause] = ()) -> float:
    """Business minutes by which ``at`` is past ``due`` (negative: minutes to spare)."""
    if at >= due:
        return business_minutes(calendar, due, at, pauses)
    return -business_minutes(calendar, at, due, pauses)
