"""One callable per hook: the implementations called directly when that is exactly pluggy's call.

Only pluggy's public API is read: `pluggy.HookCaller.spec` (its ``argnames`` and
``opts``), `pluggy.HookCaller.get_hookimpls` and each `pluggy.HookImpl`'s ``function``,
``argnames``, ``kwargnames``, ``hookwrapper`` and ``wrapper``. A hook is called directly
when every implementation is a plain one (no wrapper, no default arguments) taking
exactly the spec's arguments, and no call monitoring is installed; its functions are
then called in pluggy's order — the reverse of ``get_hookimpls()``: tryfirst and
last-registered first — with pluggy's semantics: ``firstresult`` stops at the first
non-``None`` answer, a collecting hook gathers every non-``None`` answer. Any other hook
goes through pluggy's own call. tests/plugin/test_manager.py compares both ways.

The callables raise what the implementation raised; `plugin.manager.Hooks` and the engine
add which plugin it was (`PluginError`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import pluggy

from plugin.hooks import BUILTIN_PLUGINS

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

    Per = Callable[[Request, Decision], "Verdict[Any] | None"]

__all__ = ["COLLECTING", "HookCalls", "hook_names"]

#: Hooks that gather contributions from every implementation (the others are firstresult).
COLLECTING = frozenset({"tags", "notes", "notifications", "tag_vocabulary"})


class HookCalls:
    """A snapshot of how to call each hook: ``calls.plan(request, decision)``, arguments in
    the hookspec's order. Collecting hooks answer a tuple in the engine's stage order."""

    __slots__ = (
        "plan", "language", "plan_eligibility", "scope", "emergency", "calendar", "first_response_due",
        "account_managers", "escalation", "priority", "advice", "routing", "notifications", "tags", "notes",
        "tag_vocabulary", "commitment", "plan_change", "direct",
    )
    plan: Callable[[Request, Decision], Verdict[str] | None]
    language: Callable[[Request, Decision], Verdict[str | None] | None]
    plan_eligibility: Callable[[Policies, Organization, str], Verdict[bool] | None]
    scope: Callable[[Request, Decision], Verdict[ScopeVerdict] | None]
    emergency: Callable[[Request, Decision], Verdict[EmergencyVerdict] | None]
    calendar: Callable[[Request, Decision], Verdict[str] | None]
    first_response_due: Callable[[Request, Decision], Verdict[dt.datetime | None] | None]
    account_managers: Callable[[Request, Decision], Verdict[Mapping[str, str]] | None]
    escalation: Callable[[Request, Decision], Verdict[EscalationState] | None]
    priority: Callable[[Request, Decision], Verdict[str] | None]
    advice: Callable[[Request, Decision], Verdict[AdviceVerdict] | None]
    routing: Callable[[Request, Decision], Verdict[Routing] | None]
    notifications: Callable[[Request, Decision], tuple[Notification, ...]]
    tags: Callable[[Request, Decision], tuple[Contribution, ...]]
    notes: Callable[[Request, Decision], tuple[Contribution, ...]]
    tag_vocabulary: Callable[[Policies], tuple[Contribution, ...]]
    commitment: Callable[[Policies, Organization, str, dt.date, dt.date, int | None], Verdict[str | None] | None]
    plan_change: Callable[[Policies, Organization, Subscription, ChangeRequest], Verdict[Ruling] | None]
    #: The hooks (short names) called directly, for tests and benchmarks.
    direct: frozenset[str]

    def __init__(self, hook: pluggy.HookRelay, monitored: bool) -> None:
        direct = set()
        for name in hook_names():
            caller: pluggy.HookCaller = getattr(hook, "policydesk_" + name)
            functions = None if monitored else _direct_functions(caller, name)
            if functions is not None:
                direct.add(name)
            setattr(self, name, _callable(caller, name, functions))
        self.direct = frozenset(direct)


def hook_names() -> tuple[str, ...]:
    """The short name of every hook, ``"plan"`` for ``policydesk_plan``, in the engine's order."""
    return tuple(name for name in HookCalls.__slots__ if name != "direct")


def _direct_functions(caller: pluggy.HookCaller, name: str) -> tuple[Callable[..., Any], ...] | None:
    """The functions to call in pluggy's order, or ``None`` when only pluggy's call is exact."""
    spec = caller.spec
    if spec is None or caller.is_historic():
        return None
    if bool(spec.opts.get("firstresult", False)) == (name in COLLECTING):
        return None  # a hookspec of another kind than this module expects: pluggy knows
    argnames = tuple(spec.argnames)
    impls = caller.get_hookimpls()
    for impl in impls:
        if impl.hookwrapper or getattr(impl, "wrapper", False) or impl.kwargnames:
            return None
        if tuple(impl.argnames) != argnames:
            return None
    # pluggy calls the implementations last-registered (and tryfirst) first.
    return tuple(impl.function for impl in reversed(impls))


def _callable(caller: pluggy.HookCaller, name: str, functions: tuple[Callable[..., Any], ...] | None,
              ) -> Callable[..., Any]:
    if functions is None:
        argnames = tuple(caller.spec.argnames) if caller.spec is not None else ()

        def through_pluggy(*args: Any) -> Any:
            return caller(**dict(zip(argnames, args)))

        call: Callable[..., Any] = through_pluggy
    elif name not in COLLECTING:
        if len(functions) == 1:
            return functions[0]  # the common case: one answer, nothing in between
        call = _first(functions)
    else:
        call = _gather(functions)
    if name in COLLECTING:
        gather = call

        def in_stage_order(*args: Any) -> tuple[Any, ...]:
            return _in_stage_order(gather(*args))

        return in_stage_order
    return call


def _first(functions: tuple[Callable[..., Any], ...]) -> Callable[..., Any]:
    def first(*args: Any) -> Any:
        for function in functions:
            result = function(*args)
            if result is not None:
                return result
        return None

    return first


def _gather(functions: tuple[Callable[..., Any], ...]) -> Callable[..., list[Any]]:
    def gather(*args: Any) -> list[Any]:
        results = []
        for function in functions:
            result = function(*args)
            if result is not None:
                results.append(result)
        return results

    return gather


#: Built-in contributions read in the order the engine decides (plan first), whatever
#: order pluggy called them in; site plugins' contributions follow.
_STAGE = {name: index for index, name in enumerate(BUILTIN_PLUGINS)}


def _stage(contribution: Any, _get: Callable[[str, int], int] = _STAGE.get, _last: int = len(_STAGE)) -> int:
    return _get(contribution.source, _last)


def _in_stage_order(results: Iterable[Sequence[Any] | None]) -> tuple[Any, ...]:
    items = [item for result in results if result for item in result]
    if len(items) > 1:
        items.sort(key=_stage)
    return tuple(items)
