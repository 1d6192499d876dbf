"""The subscription rules billing applies, from the engine (`plugin.subscription`).

Every contract decision is made in ``plugin/`` through a hook (eligibility, commitment,
plan change), so a site plugin can override it and ``explain`` can show it; this module
only re-exports the pure names billing and its tests use, and `rules_for` caches one
`SubscriptionRules` per policy object (a reload gets a new one).
"""

from __future__ import annotations

from typing import Any

from plugin.subscription import (
    ChangeRequest,
    Current,
    Ruling,
    Subscription,
    SubscriptionRules,
    add_months,
    commitment_end,
    commitment_problem,
    current_subscription,
    decide,
    plan_eligibility,
)

__all__ = [
    "ChangeRequest",
    "Current",
    "Ruling",
    "Subscription",
    "SubscriptionRules",
    "add_months",
    "commitment_end",
    "commitment_problem",
    "current_subscription",
    "decide",
    "plan_eligibility",
    "rules_for",
]

_CACHE: dict[int, tuple[Any, SubscriptionRules]] = {}


def rules_for(policies: Any) -> SubscriptionRules:
    """The hooks for ``policies`` (built once per policy object: plugin loading is not free)."""
    cached = _CACHE.get(id(policies))
    if cached is not None and cached[0] is policies:
        return cached[1]
    rules = SubscriptionRules(policies)
    _CACHE.clear()  # one policy set is in force at a time
    _CACHE[id(policies)] = (policies, rules)
    return rules
