"""The extension contract: every hook policydesk calls, in the order the engine calls them.

Each hook receives the `Request` (ticket, organization, instant, policies) and the
`Decision` built so far by the earlier hooks, and answers for one field of the Decision.

- Single-answer hooks are ``firstresult``: the first implementation that returns a
  non-``None`` `~plugin.model.Verdict` wins; ``None`` means "no opinion, ask the next".
  The built-in implementations are registered ``trylast``, so a site plugin answering the
  same hook overrides them without unregistering anything.
- Collecting hooks (tags, notes) gather a list of `~plugin.model.Contribution` from every
  implementation.

Every answer carries its own ``source`` and ``reason``: pluggy does not say which
implementation produced a result, and `policydesk explain` prints exactly these.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import pluggy

if TYPE_CHECKING:
    from plugin.model import Request
    from plugin.model import (
        Contribution,
        Decision,
        EmergencyVerdict,
        EscalationState,
        ScopeVerdict,
        Verdict,
    )
    import datetime as dt
    from typing import Mapping

PROJECT = "policydesk"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec(firstresult=True)
def policydesk_plan(request: Request, decision: Decision) -> Verdict[str] | None:
    """Choose the support plan that applies to the request.

    :param request: The ticket, its organization, the instant and the policies.
    :param decision: The decision so far (empty at this point).
    :returns: A verdict naming a plan of ``request.policies.plans``, or ``None`` for no
        opinion. Stops at first non-None result.
    """


@hookspec(firstresult=True)
def policydesk_scope(request: Request, decision: Decision) -> Verdict[ScopeVerdict] | None:
    """Decide whether the request is within the scope of support.

    :param request: The ticket, its organization, the instant and the policies.
    :param decision: The decision so far (``plan`` is set).
    :returns: A verdict whose value says in or out of scope and, when out, the referral
        text for the customer; ``None`` for no opinion. Stops at first non-None result.
    """


@hookspec(firstresult=True)
def policydesk_emergency(
    request: Request, decision: Decision
) -> Verdict[EmergencyVerdict] | None:
    """Decide whether the request qualifies for 24/7 emergency handling.

    :param request: The ticket, its organization, the instant and the policies.
    :param decision: The decision so far (``plan`` and ``scope`` are set).
    :returns: A verdict whose value says whether emergency handling was requested, whether
        it is granted, and every reason; ``None`` for no opinion. Stops at
        first non-None result.
    """


@hookspec(firstresult=True)
def policydesk_calendar(request: Request, decision: Decision) -> Verdict[str] | None:
    """Choose the calendar whose opening hours count for the first response.

    :param request: The ticket, its organization, the instant and the policies.
    :param decision: The decision so far (``plan``, ``scope`` and ``emergency`` are set).
    :returns: A verdict naming a calendar of ``request.policies.calendars``, or ``None``
        for no opinion. Stops at first non-None result.
    """


@hookspec(firstresult=True)
def policydesk_first_response_due(
    request: Request, decision: Decision
) -> Verdict[dt.datetime | None] | None:
    """Compute when the first response is due.

    :param request: The ticket, its organization, the instant and the policies.
    :param decision: The decision so far (``plan`` and ``calendar`` are set).
    :returns: A verdict whose value is the due instant, or whose value is ``None`` when the
        plan guarantees no response time; ``None`` for no opinion. Stops at
        first non-None result.
    """


@hookspec(firstresult=True)
def policydesk_account_managers(
    request: Request, decision: Decision
) -> Verdict[Mapping[str, str]] | None:
    """Say which account-manager roles the plan includes and who fills each.

    :param request: The ticket, its organization, the instant and the policies.
    :param decision: The decision so far (``plan`` is set).
    :returns: A verdict whose value maps role name to the person filling it (roles the
        organization has not filled are left out and explained in the reason); ``None``
        for no opinion. Stops at first non-None result.
    """


@hookspec(firstresult=True)
def policydesk_escalation(
    request: Request, decision: Decision
) -> Verdict[EscalationState] | None:
    """Place the ticket on its escalation ladder at ``request.now``.

    :param request: The ticket, its organization, the instant and the policies.
    :param decision: The decision so far (``first_response_due`` is set).
    :returns: A verdict whose value gives the step reached, when each step is due and the
        next one; ``None`` for no opinion (for example when no deadline applies). Stops at
        first non-None result.
    """


@hookspec(firstresult=True)
def policydesk_priority(request: Request, decision: Decision) -> Verdict[str] | None:
    """Choose the ticket's priority (one of Zammad's priority names, e.g. ``"3 high"``).

    :param request: The ticket, its organization, the instant and the policies.
    :param decision: The decision so far (everything but tags and notes is set).
    :returns: A verdict naming the priority, or ``None`` for no opinion. Stops at
        first non-None result.
    """


@hookspec
def policydesk_tags(request: Request, decision: Decision) -> Sequence[Contribution] | None:
    """Contribute tags for the ticket, such as ``plan:pro`` or ``sla:warning``.

    :param request: The ticket, its organization, the instant and the policies.
    :param decision: The decision so far (everything but tags and notes is set).
    :returns: Tags, each with its source and reason; every implementation's are collected.
    """


@hookspec
def policydesk_notes(request: Request, decision: Decision) -> Sequence[Contribution] | None:
    """Contribute sentences to the internal note that tells agents why.

    :param request: The ticket, its organization, the instant and the policies.
    :param decision: The decision so far (everything but notes is set).
    :returns: Sentences, each with its source and reason; every implementation's are
        collected, the built-ins' last.
    """
