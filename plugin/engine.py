"""The engine: run the hooks in order over one request and return a `Decision`.

Pure: no network, no database, no clock (``now`` is an argument). Integrations fill the
`Ticket` and `Organization`; the engine only decides.
"""

from __future__ import annotations

import datetime as dt

import pluggy

from plugin.manager import Hooks, get_plugin_manager
from plugin.model import Contribution, Decision, Organization, Policies, Request, Ticket, Verdict
from plugin.subscription import SubscriptionRules


class EngineError(Exception):
    """The hooks produced no usable answer for a field that every decision needs."""


class Engine:
    """Evaluates requests against one set of policies with one plugin manager."""

    def __init__(self, policies: Policies, pm: pluggy.PluginManager | None = None) -> None:
        self.policies = policies
        self.hooks = Hooks(pm if pm is not None else get_plugin_manager())
        self._vocabulary: tuple[Contribution, ...] | None = None
        self._subscriptions: SubscriptionRules | None = None

    def evaluate(self, ticket: Ticket, organization: Organization, now: dt.datetime) -> Decision:
        """Decide plan, language, eligibility, scope, emergency, calendar, deadline, managers,
        escalation, priority, advice, routing, notifications and tags for ``ticket`` at ``now``;
        the note (``decision.notes``) and reasons given as callables are written when first read.

        :raises EngineError: when no hook chose a plan or calendar, or chose an unknown one.
        :raises plugin.manager.PluginError: when a hook implementation raised (a ``notes``
            implementation: when the notes are read).
        """
        if now.tzinfo is None or ticket.created_at.tzinfo is None:
            raise ValueError("now and ticket.created_at must be timezone-aware")
        policies = self.policies
        request = Request(ticket, organization, now, policies)
        calls = self.hooks.calls()  # one snapshot of how to call each hook, for this decision

        def write_notes() -> tuple[Contribution, ...]:
            # Notes explain; most decisions are never explained (the adapter writes a note
            # only when the fingerprint changes), so they are written when first read.
            try:
                notes: tuple[Contribution, ...] = calls.notes(request, decision)
                return notes
            except Exception as error:  # the same error boundary, when it runs
                raise self.hooks.error("notes", error) from error

        # One Decision, filled field by field: each hook sees the fields decided before it
        # (later ones are still unset); nobody else holds it until it is returned.
        decision = Decision.blank(now, write_notes)
        fill = decision.__dict__
        stage = "plan"  # the hook being called, for the error boundary
        try:
            plan = _known(calls.plan(request, decision), policies.plans, "plan")
            fill["plan"] = plan
            stage = "language"
            fill["language"] = calls.language(request, decision)
            stage = "plan_eligibility"
            fill["eligibility"] = calls.plan_eligibility(policies, organization, plan.value)
            stage = "scope"
            fill["scope"] = calls.scope(request, decision)
            stage = "emergency"
            fill["emergency"] = calls.emergency(request, decision)
            stage = "calendar"
            fill["calendar"] = _known(calls.calendar(request, decision), policies.calendars, "calendar")
            stage = "first_response_due"
            fill["first_response_due"] = calls.first_response_due(request, decision)
            stage = "account_managers"
            fill["account_managers"] = calls.account_managers(request, decision)
            stage = "escalation"
            fill["escalation"] = calls.escalation(request, decision)
            stage = "priority"
            fill["priority"] = calls.priority(request, decision)
            stage = "advice"
            fill["advice"] = calls.advice(request, decision)
            stage = "routing"
            fill["routing"] = calls.routing(request, decision)
            stage = "notifications"
            fill["notifications"] = calls.notifications(request, decision)
            stage = "tags"
            fill["tags"] = calls.tags(request, decision)
            return decision
        except EngineError:
            raise
        except Exception as error:  # the one error boundary: say which plugin broke
            raise self.hooks.error(stage, error) from error

    def tag_vocabulary(self) -> frozenset[str]:
        """Every tag a decision under these policies may contribute (built-ins and site
        plugins): what `plugin.tags.tag_changes` may remove when it does not know what was
        applied earlier. See `tag_vocabulary_items` for each tag's source and reason."""
        return frozenset(c.value for c in self.tag_vocabulary_items())

    def tag_vocabulary_items(self) -> tuple[Contribution, ...]:
        """`plugin.hookspecs.policydesk_tag_vocabulary`'s answers, each with source and reason."""
        if self._vocabulary is None:
            self._vocabulary = self.hooks.tag_vocabulary(self.policies)
        return self._vocabulary

    @property
    def subscriptions(self) -> SubscriptionRules:
        """The subscription rules (eligibility, commitment, plan change) through this
        engine's plugin manager, for billing."""
        if self._subscriptions is None:
            self._subscriptions = SubscriptionRules(self.policies, self.hooks.pm)
        return self._subscriptions


def _known(verdict: Verdict[str] | None, known: object, what: str) -> Verdict[str]:
    if verdict is None:
        raise EngineError(f"no plugin chose a {what}")
    if verdict.value not in known:  # type: ignore[operator]
        raise EngineError(f"{verdict.source} chose unknown {what} {verdict.value!r}")
    return verdict


def evaluate(
    ticket: Ticket,
    organization: Organization,
    now: dt.datetime,
    policies: Policies,
    pm: pluggy.PluginManager | None = None,
) -> Decision:
    """One-off evaluation; build an `Engine` once to evaluate many requests."""
    return Engine(policies, pm).evaluate(ticket, organization, now)
