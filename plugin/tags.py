"""The tag vocabulary: the tags policydesk's decisions put on tickets, and how to change them.

Rule: a tag the decision contributed earlier and no longer wants is removed; a tag nobody
contributed is never touched (an agent's tag stays, even one that looks like ours). The
adapter keeps the tags it applied for each ticket and passes them to `tag_changes`. For a
ticket from before it kept track (``previously_applied`` unknown), the *vocabulary* says
which tags are policydesk's: every tag a built-in hook or a site plugin may contribute
(`plugin.hookspecs.policydesk_tag_vocabulary`; the engine's `Engine.tag_vocabulary`).

sync writes Zammad SLAs whose conditions select tickets by these same tags: it builds
them with `plan_tag`, `hours_tag` and `EMERGENCY_TAG`, or takes them all from `sla_tags`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass

from plugin.model import Policies

#: A granted 24/7 emergency (SLAs select it).
EMERGENCY_TAG = "emergency"
#: A requested emergency that was refused (the note has the reply for the customer).
EMERGENCY_REFUSED_TAG = "emergency:refused"
#: The request is outside the scope of support at every level.
OUT_OF_SCOPE_TAG = "out-of-scope"
#: The ticket's organization is a partner.
PARTNER_TAG = "partner"
#: A request for customised advice; ``advice:queued`` outside the advice hours,
#: ``advice:not-included`` from a plan without it.
ADVICE_TAG = "advice"
ADVICE_QUEUED_TAG = "advice:queued"
ADVICE_NOT_INCLUDED_TAG = "advice:not-included"
#: The organization may not be on its plan (e.g. a partner on a plan not open to partners).
PLAN_INELIGIBLE_TAG = "plan:ineligible"


def plan_tag(plan: str) -> str:
    """``plan:<name>``: the plan that applies (SLAs select by it)."""
    return f"plan:{plan}"


def hours_tag(calendar: str) -> str:
    """``hours:<calendar>``: whose opening hours count (SLAs select by it)."""
    return f"hours:{calendar}"


def builtin_vocabulary(policies: Policies) -> dict[str, str]:
    """Every tag the built-in hooks may contribute under ``policies`` -> why it is ours."""
    tags: dict[str, str] = {}
    for name in policies.plans:
        tags[plan_tag(name)] = "the plan that applies"
    for name in policies.calendars:
        tags[hours_tag(name)] = "the calendar whose hours count"
    for plan in policies.plans.values():
        for step in plan.escalation:
            for tag in step.tags:
                tags.setdefault(tag, f"escalation step {step.name!r}")
    for tag, why in ((EMERGENCY_TAG, "a granted 24/7 emergency"),
                     (EMERGENCY_REFUSED_TAG, "a refused 24/7 emergency"),
                     (OUT_OF_SCOPE_TAG, "a request outside the scope of support"),
                     (PARTNER_TAG, "the organization is a partner"),
                     (PLAN_INELIGIBLE_TAG, "the organization may not be on its plan"),
                     (ADVICE_TAG, "a request for customised advice"),
                     (ADVICE_QUEUED_TAG, "customised advice waiting for the advice hours"),
                     (ADVICE_NOT_INCLUDED_TAG, "customised advice asked from a plan without it")):
        tags.setdefault(tag, why)
    return tags


@dataclass(frozen=True)
class SlaTags:
    """The tags Zammad SLA conditions select on, as the decisions write them."""

    #: Plan name -> its tag.
    plans: Mapping[str, str]
    #: Calendar name -> its tag.
    calendars: Mapping[str, str]
    emergency: str = EMERGENCY_TAG


def sla_tags(policies: Policies) -> SlaTags:
    """The plan and hours tags of every plan and calendar, and the emergency tag (for sync)."""
    return SlaTags({name: plan_tag(name) for name in policies.plans},
                   {name: hours_tag(name) for name in policies.calendars})


def tag_changes(
    previously_applied: AbstractSet[str] | None,
    current: AbstractSet[str],
    wanted: Iterable[str],
    vocabulary: AbstractSet[str] = frozenset(),
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(tags to add, tags to remove), both sorted.

    :param previously_applied: The tags policydesk applied to the ticket last time (what its
        decisions contributed), or ``None`` when unknown.
    :param current: The ticket's tags now.
    :param wanted: The tags the decision contributes now (``Decision.tag_names``).
    :param vocabulary: policydesk's tags (`Engine.tag_vocabulary`); consulted only when
        ``previously_applied`` is ``None``.
    :returns: Tags to add (wanted, not there) and tags to remove (there, not wanted, and
        contributed earlier - or, when that is unknown, in the vocabulary). A tag nobody
        contributed is never removed.
    """
    wanted_set = frozenset(wanted)
    ours = previously_applied if previously_applied is not None else vocabulary
    add = tuple(sorted(wanted_set - current))
    remove = tuple(sorted(t for t in current if t not in wanted_set and t in ours))
    return add, remove
