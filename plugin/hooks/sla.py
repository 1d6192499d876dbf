"""When the first response is due, and where the ticket stands on its escalation ladder.

The deadline is the plan's target counted in open time of the chosen calendar from the
ticket's creation; each escalation step is due at its share of that target, counted the
same way (`plugin.clock.deadline`). A first response stops the clock; a state that
pauses it (`plugin.clock.pauses_clock`) adds the paused open time to the deadline.
"""

from __future__ import annotations

import datetime as dt

from plugin.calendar import BusinessCalendar
from plugin.clock import deadline as clock_deadline
from plugin.hookspecs import hookimpl
from plugin.model import (
    GROUP_PREFIX,
    OWNER,
    Contribution,
    Decision,
    EscalationState,
    Request,
    Ticket,
    Verdict,
)
from plugin.timefmt import human_instant, human_minutes

SOURCE = "policydesk.sla"


@hookimpl(trylast=True)
def policydesk_first_response_due(request: Request, decision: Decision) -> Verdict[dt.datetime | None]:
    plan = request.plan_of(decision)
    if plan.first_response_minutes is None:
        return Verdict(None, SOURCE, f"the {plan.title} plan guarantees no response time (answered promptly)")
    assert decision.calendar is not None
    name = decision.calendar.value
    calendar = request.policies.calendars[name]
    created = request.ticket.created_at
    due = deadline(calendar, request.ticket, plan.first_response_minutes)
    minutes = plan.first_response_minutes
    if due is None:
        since = request.ticket.paused[-1][0]
        state = request.ticket.state
        return Verdict(None, SOURCE, lambda: (
            f"the clock is paused since {human_instant(since.astimezone(calendar.timezone))} (state {state!r}); "
            f"the {plan.title} plan's {human_minutes(minutes)} target resumes when the ticket leaves it"))
    paused = "" if not request.ticket.paused else ", plus the open time the clock was paused"
    return Verdict(due, SOURCE, lambda: (
        f"the {plan.title} plan guarantees {human_minutes(minutes)} of {name!r} opening hours, "
        f"counted from {human_instant(created.astimezone(calendar.timezone))}{paused}"))


def deadline(calendar: BusinessCalendar, ticket: Ticket, minutes: float) -> dt.datetime | None:
    """When ``minutes`` of open time have run on the ticket's clock, skipping paused periods.

    ``None`` while the clock is paused before the target is reached (`plugin.clock.deadline`).
    """
    return clock_deadline(calendar, ticket.created_at, minutes, ticket.paused)


@hookimpl(trylast=True)
def policydesk_escalation(request: Request, decision: Decision) -> Verdict[EscalationState] | None:
    due = decision.first_response_due
    if due is None or due.value is None:
        return None
    plan = request.plan_of(decision)
    assert decision.calendar is not None and plan.first_response_minutes is not None
    calendar = request.policies.calendars[decision.calendar.value]
    step_due = {}
    for step in plan.escalation:
        # The step at 100 % of the target is the deadline itself: don't count it twice.
        when = due.value if step.at_percent == 100 else deadline(
            calendar, request.ticket, plan.first_response_minutes * step.at_percent / 100)
        if when is not None:  # a step beyond a pause that has not ended is not due yet
            step_due[step.name] = when
    answered = request.ticket.first_response_at
    if answered is not None:
        met = "met" if answered <= due.value else "missed"
        state = EscalationState(None, step_due)
        return Verdict(state, SOURCE, lambda: (f"first response given {human_instant(answered.astimezone(calendar.timezone))}"
                                               f" ({met} the deadline); the clock is stopped"))
    reached = [step for step in plan.escalation if step.name in step_due and step_due[step.name] <= request.now]
    upcoming = [step for step in plan.escalation if step.name in step_due and step_due[step.name] > request.now]
    state = EscalationState(
        step=reached[-1] if reached else None,
        due=step_due,
        next_step=upcoming[0].name if upcoming else None,
        next_due=step_due[upcoming[0].name] if upcoming else None,
    )
    if not reached:
        return Verdict(state, SOURCE, "no escalation step reached yet")
    last = reached[-1]
    return Verdict(state, SOURCE, lambda: (f"step {last.name!r} ({last.at_percent:g}% of the target) was due "
                                           f"{human_instant(step_due[last.name])}"))


@hookimpl(trylast=True)
def policydesk_tags(request: Request, decision: Decision) -> list[Contribution]:
    escalation = decision.escalation
    if escalation is None or escalation.value.step is None:
        return []
    return [Contribution(tag, SOURCE, lambda: escalation.reason) for tag in escalation.value.step.tags]


@hookimpl(trylast=True)
def policydesk_notes(request: Request, decision: Decision) -> list[Contribution]:
    due = decision.first_response_due
    if due is None:
        return []
    if due.value is None:
        if request.plan_of(decision).first_response_minutes is None:
            return [Contribution("No guaranteed response time: " + due.reason + ".", SOURCE, due.reason)]
        return [Contribution("First-response clock paused: " + due.reason + ".", SOURCE, due.reason)]
    notes = [Contribution(f"First response due {human_instant(due.value)}: {due.reason}.", SOURCE, due.reason)]
    escalation = decision.escalation
    if escalation is not None and escalation.value.step is not None:
        step = escalation.value.step
        plan = request.plan_of(decision)
        roles = request.policies.roles
        who = []
        for target in step.notify:  # only the plan's roles: no technical account manager on Pro
            if target == OWNER:
                who.append("the ticket owner")
            elif target.startswith(GROUP_PREFIX):
                who.append(f"group {target[len(GROUP_PREFIX):]}")
            elif target in plan.account_manager_roles and target in roles:
                who.append(roles[target].title.lower())
        notify = ", ".join(who)
        text = f"Escalation {step.name!r}: {escalation.reason}" + (f"; notify {notify}." if notify else ".")
        notes.append(Contribution(text, SOURCE, escalation.reason))
    return notes
