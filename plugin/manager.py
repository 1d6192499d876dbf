"""Building the plugin manager, and the typed facade the engine calls hooks through."""

from __future__ import annotations

import os
import traceback
from importlib import metadata
from typing import TYPE_CHECKING, Any, Iterable, Sequence

import pluggy

from plugin import hookspecs
from plugin.errors import UserError
from plugin.hooks import BUILTIN_PLUGINS

if TYPE_CHECKING:
    import datetime as dt

    from plugin.model import Contribution, Decision, Notification, Organization, Policies, Request, Verdict
    from plugin.subscription import ChangeRequest, Ruling, Subscription

#: Comma-separated plugin names to block (built-ins or entry points), e.g. "policydesk.scope".
BLOCK_ENV = "POLICYDESK_BLOCK_PLUGINS"


class PluginError(Exception):
    """A hook implementation raised; names the hook and the plugin it came from."""

    def __init__(self, hook: str, plugin: str, error: BaseException) -> None:
        super().__init__(f"plugin {plugin!r} failed in hook {hook}: {type(error).__name__}: {error}")
        self.hook = hook
        self.plugin = plugin
        self.error = error


class PluginLoadError(UserError):
    """An installed plugin cannot be imported or registered: names the plugin and why."""


def get_plugin_manager(
    load_entrypoints: bool = True, blocked: Iterable[str] = ()
) -> pluggy.PluginManager:
    """Return a new plugin manager with the built-in hooks and installed plugins registered.

    :param load_entrypoints: Also load third-party plugins from the ``policydesk``
        entry-point group.
    :param blocked: Plugin names not to register (added to those in ``POLICYDESK_BLOCK_PLUGINS``).
    :raises PluginLoadError: when an installed plugin fails to import or does not fit the hookspecs.
    """
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    names = set(blocked) | {n.strip() for n in os.environ.get(BLOCK_ENV, "").split(",") if n.strip()}
    for name in names:
        pm.set_blocked(name)
    for name, module in BUILTIN_PLUGINS.items():
        if not pm.is_blocked(name):
            pm.register(module, name=name)
    if load_entrypoints:
        _import_entry_points(pm)
    try:
        if load_entrypoints:
            pm.load_setuptools_entrypoints(hookspecs.PROJECT)
        pm.check_pending()
    except pluggy.PluginValidationError as error:
        raise PluginLoadError(f"plugin {pm.get_name(error.plugin) or error.plugin!r} does not fit policydesk's "
                              f"hooks: {error}") from error
    return pm


def _import_entry_points(pm: pluggy.PluginManager) -> None:
    """Import every ``policydesk`` entry point first, so one that fails is named (pluggy's own
    loader, which then registers them from the module cache, would not say which)."""
    for dist in metadata.distributions():
        for entry_point in dist.entry_points:
            if entry_point.group != hookspecs.PROJECT or pm.is_blocked(entry_point.name):
                continue
            try:
                entry_point.load()
            except Exception as error:
                raise PluginLoadError(
                    f"plugin {entry_point.name!r} ({entry_point.value}, installed by {dist.metadata['Name']}) "
                    f"cannot be imported: {type(error).__name__}: {error}"
                ) from error


class Hooks:
    """Calls each hook with keyword arguments and turns a plugin's exception into `PluginError`.

    The engine goes through this class only, never through ``pm.hook`` directly.

    Speed: the `pluggy.HookCaller` of each hook is looked up once and kept (pluggy updates
    a caller in place when plugins register or unregister). When every implementation of a
    hook is a plain one (no wrappers) taking ``(request, decision)`` and no tracing or call
    monitoring is installed, their functions are called directly, in pluggy's order and
    with pluggy's semantics (``firstresult`` stops at the first non-``None``; collecting
    hooks gather every non-``None``). The list of functions is a snapshot of the caller's
    implementations, taken again whenever they change; anything else goes through pluggy.
    """

    def __init__(self, pm: pluggy.PluginManager) -> None:
        self.pm = pm
        self._dispatch: dict[str, _Dispatch] = {}

    def _call(self, name: str, request: Request, decision: Decision) -> Any:
        dispatch = self._dispatch.get(name)
        if dispatch is None:
            dispatch = self._dispatch[name] = _Dispatch(getattr(self.pm.hook, name))
        caller = dispatch.caller
        if dispatch.snapshot != caller._hookimpls:
            dispatch.refresh()
        functions = dispatch.functions
        try:
            if functions is None or getattr(self.pm, "_inner_hookexec", None) is not _MULTICALL:
                return caller(request=request, decision=decision)
            if dispatch.firstresult:
                for function in functions:
                    result = function(request, decision)
                    if result is not None:
                        return result
                return None
            results = []
            for function in functions:
                result = function(request, decision)
                if result is not None:
                    results.append(result)
            return results
        except Exception as error:  # the one error boundary: say which plugin broke
            raise PluginError(name, self._culprit(caller, error), error) from error

    def _call_with(self, name: str, **kwargs: Any) -> Any:
        """A hook with other arguments than (request, decision): through pluggy (rare calls)."""
        caller = getattr(self.pm.hook, name)
        try:
            return caller(**kwargs)
        except Exception as error:  # the same error boundary as `_call`
            raise PluginError(name, self._culprit(caller, error), error) from error

    def _culprit(self, caller: pluggy.HookCaller, error: BaseException) -> str:
        codes = {impl.function.__code__: impl.plugin_name for impl in caller.get_hookimpls()}
        for frame, _ in traceback.walk_tb(error.__traceback__):
            if frame.f_code in codes:
                return codes[frame.f_code]
        return "<unknown>"

    def plan(self, request: Request, decision: Decision) -> Verdict[Any] | None:
        return self._call("policydesk_plan", request, decision)

    def scope(self, request: Request, decision: Decision) -> Verdict[Any] | None:
        return self._call("policydesk_scope", request, decision)

    def emergency(self, request: Request, decision: Decision) -> Verdict[Any] | None:
        return self._call("policydesk_emergency", request, decision)

    def calendar(self, request: Request, decision: Decision) -> Verdict[Any] | None:
        return self._call("policydesk_calendar", request, decision)

    def first_response_due(self, request: Request, decision: Decision) -> Verdict[Any] | None:
        return self._call("policydesk_first_response_due", request, decision)

    def account_managers(self, request: Request, decision: Decision) -> Verdict[Any] | None:
        return self._call("policydesk_account_managers", request, decision)

    def escalation(self, request: Request, decision: Decision) -> Verdict[Any] | None:
        return self._call("policydesk_escalation", request, decision)

    def priority(self, request: Request, decision: Decision) -> Verdict[Any] | None:
        return self._call("policydesk_priority", request, decision)

    def language(self, request: Request, decision: Decision) -> Verdict[Any] | None:
        return self._call("policydesk_language", request, decision)

    def advice(self, request: Request, decision: Decision) -> Verdict[Any] | None:
        return self._call("policydesk_advice", request, decision)

    def routing(self, request: Request, decision: Decision) -> Verdict[Any] | None:
        return self._call("policydesk_routing", request, decision)

    def notifications(self, request: Request, decision: Decision) -> tuple[Notification, ...]:
        return _in_stage_order(self._call("policydesk_notifications", request, decision))

    def plan_eligibility(self, policies: Policies, organization: Organization, plan: str) -> Verdict[bool] | None:
        return self._call_with("policydesk_plan_eligibility", policies=policies, organization=organization, plan=plan)

    def commitment(self, policies: Policies, organization: Organization, plan: str, start: dt.date, end: dt.date,
                   months: int | None) -> Verdict[str | None] | None:
        return self._call_with("policydesk_commitment", policies=policies, organization=organization, plan=plan,
                               start=start, end=end, months=months)

    def plan_change(self, policies: Policies, organization: Organization, current: Subscription,
                    change: ChangeRequest) -> Verdict[Ruling] | None:
        return self._call_with("policydesk_plan_change", policies=policies, organization=organization,
                               current=current, change=change)

    def tag_vocabulary(self, policies: Policies) -> tuple[Contribution, ...]:
        return _in_stage_order(self._call_with("policydesk_tag_vocabulary", policies=policies))

    def tags(self, request: Request, decision: Decision) -> tuple[Contribution, ...]:
        return _in_stage_order(self._call("policydesk_tags", request, decision))

    def notes(self, request: Request, decision: Decision) -> tuple[Contribution, ...]:
        return _in_stage_order(self._call("policydesk_notes", request, decision))


#: pluggy's own executor; the direct path is taken only while the manager still uses it
#: (``enable_tracing`` and ``add_hookcall_monitoring`` replace it).
_MULTICALL = getattr(pluggy._manager, "_multicall", None)  # type: ignore[attr-defined]


class _Dispatch:
    """One hook's caller and, when they can be called directly, its implementations' functions."""

    __slots__ = ("caller", "snapshot", "functions", "firstresult")

    def __init__(self, caller: pluggy.HookCaller) -> None:
        self.caller = caller
        spec = caller.spec
        self.firstresult = bool(spec.opts.get("firstresult", False)) if spec is not None else False
        self.snapshot: list[Any] | None = None
        self.functions: tuple[Any, ...] | None = None
        self.refresh()

    def refresh(self) -> None:
        impls = list(self.caller._hookimpls)
        self.snapshot = impls
        direct = (
            _MULTICALL is not None
            and self.caller.spec is not None
            and not self.caller.spec.kwargdefaults
            and not self.caller.is_historic()
            and all(
                not impl.hookwrapper and not impl.wrapper and not impl.kwargnames
                and tuple(impl.argnames) == ("request", "decision")
                for impl in impls
            )
        )
        # pluggy calls the implementations last-registered (and tryfirst) first.
        self.functions = tuple(impl.function for impl in reversed(impls)) if direct else None


#: Built-in contributions read in the order the engine decides (plan first), whatever
#: order pluggy called them in; site plugins' contributions follow.
_STAGE = {name: index for index, name in enumerate(BUILTIN_PLUGINS)}


def _stage(contribution: Contribution, _get: Any = _STAGE.get, _last: int = len(_STAGE)) -> int:
    return _get(contribution.source, _last)


def _in_stage_order(results: Iterable[Sequence[Any] | None]) -> tuple[Any, ...]:
    items = [item for result in results if result for item in result]
    items.sort(key=_stage)
    return tuple(items)
