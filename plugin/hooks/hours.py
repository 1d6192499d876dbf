"""Which calendar's opening hours count for a request."""

from __future__ import annotations

from plugin.hookspecs import hookimpl
from plugin.model import Contribution, Decision, Request, Verdict
from plugin.tags import hours_tag

SOURCE = "policydesk.hours"


@hookimpl(trylast=True)
def policydesk_calendar(request: Request, decision: Decision) -> Verdict[str]:
    emergency = decision.emergency
    if emergency is not None and emergency.value.eligible:
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
def policydesk_tags(request: Request, decision: Decision) -> list[Contribution]:
    assert decision.calendar is not None
    return [Contribution(hours_tag(decision.calendar.value), SOURCE, decision.calendar.reason)]
