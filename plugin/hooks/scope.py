"""Whether a request is within the scope of support, and where to refer it if not."""

from __future__ import annotations

from plugin.hooks.memo import PolicyCache
from plugin.hookspecs import hookimpl
from plugin.model import Contribution, Decision, Request, ScopeVerdict, Verdict
from plugin.tags import OUT_OF_SCOPE_TAG

SOURCE = "policydesk.scope"


_CACHE = PolicyCache()


@hookimpl(trylast=True)
def policydesk_scope(request: Request, decision: Decision) -> Verdict[ScopeVerdict]:
    return _CACHE.get(request.policies, request.ticket.category, _scope, request)


def _scope(request: Request) -> Verdict[ScopeVerdict]:
    category = request.ticket.category
    rules = request.policies.scope
    if category is None:
        return Verdict(ScopeVerdict(True, None), SOURCE, "no category set; treated as in scope")
    out = rules.out_of_scope.get(category)
    if out is not None:
        return Verdict(
            ScopeVerdict(False, category, out.referral),
            SOURCE,
            f"category {category!r} is outside the scope of support at every level",
        )
    if category not in rules.categories:
        return Verdict(
            ScopeVerdict(True, category),
            SOURCE,
            f"category {category!r} is not in the policy's list; treated as in scope",
        )
    return Verdict(ScopeVerdict(True, category), SOURCE, f"category {category!r} is within the scope of support")


@hookimpl(trylast=True)
def policydesk_tags(request: Request, decision: Decision) -> list[Contribution]:
    scope = decision.scope
    if scope is None or scope.value.in_scope:
        return []
    return [Contribution(OUT_OF_SCOPE_TAG, SOURCE, scope.reason)]


@hookimpl(trylast=True)
def policydesk_notes(request: Request, decision: Decision) -> list[Contribution]:
    scope = decision.scope
    if scope is None or scope.value.in_scope:
        return []
    return [
        Contribution(
            f"Out of scope ({scope.value.category}): refer the customer to partners. "
            f"Suggested reply: {scope.value.referral}",
            SOURCE,
            scope.reason,
        )
    ]
