"""Site plugins: overriding built-ins, blocking, entry points, errors naming the plugin."""

from __future__ import annotations

import inspect
import re
import sys
import textwrap

import pytest

from support import REPO, zurich
from plugin import hookimpl, hookspecs
from plugin.engine import Engine, EngineError
from plugin.manager import PluginError, get_plugin_manager
from plugin.model import Contribution, Organization, Ticket, Verdict

TICKET = Ticket(id=1, channel="email", created_at=zurich("2026-11-27 21:00"))
ORG = Organization(id=1, name="Acme", plan="plus")
NOW = zurich("2026-11-27 21:00")


class EveryoneIsEnterprise:
    @hookimpl
    def policydesk_plan(self, request, decision):
        return Verdict("enterprise", "site.vip", "our biggest customer")

    @hookimpl
    def policydesk_tags(self, request, decision):
        return [Contribution("site:checked", "site.vip", "site rule")]


def test_site_plugin_overrides_builtin_without_unregistering(bundled_policies):
    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(EveryoneIsEnterprise(), name="site.vip")
    try:
        d = Engine(bundled_policies, pm).evaluate(TICKET, ORG, NOW)
    finally:
        pm.unregister(name="site.vip")
    assert (d.plan.value, d.plan.source) == ("enterprise", "site.vip")
    assert d.first_response_due.value == zurich("2026-11-27 22:00")  # enterprise: 1h
    assert {"site:checked", "plan:enterprise"} <= set(d.tag_names)


def test_plugin_with_no_opinion_leaves_the_builtin_answer(bundled_policies):
    class Silent:
        @hookimpl
        def policydesk_plan(self, request, decision):
            return None

    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(Silent(), name="silent")
    d = Engine(bundled_policies, pm).evaluate(TICKET, ORG, NOW)
    assert d.plan.source == "policydesk.tier"


def test_blocking_a_builtin(bundled_policies, monkeypatch):
    monkeypatch.setenv("POLICYDESK_BLOCK_PLUGINS", "policydesk.account_manager")
    pm = get_plugin_manager(load_entrypoints=False, blocked=["policydesk.scope"])
    assert pm.is_blocked("policydesk.scope") and pm.is_blocked("policydesk.account_manager")
    d = Engine(bundled_policies, pm).evaluate(TICKET, ORG, NOW)
    assert d.scope is None and d.account_managers is None
    assert d.first_response_due.value == zurich("2026-11-28 08:00")


def test_blocking_the_plan_hook_is_a_clear_error(bundled_policies):
    pm = get_plugin_manager(load_entrypoints=False, blocked=["policydesk.tier"])
    with pytest.raises(EngineError, match="no plugin chose a plan"):
        Engine(bundled_policies, pm).evaluate(TICKET, ORG, NOW)


def test_unknown_calendar_from_a_plugin_is_a_clear_error(bundled_policies):
    class Moon:
        @hookimpl
        def policydesk_calendar(self, request, decision):
            return Verdict("moon", "site.moon", "why not")

    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(Moon(), name="site.moon")
    with pytest.raises(EngineError, match="site.moon chose unknown calendar 'moon'"):
        Engine(bundled_policies, pm).evaluate(TICKET, ORG, NOW)


def test_a_failing_plugin_is_named(bundled_policies):
    class Broken:
        @hookimpl
        def policydesk_tags(self, request, decision):
            return helper()

    def helper():
        raise KeyError("boom")

    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(Broken(), name="site.broken")
    with pytest.raises(PluginError) as info:
        Engine(bundled_policies, pm).evaluate(TICKET, ORG, NOW)
    assert (info.value.hook, info.value.plugin) == ("policydesk_tags", "site.broken")
    assert "site.broken" in str(info.value) and "KeyError" in str(info.value)


def test_a_failing_notes_plugin_is_named_when_the_notes_are_read(bundled_policies):
    # Notes are written when first read, inside the same error boundary as every hook.
    class BrokenNotes:
        @hookimpl
        def policydesk_notes(self, request, decision):
            raise ValueError("no words")

    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(BrokenNotes(), name="site.mute")
    decision = Engine(bundled_policies, pm).evaluate(TICKET, ORG, NOW)  # decides without notes
    assert decision.plan is not None and decision.tag_names
    with pytest.raises(PluginError) as info:
        decision.note_text  # noqa: B018
    assert (info.value.hook, info.value.plugin) == ("policydesk_notes", "site.mute")


def test_plugins_load_from_the_entry_point_group(bundled_policies, tmp_path, monkeypatch):
    # A real installed distribution: a dist-info folder with entry_points.txt on sys.path.
    (tmp_path / "acme_policydesk.py").write_text(textwrap.dedent('''
        from plugin import hookimpl
        from plugin.model import Contribution

        @hookimpl
        def policydesk_tags(request, decision):
            return [Contribution("acme:seen", "acme", "installed plugin")]
    '''))
    info = tmp_path / "acme_policydesk-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-policydesk\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[policydesk]\nacme = acme_policydesk\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        pm = get_plugin_manager()
        assert pm.has_plugin("acme")
        d = Engine(bundled_policies, pm).evaluate(TICKET, ORG, NOW)
        assert "acme:seen" in d.tag_names
        assert not get_plugin_manager(blocked=["acme"]).has_plugin("acme")
    finally:
        sys.modules.pop("acme_policydesk", None)


def test_builtins_are_trylast_and_cover_every_hook():
    pm = get_plugin_manager(load_entrypoints=False)
    for name in _hook_names():
        impls = getattr(pm.hook, name).get_hookimpls()
        assert impls, f"no built-in implements {name}"
        assert all(i.trylast for i in impls if i.plugin_name.startswith("policydesk.")), name


def _hook_names():
    return [n for n in dir(hookspecs) if n.startswith("policydesk_")]


@pytest.mark.parametrize("name", _hook_names())
def test_hookspec_is_fully_documented(name):
    spec = getattr(hookspecs, name)
    doc = inspect.getdoc(spec) or ""
    flat = " ".join(doc.split())
    assert doc.splitlines()[0].endswith("."), "summary line"
    for param in inspect.signature(spec).parameters:
        assert f":param {param}:" in doc, f"{name}: :param {param}: missing"
    assert ":returns:" in doc
    firstresult = spec.policydesk_spec["firstresult"]
    assert ("Stops at first non-None result" in flat) == firstresult


@pytest.mark.parametrize("name", _hook_names())
def test_hook_is_documented_in_docs_with_its_exact_signature(name):
    docs = (REPO / "docs" / "plugins.md").read_text()
    signature = f"{name}{inspect.signature(getattr(hookspecs, name))}"
    signature = re.sub(r"\s+", " ", signature).replace("'", "")
    assert signature in docs, f"docs/plugins.md lacks: {signature}"


def test_plugins_registered_after_the_engine_exists_take_effect(bundled_policies):
    """The engine keeps pluggy's hook callers (and calls plain implementations directly):
    registering, unregistering and swapping plugins later must still show at once."""

    class Platinum:
        @hookimpl
        def policydesk_plan(self, request, decision):
            return Verdict("pro", "site.platinum", "swapped in")

    class Wrapper:
        seen: list[str] = []

        @hookimpl(wrapper=True)
        def policydesk_tags(self, request, decision):
            tags = yield
            Wrapper.seen.append("tags")
            return [*tags, [Contribution("site:wrapped", "site.wrap", "wrapper")]]

    pm = get_plugin_manager(load_entrypoints=False)
    engine = Engine(bundled_policies, pm)
    assert engine.evaluate(TICKET, ORG, NOW).plan.source == "policydesk.tier"
    pm.register(EveryoneIsEnterprise(), name="site.vip")
    d = engine.evaluate(TICKET, ORG, NOW)
    assert (d.plan.value, d.plan.source) == ("enterprise", "site.vip")
    assert "site:checked" in d.tag_names
    pm.unregister(name="site.vip")
    pm.register(Platinum(), name="site.platinum")  # same number of implementations
    d = engine.evaluate(TICKET, ORG, NOW)
    assert (d.plan.value, d.plan.source) == ("pro", "site.platinum")
    assert "site:checked" not in d.tag_names
    pm.register(Wrapper(), name="site.wrap")
    d = engine.evaluate(TICKET, ORG, NOW)
    assert Wrapper.seen == ["tags"] and "site:wrapped" in d.tag_names
    pm.unregister(name="site.wrap")
    pm.unregister(name="site.platinum")
    d = engine.evaluate(TICKET, ORG, NOW)
    assert d.plan.source == "policydesk.tier" and "site:wrapped" not in d.tag_names


def test_hook_call_monitoring_sees_every_call(bundled_policies):
    pm = get_plugin_manager(load_entrypoints=False)
    engine = Engine(bundled_policies, pm)
    engine.evaluate(TICKET, ORG, NOW)
    calls: list[str] = []
    undo = pm.add_hookcall_monitoring(lambda name, impls, kwargs: calls.append(name), lambda *a: None)
    try:
        decision = engine.evaluate(TICKET, ORG, NOW)
        assert "policydesk_notes" not in calls  # notes are written when first read
        assert decision.note_text and decision.notes  # written once, then kept
    finally:
        undo()
    #: Hooks the engine does not call for a ticket (billing and the adapter ask them).
    outside_a_ticket = {"policydesk_tag_vocabulary", "policydesk_commitment", "policydesk_plan_change"}
    assert sorted(calls) == sorted(n for n in dir(hookspecs) if n.startswith("policydesk_") and n not in outside_a_ticket)
    assert calls.count("policydesk_notes") == 1
