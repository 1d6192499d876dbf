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
        escalation, priority, advice, routing, notifications, tags and note for ``ticket`` at ``now``.

        :raises EngineError: when no hook chose a plan or calendar, or chose an unknown one.
        :raises plugin.manager.PluginError: when a hook implementation raised.
        """
        if now.tzinfo is None or ticket.created_at.tzinfo is None:
            raise ValueError("now and ticket.created_at must be timezone-aware")
        policies = self.policies
        request = Request(ticket, organization, now, policies)
        hooks = self.hooks
        decision = Decision(now=now)
        # Each hook sees a new immutable Decision: a copy of the last with one field set
        # (what ``decision.with_(field=value)`` returns, without its keyword handling).
        plan = _known(hooks.plan(request, decision), policies.plans, "plan")
        decision = _set(decision, "plan", plan)
        decision = _set(decision, "language", hooks.language(request, decision))
        decision = _set(decision, "eligibility", hooks.plan_eligibility(policies, organization, plan.value))
        decision = _set(decision, "scope", hooks.scope(request, decision))
        decision = _set(decision, "emergency", hooks.emergency(request, decision))
        decision = _set(
            decision, "calendar", _known(hooks.calendar(request, decision), policies.calendars, "calendar")
        )
        decision = _set(decision, "first_response_due", hooks.first_response_due(request, decision))
        decision = _set(decision, "account_managers", hooks.account_managers(request, decision))
        decision = _set(decision, "escalation", hooks.escalation(request, decision))
        decision = _set(decision, "priority", hooks.priority(request, decision))
        decision = _set(decision, "advice", hooks.advice(request, decision))
        decision = _set(decision, "routing", hooks.routing(request, decision))
        decision = _set(decision, "notifications", hooks.notifications(request, decision))
        decision = _set(decision, "tags", hooks.tags(request, decision))
        return _set(decision, "notes", hooks.notes(request, decision))

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


_new_object = object.__new__


def _set(decision: Decision, name: str, value: object) -> Decision:
    new = _new_object(Decision)
    attrs = new.__dict__
    attrs.update(decision.__dict__)
    attrs[name] = value
    return new


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
