"""The hook facade's direct calls give exactly what pluggy's own call gives.

`plugin.manager.Hooks` calls the implementations itself when that is exact; these tests
run every hook over a mix of requests both ways — plain, with a site plugin overriding,
with pluggy's tracing and call monitoring installed, with new- and old-style wrappers —
and compare the answers, including which path was taken.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Iterator

import pluggy
import pytest

from plugin import hookimpl
from plugin.engine import Engine
from plugin.hookcalls import COLLECTING, HookCalls, hook_names
from plugin.manager import Hooks, PluginError, get_plugin_manager
from plugin.model import Contribution, Decision, Organization, Request, Ticket, Verdict
from plugin.subscription import ChangeRequest, Subscription

from support import zurich

_HOOKS = set(hook_names())


def requests_mix(policies) -> list[tuple[Ticket, Organization, dt.datetime]]:
    mix = []
    for i, (plan, channel, at, emergency, category, language) in enumerate([
        ("plus", "email", "2026-11-27 21:00", False, None, None),
        ("pro", "phone", "2026-11-28 03:00", True, "infrastructure", "fr"),
        ("enterprise", "phone", "2026-11-28 03:00", True, "webmastering", "de"),
        ("standard", "web", "2026-11-30 10:00", False, "hosting", "en"),
        (None, "fax", "2026-10-25 02:30", True, "infrastructure", "en"),
        ("enterprise", "chat", "2026-03-29 01:59", False, "third-party-application", None),
    ]):
        created = zurich(at)
        ticket = Ticket(id=i, channel=channel, created_at=created, category=category, language=language,
                        emergency_requested=emergency)
        organization = Organization(id=i, name="Acme", plan=plan,
                                    account_managers={"account_manager": "ana@provider.example"})
        for later in (0, 90, 3000):
            mix.append((ticket, organization, created + dt.timedelta(minutes=later)))
    return mix


def hook_arguments(name: str, request: Request, decision: Decision) -> dict[str, Any]:
    """The keyword arguments of hook ``name`` for this request, as its hookspec names them."""
    policies, organization = request.policies, request.organization
    plan = decision.plan.value if decision.plan else "plus"
    day = request.now.date()
    return {
        "plan_eligibility": {"policies": policies, "organization": organization, "plan": plan},
        "tag_vocabulary": {"policies": policies},
        "commitment": {"policies": policies, "organization": organization, "plan": plan, "start": day,
                       "end": day + dt.timedelta(days=30 * (request.ticket.id or 1)), "months": None},
        "plan_change": {"policies": policies, "organization": organization,
                        "current": Subscription(plan=plan, commitment_end=day + dt.timedelta(days=90)),
                        "change": ChangeRequest(type="subscription.plan_changed", plan="enterprise", effective=day)},
    }.get(name, {"request": request, "decision": decision})


def answers_both_ways(hooks: Hooks, policies) -> Iterator[tuple[str, Any, Any]]:
    """(hook, the facade's answer, pluggy's answer) for every hook and request, each hook
    seeing the Decision the engine built."""
    for ticket, organization, now in requests_mix(policies):
        request = Request(ticket, organization, now, policies)
        decision = Engine(policies, hooks.pm).evaluate(ticket, organization, now)
        for name in hook_names():
            kwargs = hook_arguments(name, request, decision)
            facade = getattr(hooks, name)(*kwargs.values())
            raw = getattr(hooks.pm.hook, "policydesk_" + name)(**kwargs)
            if name in COLLECTING:
                raw = tuple(sorted((c for r in raw if r for c in r), key=repr))
                facade = tuple(sorted(facade, key=repr))
            yield name, facade, raw


def direct_hooks(hooks: Hooks) -> set[str]:
    return set(hooks.calls().direct)


def test_direct_calls_answer_as_pluggy_does(bundled_policies):
    hooks = Hooks(get_plugin_manager(load_entrypoints=False))
    compared = 0
    for name, facade, raw in answers_both_ways(hooks, bundled_policies):
        assert facade == raw, name
        compared += 1
    print(f"{compared} hook answers compared, direct: {len(direct_hooks(hooks))} of {len(_HOOKS)} hooks")
    assert direct_hooks(hooks) == set(_HOOKS)  # the direct path was the one compared


class Override:
    """A site plugin that answers two hooks before the built-ins (they are trylast)."""

    @hookimpl
    def policydesk_priority(self, request, decision):
        return Verdict("3 high", "acme", "acme's customers are all urgent")

    @hookimpl(tryfirst=True)
    def policydesk_tags(self, request, decision):
        return [Contribution("acme", "acme", "ours")]

    @hookimpl
    def policydesk_plan(self, request, decision):
        return None  # no opinion: the built-in answers


class NewStyleWrapper:
    @hookimpl(wrapper=True)
    def policydesk_priority(self, request, decision):
        result = yield
        return Verdict(f"wrapped {result.value}", "wrapper", "wraps")


class OldStyleWrapper:
    @hookimpl(hookwrapper=True)
    def policydesk_calendar(self, request, decision):
        outcome = yield
        verdict = outcome.get_result()
        outcome.force_result(Verdict(verdict.value, "old-wrapper", verdict.reason))


def test_a_site_plugin_is_called_in_pluggys_order(bundled_policies):
    pm = get_plugin_manager(load_entrypoints=False)
    hooks = Hooks(pm)
    direct_hooks(hooks)
    pm.register(Override(), name="acme")
    try:
        for name, facade, raw in answers_both_ways(hooks, bundled_policies):
            assert facade == raw, name
        assert direct_hooks(hooks) == set(_HOOKS)
        ticket, organization, now = requests_mix(bundled_policies)[0]
        request = Request(ticket, organization, now, bundled_policies)
        decision = Engine(bundled_policies, pm).evaluate(ticket, organization, now)
        assert hooks.priority(request, decision).source == "acme"
        assert hooks.tags(request, decision)[-1].source == "acme"
    finally:
        pm.unregister(name="acme")
    assert hooks.priority(request, decision).source != "acme"  # unregistered: seen at once


class Impersonator:
    """A site plugin contributing under a built-in's name: sorted among the built-ins."""

    @hookimpl
    def policydesk_tags(self, request, decision):
        return [Contribution("acme:first", "acme", "ours"), Contribution("acme:tier", "policydesk.tier", "posing")]


def collecting_answers(calls: HookCalls, policies) -> list[tuple[str, tuple[Any, ...]]]:
    out = []
    for ticket, organization, now in requests_mix(policies):
        request = Request(ticket, organization, now, policies)
        decision = Engine(policies).evaluate(ticket, organization, now)
        for name in sorted(COLLECTING):
            out.append((name, getattr(calls, name)(*hook_arguments(name, request, decision).values())))
    return out


@pytest.mark.parametrize("site", [None, Override, Impersonator])
def test_collecting_hooks_answer_in_the_same_order_both_ways(bundled_policies, site):
    pm = get_plugin_manager(load_entrypoints=False)
    if site is not None:
        pm.register(site(), name="acme")
    direct, through_pluggy = HookCalls(pm.hook, monitored=False), HookCalls(pm.hook, monitored=True)
    assert COLLECTING <= direct.direct and not through_pluggy.direct
    answers = collecting_answers(direct, bundled_policies)
    assert answers == collecting_answers(through_pluggy, bundled_policies)  # order included
    tags = [answer for name, answer in answers if name == "tags"]
    if site is Impersonator:  # sorted by source as pluggy's answer is: with the tier, which
        # pluggy called after the site plugin; the site's own contribution last
        assert all(answer[0].value == "acme:tier" and answer[1].value.startswith("plan:") for answer in tags)
        assert all(answer[-1].value == "acme:first" for answer in tags)


def test_a_builtin_contributes_under_its_own_name(bundled_policies):
    """What lets the direct path skip the sort: a built-in's contributions carry its name."""
    pm = get_plugin_manager(load_entrypoints=False)
    seen = set()
    for ticket, organization, now in requests_mix(bundled_policies):
        request = Request(ticket, organization, now, bundled_policies)
        decision = Engine(bundled_policies, pm).evaluate(ticket, organization, now)
        for name in COLLECTING:
            for impl in getattr(pm.hook, "policydesk_" + name).get_hookimpls():
                for item in impl.function(*hook_arguments(name, request, decision).values()) or ():
                    assert item.source == impl.plugin_name, (name, impl.plugin_name, item)
                    seen.add((name, impl.plugin_name))
    assert {hook for hook, _ in seen} == COLLECTING, seen
    assert all(sum(hook == name for hook, _ in seen) >= 3 for name in ("tags", "notes")), seen


@pytest.mark.parametrize("wrapper", [NewStyleWrapper, OldStyleWrapper])
def test_a_wrapper_plugin_goes_through_pluggy(bundled_policies, wrapper):
    pm = get_plugin_manager(load_entrypoints=False)
    hooks = Hooks(pm)
    pm.register(wrapper(), name="wrapper")
    try:
        wrapped = {"priority"} if wrapper is NewStyleWrapper else {"calendar"}
        assert direct_hooks(hooks) == set(_HOOKS) - wrapped
        seen = set()
        for name, facade, raw in answers_both_ways(hooks, bundled_policies):
            assert facade == raw, name
            if name in wrapped:
                seen.add(facade.source)
        assert seen == {"wrapper" if wrapper is NewStyleWrapper else "old-wrapper"}
    finally:
        pm.unregister(name="wrapper")


def test_tracing_and_monitoring_see_every_call(bundled_policies):
    pm = get_plugin_manager(load_entrypoints=False)
    hooks = Hooks(pm)
    assert direct_hooks(hooks) == set(_HOOKS)
    traced: list[str] = []
    pm.trace.root.setwriter(traced.append)
    undo_trace = pm.enable_tracing()
    called: list[str] = []
    undo_monitor = pm.add_hookcall_monitoring(lambda name, impls, kwargs: called.append(name),
                                              lambda outcome, name, impls, kwargs: None)
    try:
        assert direct_hooks(hooks) == set()
        for name, facade, raw in answers_both_ways(hooks, bundled_policies):
            assert facade == raw, name
        assert set(called) == {"policydesk_" + name for name in _HOOKS} and traced
        n = len(called)
        request = Request(*requests_mix(bundled_policies)[0][:2], zurich("2026-11-27 21:00"), bundled_policies)
        hooks.plan(request, Decision(now=request.now))
        assert called[n:] == ["policydesk_plan"]  # the facade's own call was monitored
    finally:
        undo_monitor()
        undo_trace()
    assert direct_hooks(hooks) == set(_HOOKS)  # both removed: direct again


def test_another_manager_always_goes_through_pluggy(bundled_policies):
    from plugin import hookspecs
    from plugin.hooks import BUILTIN_PLUGINS

    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    for name, module in BUILTIN_PLUGINS.items():
        pm.register(module, name=name)
    hooks = Hooks(pm)
    assert direct_hooks(hooks) == set()
    for name, facade, raw in answers_both_ways(hooks, bundled_policies):
        assert facade == raw, name


def test_an_error_names_the_plugin_on_both_paths(bundled_policies):
    class Broken:
        @hookimpl
        def policydesk_priority(self, request, decision):
            raise RuntimeError("boom")

    request = Request(*requests_mix(bundled_policies)[0][:2], zurich("2026-11-27 21:00"), bundled_policies)
    for tracing in (False, True):
        pm = get_plugin_manager(load_entrypoints=False)
        pm.register(Broken(), name="broken")
        undo = pm.enable_tracing() if tracing else (lambda: None)
        try:
            with pytest.raises(PluginError, match="plugin 'broken' failed in hook policydesk_priority: RuntimeError"):
                Hooks(pm).priority(request, Decision(now=request.now))
        finally:
            undo()
