"""Building the plugin manager, and the typed facade the engine calls hooks through.

Only pluggy's public API is used (so any pluggy the package declares works): the
manager is a `pluggy.PluginManager` subclass that counts every change to what a hook
call does (a plugin registered, unregistered or blocked, hookspecs added, call
monitoring or tracing installed or removed); the facade takes each hook's
implementations (`plugin.hookcalls`) again whenever that count moved.
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Callable, Iterable
from importlib import metadata
from typing import TYPE_CHECKING, Any, NoReturn

import pluggy

from plugin import hookspecs
from plugin.errors import UserError
from plugin.hookcalls import HookCalls
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


class PluginManager(pluggy.PluginManager):
    """pluggy's manager, counting the changes that can alter what a hook call does.

    `Hooks` calls a hook's implementations directly while `changes` stays the same and
    no call monitoring (``enable_tracing``, ``add_hookcall_monitoring``) is installed.
    """

    def __init__(self, project_name: str) -> None:
        #: Bumped by every registration change and monitoring change.
        self.changes = 0
        #: How many call monitors (tracing included) are installed.
        self.monitors = 0
        super().__init__(project_name)

    def register(self, plugin: object, name: str | None = None) -> str | None:
        try:
            return super().register(plugin, name)
        finally:
            self.changes += 1

    def unregister(self, plugin: object | None = None, name: str | None = None) -> Any:
        try:
            return super().unregister(plugin, name)
        finally:
            self.changes += 1

    def set_blocked(self, name: str) -> None:
        try:
            super().set_blocked(name)
        finally:
            self.changes += 1

    def add_hookspecs(self, module_or_class: Any) -> None:
        try:
            super().add_hookspecs(module_or_class)
        finally:
            self.changes += 1

    def add_hookcall_monitoring(self, before: Any, after: Any) -> Callable[[], None]:
        undo = super().add_hookcall_monitoring(before, after)
        self.monitors += 1
        self.changes += 1
        undone = False

        def remove() -> None:
            nonlocal undone
            undo()
            if not undone:
                undone = True
                self.monitors -= 1
                self.changes += 1

        return remove


def get_plugin_manager(load_entrypoints: bool = True, blocked: Iterable[str] = ()) -> PluginManager:
    """Return a new plugin manager with the built-in hooks and installed plugins registered.

    :param load_entrypoints: Also load third-party plugins from the ``policydesk``
        entry-point group.
    :param blocked: Plugin names not to register (added to those in ``POLICYDESK_BLOCK_PLUGINS``).
    :raises PluginLoadError: when an installed plugin fails to import or does not fit the hookspecs.
    """
    pm = PluginManager(hookspecs.PROJECT)
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
    """The typed facade: one method per hook, each typed as its hookspec and turning a
    plugin's exception into `PluginError` (which plugin, which hook). The engine never
    reaches into ``pm.hook``.

    Speed: `calls` is a `HookCalls` snapshot, built again only when the manager's
    `PluginManager.changes` moved (for any other manager: built once, always through pluggy).
    """

    def __init__(self, pm: pluggy.PluginManager) -> None:
        self.pm = pm
        self._calls: HookCalls | None = None
        self._seen: int | None = None

    def calls(self) -> HookCalls:
        """How to call each hook now; a caller adds the error boundary (see `error`)."""
        changes = getattr(self.pm, "changes", None)
        calls = self._calls
        if calls is None or changes != self._seen:
            monitored = changes is None or getattr(self.pm, "monitors", 1) > 0
            calls = self._calls = HookCalls(self.pm.hook, monitored)
            self._seen = changes
        return calls

    def error(self, hook: str, error: Exception) -> PluginError:
        """``error``, raised while calling ``hook`` (short name, ``"plan"``), as a `PluginError`
        naming the plugin whose code raised it."""
        caller: pluggy.HookCaller = getattr(self.pm.hook, "policydesk_" + hook)
        codes = {impl.function.__code__: impl.plugin_name for impl in caller.get_hookimpls()}
        culprit = "<unknown>"
        for frame, _ in traceback.walk_tb(error.__traceback__):
            if frame.f_code in codes:
                culprit = codes[frame.f_code]
                break
        return PluginError("policydesk_" + hook, culprit, error)

    def _raise(self, hook: str, error: Exception) -> NoReturn:
        raise self.error(hook, error) from error

    def plan(self, request: Request, decision: Decision) -> Verdict[str] | None:
        try:
            return self.calls().plan(request, decision)
        except Exception as error:
            self._raise("plan", error)

    def language(self, request: Request, decision: Decision) -> Verdict[str | None] | None:
        try:
            return self.calls().language(request, decision)
        except Exception as error:
            self._raise("language", error)

    def plan_eligibility(self, policies: Policies, organization: Organization, plan: str) -> Verdict[bool] | None:
        try:
            return self.calls().plan_eligibility(policies, organization, plan)
        except Exception as error:
            self._raise("plan_eligibility", error)

    def scope(self, request: Request, decision: Decision) -> Verdict[ScopeVerdict] | None:
        try:
            return self.calls().scope(request, decision)
        except Exception as error:
            self._raise("scope", error)

    def emergency(self, request: Request, decision: Decision) -> Verdict[EmergencyVerdict] | None:
        try:
            return self.calls().emergency(request, decision)
        except Exception as error:
            self._raise("emergency", error)

    def calendar(self, request: Request, decision: Decision) -> Verdict[str] | None:
        try:
            return self.calls().calendar(request, decision)
        except Exception as error:
            self._raise("calendar", error)

    def first_response_due(self, request: Request, decision: Decision) -> Verdict[dt.datetime | None] | None:
        try:
            return self.calls().first_response_due(request, decision)
        except Exception as error:
            self._raise("first_response_due", error)

    def account_managers(self, request: Request, decision: Decision) -> Verdict[Mapping[str, str]] | None:
        try:
            return self.calls().account_managers(request, decision)
        except Exception as error:
            self._raise("account_managers", error)

    def escalation(self, request: Request, decision: Decision) -> Verdict[EscalationState] | None:
        try:
            return self.calls().escalation(request, decision)
        except Exception as error:
            self._raise("escalation", error)

    def priority(self, request: Request, decision: Decision) -> Verdict[str] | None:
        try:
            return self.calls().priority(request, decision)
        except Exception as error:
            self._raise("priority", error)

    def advice(self, request: Request, decision: Decision) -> Verdict[AdviceVerdict] | None:
        try:
            return self.calls().advice(request, decision)
        except Exception as error:
            self._raise("advice", error)

    def routing(self, request: Request, decision: Decision) -> Verdict[Routing] | None:
        try:
            return self.calls().routing(request, decision)
        except Exception as error:
            self._raise("routing", error)

    def notifications(self, request: Request, decision: Decision) -> tuple[Notification, ...]:
        try:
            return self.calls().notifications(request, decision)
        except Exception as error:
            self._raise("notifications", error)

    def tags(self, request: Request, decision: Decision) -> tuple[Contribution, ...]:
        try:
            return self.calls().tags(request, decision)
        except Exception as error:
            self._raise("tags", error)

    def notes(self, request: Request, decision: Decision) -> tuple[Contribution, ...]:
        try:
            return self.calls().notes(request, decision)
        except Exception as error:
            self._raise("notes", error)

    def tag_vocabulary(self, policies: Policies) -> tuple[Contribution, ...]:
        try:
            return self.calls().tag_vocabulary(policies)
        except Exception as error:
            self._raise("tag_vocabulary", error)

    def commitment(self, policies: Policies, organization: Organization, plan: str, start: dt.date, end: dt.date,
                   months: int | None) -> Verdict[str | None] | None:
        try:
            return self.calls().commitment(policies, organization, plan, start, end, months)
        except Exception as error:
            self._raise("commitment", error)

    def plan_change(self, policies: Policies, organization: Organization, current: Subscription,
                    change: ChangeRequest) -> Verdict[Ruling] | None:
        try:
            return self.calls().plan_change(policies, organization, current, change)
        except Exception as error:
            self._raise("plan_change", error)
