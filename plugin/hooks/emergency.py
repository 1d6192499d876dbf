"""Whether a request qualifies for 24/7 emergency handling.

Granted only when all hold: the customer asked for it, the plan includes 24/7 emergency
calls, the request is in scope, its category is an infrastructure problem and its language
is accepted. Otherwise the request is handled on its channel's normal hours and the note
says why, so the agent can tell the customer.
"""

from __future__ import annotations

from plugin.hookspecs import hookimpl
from plugin.model import Contribution, Decision, EmergencyVerdict, Request, Verdict

SOURCE = "policydesk.emergency"


@hookimpl(trylast=True)
def policydesk_emergency(request: Request, decision: Decision) -> Verdict[EmergencyVerdict]:
    ticket = request.ticket
    if not ticket.emergency_requested:
        verdict = EmergencyVerdict(False, False, ("no emergency handling was requested",))
        return Verdict(verdict, SOURCE, verdict.reasons[0])
    plan = request.plan_of(decision)
    rules = request.policies.scope
    granted: list[str] = []
    refused: list[str] = []

    def check(ok: bool, yes: str, no: str) -> None:
        (granted if ok else refused).append(yes if ok else no)

    check(plan.emergency_24_7, f"the {plan.title} plan includes 24/7 emergency calls",
          f"the {plan.title} plan does not include 24/7 emergency calls")
    in_scope = decision.scope is None or decision.scope.value.in_scope
    check(in_scope, "the request is within the scope of support", "the request is outside the scope of support")
    accepted_categories = ", ".join(sorted(rules.emergency_categories))
    check(ticket.category in rules.emergency_categories,
          f"category {ticket.category!r} is an infrastructure problem",
          f"category {ticket.category!r} is not one that qualifies for emergencies ({accepted_categories})")
    accepted_languages = ", ".join(sorted(rules.emergency_languages))
    check(ticket.language in rules.emergency_languages,
          f"language {ticket.language!r} is accepted for emergencies",
          f"emergencies are handled only in {accepted_languages}, not in {ticket.language!r}")
    eligible = not refused
    verdict = EmergencyVerdict(True, eligible, tuple(granted if eligible else refused))
    summary = "granted: " if eligible else "refused: "
    return Verdict(verdict, SOURCE, summary + "; ".join(verdict.reasons))


@hookimpl(trylast=True)
def policydesk_tags(request: Request, decision: Decision) -> list[Contribution]:
    emergency = decision.emergency
    if emergency is None or not emergency.value.eligible:
        return []
    return [Contribution("emergency", SOURCE, emergency.reason)]


@hookimpl(trylast=True)
def policydesk_notes(request: Request, decision: Decision) -> list[Contribution]:
    emergency = decision.emergency
    if emergency is None or not emergency.value.requested:
        return []
    if emergency.value.eligible:
        text = "24/7 emergency accepted: " + "; ".join(emergency.value.reasons) + "."
    else:
        text = (
            "24/7 emergency refused, handled as a normal request on normal hours. "
            "Tell the customer why: " + "; ".join(emergency.value.reasons) + "."
        )
    return [Contribution(text, SOURCE, emergency.reason)]
