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

A collecting hook's answer is in the engine's stage order: the built-ins' contributions in
the order the engine decides (plan first), then the site plugins' in pluggy's order. Through
pluggy that is a stable sort by each contribution's source. Directly, the built-ins are
called in stage order and the site plugins after them, so nothing needs sorting: a
built-in contributes under its own plugin name (tests/plugin/test_manager.py checks it).
Only when a site plugin contributes under a built-in's name is the answer sorted as
pluggy's is.

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
            impls = None if monitored else _direct_impls(caller, name)
            if impls is not None:
                direct.add(name)
            setattr(self, name, _callable(caller, name, impls))
        self.direct = frozenset(direct)


def hook_names() -> tuple[str, ...]:
    """The short name of every hook, ``"plan"`` for ``policydesk_plan``, in the engine's order."""
    return tuple(name for name in HookCalls.__slots__ if name != "direct")


def _direct_impls(caller: pluggy.HookCaller, name: str) -> tuple[pluggy.HookImpl, ...] | None:
    """The implementations in pluggy's call order, or ``None`` when only pluggy's call is exact."""
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
    return tuple(reversed(impls))


def _callable(caller: pluggy.HookCaller, name: str, impls: tuple[pluggy.HookImpl, ...] | None,
              ) -> Callable[..., Any]:
    if impls is None:
        argnames = tuple(caller.spec.argnames) if caller.spec is not None else ()

        def through_pluggy(*args: Any) -> Any:
            return caller(**dict(zip(argnames, args)))

        if name not in COLLECTING:
            return through_pluggy

        def in_stage_order(*args: Any) -> tuple[Any, ...]:
            return _in_stage_order(through_pluggy(*args))

        return in_stage_order
    if name in COLLECTING:  # built-ins in stage order, then the site plugins in pluggy's order
        builtins = sorted((impl for impl in impls if _is_builtin(impl)), key=lambda impl: _STAGE[impl.plugin_name])
        return _gather(tuple(impl.function for impl in builtins),
                       tuple(impl.function for impl in impls if not _is_builtin(impl)))
    if len(impls) == 1:
        return impls[0].function  # the common case: one answer, nothing in between
    return _first(tuple(impl.function for impl in impls))


def _is_builtin(impl: pluggy.HookImpl) -> bool:
    return BUILTIN_PLUGINS.get(impl.plugin_name) is impl.plugin


def _first(functions: tuple[Callable[..., Any], ...]) -> Callable[..., Any]:
    def first(*args: Any) -> Any:
        for function in functions:
            result = function(*args)
            if result is not None:
                return result
        return None

    return first


def _gather(builtins: tuple[Callable[..., Any], ...], site: tuple[Callable[..., Any], ...],
            ) -> Callable[..., tuple[Any, ...]]:
    """Every non-empty answer, the built-ins' (called in stage order) before the site plugins'."""

    def gather(*args: Any) -> tuple[Any, ...]:
        items: list[Any] = []
        for function in builtins:
            result = function(*args)
            if result:
                items += result
        if not site:
            return tuple(items)
        theirs: list[Any] = []
        for function in site:
            result = function(*args)
            if result:
                theirs += result
        if any(_stage(item) < _LAST for item in theirs):  # a site plugin speaks for a built-in
            return _in_stage_order((theirs, items))  # as pluggy's order sorts: theirs came first
        return tuple(items + theirs)

    return gather


#: Built-in contributions read in the order the engine decides (plan first), whatever
#: order pluggy called them in; site plugins' contributions follow.
_STAGE = {name: index for index, name in enumerate(BUILTIN_PLUGINS)}


_LAST = len(_STAGE)


def _stage(contribution: Any, _get: Callable[[str, int], int] = _STAGE.get, _last: int = _LAST) -> int:
    return _get(contribution.source, _last)


def _in_stage_order(results: Iterable[Sequence[Any] | None]) -> tuple[Any, ...]:
    items = [item for result in results if result for item in result]
    if len(items) > 1:
        items.sort(key=_stage)
    return tuple(items)
