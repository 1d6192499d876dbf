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

from collections.abc import Sequence
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    import datetime as dt
    from collections.abc import Mapping

    from plugin.model import (
        AdviceVerdict,
        Contribution,
        Decision,
        EmergencyVerdict,
        EscalationState,
        Notification,
        Organization,
        Policies,
        Request,
        Routing,
        ScopeVerdict,
        Verdict,
    )
    from plugin.subscription import ChangeRequest, Ruling, Subscription

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
def policydesk_language(request: Request, decision: Decision) -> Verdict[str | None] | None:
    """Say in which language the customer asked, and where that was read.

    :param request: The ticket, its organization, the instant and the policies.
        ``request.ticket.language_source`` says where the ticket's language came from
        (see `plugin.language.request_language`).
    :param decision: The decision so far (``plan`` is set).
    :returns: A verdict whose value is an ISO 639-1 code (``None`` when unknown) and whose
        reason names its source; ``None`` for no opinion. Stops at first non-None result.
    """


@hookspec(firstresult=True)
def policydesk_plan_eligibility(
    policies: Policies, organization: Organization, plan: str
) -> Verdict[bool] | None:
    """Decide whether ``organization`` may subscribe (or be on) ``plan``.

    Called by the engine for every ticket (the answer shows in ``explain``) and by billing
    before any plan change (an ineligible plan is refused with 409 and the reason).

    :param policies: The policies (``plan.open_to_partners`` in the built-in).
    :param organization: The organization (``partner`` flag, name, id).
    :param plan: A plan name of ``policies.plans``.
    :returns: A verdict whose value says eligible or not; ``None`` for no opinion. Stops at
        first non-None result.
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

    A priority policydesk raised (``request.ticket.applied_priority``) returns to the plan's
    when what raised it no longer holds; a priority an agent set is kept.

    :param request: The ticket, its organization, the instant and the policies.
    :param decision: The decision so far (``escalation`` and everything before it is set).
    :returns: A verdict naming the priority, or ``None`` for no opinion. Stops at
        first non-None result.
    """


@hookspec(firstresult=True)
def policydesk_advice(request: Request, decision: Decision) -> Verdict[AdviceVerdict] | None:
    """Decide how a request for customised advice is handled.

    :param request: The ticket, its organization, the instant and the policies.
    :param decision: The decision so far (``priority`` and everything before it is set).
    :returns: A verdict whose value says whether advice was requested, whether the plan
        includes it, whether the advice hours are open and, outside them, until when the
        request waits; ``None`` for no opinion. Stops at first non-None result.
    """


@hookspec(firstresult=True)
def policydesk_routing(request: Request, decision: Decision) -> Verdict[Routing] | None:
    """Choose the group and owner the ticket should have.

    The adapter writes the routing once, and again only when the decided routing changes:
    an agent's later reassignment is respected.

    :param request: The ticket, its organization, the instant and the policies.
    :param decision: The decision so far (``advice`` and everything before it is set).
    :returns: A verdict whose value names a group and/or owner (``None`` parts leave the
        ticket's as they are); ``None`` for no opinion. Stops at first non-None result.
    """


@hookspec
def policydesk_notifications(
    request: Request, decision: Decision
) -> Sequence[Notification] | None:
    """Say who hears of the escalation step reached, and when (now, or at their digest).

    :param request: The ticket, its organization, the instant and the policies.
    :param decision: The decision so far (``routing`` and everything before it is set).
    :returns: Notifications, each with the step's id, the recipient, when it is delivered,
        its text, source and reason; every implementation's are collected.
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


# --------------------------------------------------------------------------- outside a ticket


@hookspec
def policydesk_tag_vocabulary(policies: Policies) -> Sequence[Contribution] | None:
    """Name every tag your decisions may contribute, so policydesk can remove it later.

    A tag that a decision contributed earlier and no longer wants is removed; a tag nobody
    contributed is never touched. Where the adapter does not know what it applied earlier
    (a ticket from before it kept track), the vocabulary says which tags are policydesk's.

    :param policies: The policies (plan names, calendars, ladders).
    :returns: Tags, each with its source and reason; every implementation's are collected.
    """


@hookspec(firstresult=True)
def policydesk_commitment(
    policies: Policies, organization: Organization, plan: str, start: dt.date, end: dt.date, months: int | None
) -> Verdict[str | None] | None:
    """Check a commitment's length for ``plan`` (the seed: at least 6 months on a paid plan).

    :param policies: The policies (``plan.minimum_commitment_months``).
    :param organization: The organization subscribing.
    :param plan: A plan name of ``policies.plans``.
    :param start: The subscription's first day.
    :param end: The commitment's last day.
    :param months: The commitment as a number of months, when the event gave it so.
    :returns: A verdict whose value is the problem (one sentence), or whose value is
        ``None`` when the commitment is long enough; ``None`` for no opinion. Stops at
        first non-None result.
    """


@hookspec(firstresult=True)
def policydesk_plan_change(
    policies: Policies, organization: Organization, current: Subscription, change: ChangeRequest
) -> Verdict[Ruling] | None:
    """Rule on a billing event: an upgrade, a downgrade, a cancellation, a renewal.

    :param policies: The policies (``plan_changes``, plan ranks, minimum commitments).
    :param organization: The organization as Zammad has it.
    :param current: Its subscription now (see `plugin.subscription.current_subscription`).
    :param change: What the billing system asks for.
    :returns: A verdict whose value is the `~plugin.subscription.Ruling` (allowed or not,
        the resulting plan and commitment, when it takes effect); ``None`` for no opinion.
        Stops at first non-None result.
    """
