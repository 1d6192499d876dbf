"""Which calendar's opening hours count for a request."""

from __future__ import annotations

from plugin.hooks.memo import PolicyCache
from plugin.hookspecs import hookimpl
from plugin.model import Contribution, Decision, Request, Verdict
from plugin.tags import hours_tag

SOURCE = "policydesk.hours"


_CACHE = PolicyCache()


@hookimpl(trylast=True)
def policydesk_calendar(request: Request, decision: Decision) -> Verdict[str]:
    emergency = decision.emergency
    granted = emergency is not None and emergency.value.eligible
    key = (granted, decision.plan.value if decision.plan is not None else None, request.ticket.channel)
    return _CACHE.get(request.policies, key, _calendar, request, decision, granted)


def _calendar(request: Request, decision: Decision, granted: bool) -> Verdict[str]:
    if granted:
        name = request.policies.scope.emergency_calendar
        return Verdict(name, SOURCE, f"a granted emergency counts on the {name!r} calendar")
    plan = request.plan_of(decision)
    channel = request.ticket.channel
    if channel in plan.channel_calendars:
        name = plan.channel_calendars[channel]
        return Verdict(name, SOURCE, f"requests by {channel} count on the {name!r} calendar")
    name = plan.default_calendar
    return Verdict(name, SOURCE, f"channel {channel!r} is not listed; written channels count on the {name!r} calendar")


@hookimpl(trylast=True)
def policydesk_tags(request: Request, decision: Decision) -> tuple[Contribution, ...]:
    calendar = decision.calendar
    assert calendar is not None
    return _TAGS.get(request.policies, (calendar.value, calendar.reason), _tags, calendar)


def _tags(calendar: Verdict[str]) -> tuple[Contribution, ...]:
    return (Contribution(hours_tag(calendar.value), SOURCE, calendar.reason),)


_TAGS = PolicyCache()
