"""Who hears of the escalation step reached, and when (see `plugin.notification`).

A step notifies roles (only those the plan includes: no technical account manager on Pro),
groups (``group:<name>``) and the ticket's owner (``owner``). Each notification carries the
step's stable id, so the scheduler finds what to send by id, never by note text.
"""

from __future__ import annotations

from collections.abc import Callable

from plugin.hookspecs import hookimpl
from plugin.model import (
    GROUP_PREFIX,
    OWNER,
    Decision,
    EscalationStep,
    Notification,
    Plan,
    Request,
)
from plugin.notification import delivery

SOURCE = "policydesk.notification"


def recipients(plan: Plan, step: EscalationStep) -> list[tuple[str, str]]:
    """(kind, recipient) of everyone ``step`` notifies on ``plan``: its roles the plan
    includes, its groups, the owner."""
    out = []
    for target in step.notify:
        if target == OWNER:
            out.append(("owner", OWNER))
        elif target.startswith(GROUP_PREFIX):
            out.append(("group", target[len(GROUP_PREFIX):]))
        elif target in plan.account_manager_roles:
            out.append(("role", target))
    return out


@hookimpl(trylast=True)
def policydesk_notifications(request: Request, decision: Decision) -> list[Notification]:
    escalation = decision.escalation
    if escalation is None or escalation.value.step is None:
        return []
    step = escalation.value.step
    plan = request.plan_of(decision)
    policies = request.policies
    emergency = decision.emergency
    urgent = None
    if emergency is not None and emergency.value.eligible and "emergency" in policies.urgent:
        urgent = "a granted 24/7 emergency"
    elif step.id in policies.urgent:
        urgent = f"escalation step {step.name!r}"
    managers = decision.account_managers.value if decision.account_managers is not None else {}
    ticket_id = request.ticket.id

    def text() -> str:
        return f"Escalation {step.name!r} on ticket {ticket_id}: {escalation.reason}."

    out = []
    for kind, recipient in recipients(plan, step):
        person = managers.get(recipient) if kind == "role" else request.ticket.owner if kind == "owner" else None
        immediate, at, why = delivery(policies, kind, recipient, request.now, urgent)
        if kind != "group" and person is None:
            why = _nobody(why)
        out.append(Notification(step.id, kind, recipient, person, immediate, at, text, SOURCE, why))
    return out


def _nobody(why: str | Callable[[], str]) -> Callable[[], str]:
    return lambda: f"nobody fills it for this ticket, so nobody is told ({why if isinstance(why, str) else why()})"
