"""Customised advice: a category of request, included in some plans, given within its hours.

From a plan that includes it (Enterprise in the seed), a request for advice is routed to
the advice group and the technical account manager within the advice hours (Mon-Fri
09:00-18:00), and waits for the next advice window outside them. From another plan, the
note tells the agent that advice is a service of the plans that include it.
"""

from __future__ import annotations

from plugin.hookspecs import hookimpl
from plugin.model import AdviceVerdict, Contribution, Decision, Request, Verdict
from plugin.tags import ADVICE_NOT_INCLUDED_TAG, ADVICE_QUEUED_TAG, ADVICE_TAG
from plugin.timefmt import human_instant

SOURCE = "policydesk.advice"


def _plans_with_advice(request: Request) -> str:
    titles = [p.title for p in sorted(request.policies.plans.values(), key=lambda p: p.rank) if p.customised_advice]
    return " and ".join(titles) if titles else "no plan"


@hookimpl(trylast=True)
def policydesk_advice(request: Request, decision: Decision) -> Verdict[AdviceVerdict] | None:
    rules = request.policies.scope.advice
    if rules is None or request.ticket.category != rules.category:
        return None
    plan = request.plan_of(decision)
    if not plan.customised_advice:
        return Verdict(AdviceVerdict(True, False), SOURCE,
                       f"customised advice is a service of {_plans_with_advice(request)}; "
                       f"the {plan.title} plan does not include it")
    calendar = request.policies.calendars[rules.calendar]
    if calendar.is_open(request.now):
        return Verdict(AdviceVerdict(True, True, True), SOURCE,
                       f"the {plan.title} plan includes customised advice, and the advice hours "
                       f"({rules.calendar!r} calendar) are open")
    opens = calendar.next_open(request.now)
    return Verdict(AdviceVerdict(True, True, False, opens), SOURCE,
                   f"the {plan.title} plan includes customised advice; outside the advice hours "
                   f"({rules.calendar!r} calendar) it waits for the next advice window, "
                   f"{human_instant(opens.astimezone(calendar.timezone))}")


@hookimpl(trylast=True)
def policydesk_tags(request: Request, decision: Decision) -> list[Contribution]:
    advice = decision.advice
    if advice is None or not advice.value.requested:
        return []
    tags = [Contribution(ADVICE_TAG, SOURCE, advice.reason)]
    if not advice.value.included:
        tags.append(Contribution(ADVICE_NOT_INCLUDED_TAG, SOURCE, advice.reason))
    elif advice.value.queued_until is not None:
        tags.append(Contribution(ADVICE_QUEUED_TAG, SOURCE, advice.reason))
    return tags


@hookimpl(trylast=True)
def policydesk_notes(request: Request, decision: Decision) -> list[Contribution]:
    advice = decision.advice
    if advice is None or not advice.value.requested:
        return []
    value = advice.value
    if not value.included:
        text = (f"Customised advice is a service of {_plans_with_advice(request)}: tell the customer it is not "
                f"part of the {request.plan_of(decision).title} plan.")
    elif value.queued_until is None:
        text = "Customised advice within the advice hours: " + advice.reason + "."
    else:
        text = "Customised advice queued: " + advice.reason + "."
    return [Contribution(text, SOURCE, advice.reason)]
