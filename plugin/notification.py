"""When a recipient hears of an escalation step: now, or at their digest. Pure.

A role has working hours (``roles.<name>.calendar`` in plans.yaml, e.g. account managers
Mon-Fri 09:00-18:00). Inside them a notification goes out at once; outside them it is held
for the role's digest: the first tick of ``roles.<name>.digest`` (a cron schedule in the
calendar's zone) at or after the calendar's next opening, or that opening itself when the
role has no digest schedule. What the policies mark urgent (``notifications.urgent``: a
granted emergency, or a step's id) goes out at once whatever the hour. Groups and the
ticket's owner have no hours in the policies: they hear at once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from croniter import croniter

from plugin.model import Policies
from plugin.timefmt import human_instant

if TYPE_CHECKING:
    from plugin.calendar import BusinessCalendar

UTC = dt.UTC


def digest_time(role: Any, calendar: BusinessCalendar, now: dt.datetime) -> dt.datetime:
    """When a notification held at ``now`` for ``role`` goes out (UTC): the first tick of the
    role's digest schedule at or after the calendar's next opening; the opening itself when
    the role has no digest schedule."""
    opening: dt.datetime = calendar.next_open(now)
    schedule = getattr(role, "digest", None)
    if not schedule:
        return opening.astimezone(UTC)
    key = (schedule, id(calendar), opening)
    cached = _DIGESTS.get(key)
    if cached is not None and cached[0] is calendar:
        return cached[1]
    start = opening.astimezone(calendar.timezone) - dt.timedelta(microseconds=1)
    at: dt.datetime = croniter(schedule, start).get_next(dt.datetime).astimezone(UTC)
    if len(_DIGESTS) >= _DIGEST_CACHE_SIZE:
        _DIGESTS.clear()
    _DIGESTS[key] = (calendar, at)
    return at


#: (schedule, calendar id, opening) -> (calendar, digest instant): croniter costs about a
#: millisecond a call, and openings repeat (every ticket held over a weekend shares one).
_DIGESTS: dict[tuple[str, int, dt.datetime], tuple[Any, dt.datetime]] = {}
_DIGEST_CACHE_SIZE = 4096


def delivery_time(policies: Policies, kind: str, recipient: str, now: dt.datetime,
                  urgent: str | None = None) -> tuple[bool, dt.datetime, str]:
    """(immediate, deliver at, why) for a notification to ``recipient`` at ``now``.

    :param kind: ``"role"``, ``"group"`` or ``"owner"``.
    :param recipient: The role name (for ``"role"``), the group name, or ``"owner"``.
    :param urgent: Why the notification is urgent (e.g. "a granted 24/7 emergency"), or
        ``None``; an urgent notification goes out at once.
    """
    immediate, at, why = delivery(policies, kind, recipient, now, urgent)
    return immediate, at, why if isinstance(why, str) else why()


def delivery(policies: Policies, kind: str, recipient: str, now: dt.datetime,
             urgent: str | None = None) -> tuple[bool, dt.datetime, str | Callable[[], str]]:
    """`delivery_time`, its ``why`` a callable where the sentence is costly (the engine's
    notifications write it when first read, see `plugin.model.Notification`)."""
    if kind != "role":
        return True, now, f"the {'ticket owner' if kind == 'owner' else f'group {recipient!r}'} is told at once"
    role = policies.roles.get(recipient)
    title = role.title.lower() if role is not None else recipient
    if urgent is not None:
        return True, now, f"{urgent} is urgent: the {title} is told at once, whatever the hour"
    calendar = policies.calendars.get(role.calendar) if role is not None else None
    if calendar is None:
        return True, now, f"the {title} has no working hours in the policies: told at once"
    if calendar.is_open(now):
        return True, now, f"within the {title}'s hours ({role.calendar!r} calendar): told at once"  # type: ignore[union-attr]
    at = digest_time(role, calendar, now)
    return False, at, lambda: (f"outside the {title}'s hours ({role.calendar!r} calendar): held for the digest "  # type: ignore[union-attr]
                               f"at {human_instant(at.astimezone(calendar.timezone))}")


def managers_to_mention(policies: Policies, decision: Any) -> tuple[str, ...]:
    """The account managers to mention on the ticket at ``decision.now``: each role's person
    while the role's hours are open, and all of them for what is urgent (a granted
    emergency, when ``notifications.urgent`` lists it). A Zammad mention notifies at once,
    so outside their hours managers hear through the escalation notifications and digests
    instead (the seed: account managers are there "5/7 from 9 am to 6 pm")."""
    managers = decision.account_managers.value if decision.account_managers is not None else {}
    if not managers:
        return ()
    emergency = decision.emergency
    urgent = "a granted 24/7 emergency" if (
        emergency is not None and emergency.value.eligible and "emergency" in policies.urgent) else None
    people = []
    for role, person in managers.items():
        immediate, _, _ = delivery(policies, "role", role, decision.now, urgent)
        if immediate and person not in people:
            people.append(person)
    return tuple(people)
