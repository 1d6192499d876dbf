"""The `policydesk` command as an admin uses it: the engine's commands and the one error boundary."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from support import POLICIES, REPO
from plugin.cli import main


def run(*args: str, cwd=REPO, module: str = "plugin.cli", env: dict[str, str] | None = None,
        ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, capture_output=True, text=True, timeout=60,
                          env=env)


def simulate_json(capsys, *args: str) -> dict:
    assert main(["simulate", "--json", "--policies", str(POLICIES), *args]) == 0
    return json.loads(capsys.readouterr().out)


def test_simulate_json_gives_the_seed_answer(capsys):
    out = simulate_json(capsys, "--plan", "plus", "--channel", "email", "--at", "2026-11-27T21:00")
    assert out["plan"] == "plus"
    assert out["channel"] == "email"
    assert out["calendar"] == "email"
    assert out["first_response_due"] == "2026-11-28T08:00:00+01:00"
    assert out["emergency"] == {"requested": False, "eligible": False, "reasons": ["no emergency handling was requested"],
                                "refused_for": [], "reply": None, "reply_language": None}


def test_simulate_json_an_emergency_by_email_is_not_a_call(capsys):
    # The check of issue 12: e-mail is not a call, so no 24/7 handling; every new field has its source.
    out = simulate_json(capsys, "--plan", "pro", "--channel", "email", "--emergency", "--category", "infrastructure",
                        "--language", "en", "--at", "2026-11-28T03:00")
    assert out["emergency"]["eligible"] is False and out["emergency"]["refused_for"] == ["channel"]
    assert out["emergency"]["reply_language"] == "en" and "by phone" in out["emergency"]["reply"]
    assert "emergency:refused" in out["tags"]
    assert out["routing"] == {"group": "Premium support", "owner": None}
    assert out["language"] == "en" and out["eligible_for_plan"] is True
    for field in ("routing", "language", "eligibility", "emergency"):
        assert out["why"][field]["source"].startswith("policydesk.") and out["why"][field]["reason"]
    assert {"tag": "emergency:refused", "source": "policydesk.emergency"}.items() <= next(
        t for t in out["tag_sources"] if t["tag"] == "emergency:refused").items()


def test_simulate_json_shows_advice_and_notifications(capsys):
    out = simulate_json(capsys, "--plan", "enterprise", "--channel", "email", "--category", "advice",
                        "--at", "2026-11-28T11:00", "--manager", "technical_account_manager=tom@provider.example")
    assert out["advice"] == {"requested": True, "included": True, "open_now": False,
                             "queued_until": "2026-11-30T09:00:00+01:00"}
    assert out["why"]["advice"]["source"] == "policydesk.advice"
    assert out["notifications"] == []


def test_at_with_an_offset_is_that_instant(capsys):
    # 20:00 UTC is 21:00 in Zurich: same answer, printed with Zurich's offset.
    out = simulate_json(capsys, "--plan", "plus", "--channel", "email", "--at", "2026-11-27T20:00+00:00")
    assert out["first_response_due"] == "2026-11-28T08:00:00+01:00"


def test_standard_due_is_null(capsys):
    out = simulate_json(capsys, "--plan", "standard", "--channel", "phone", "--at", "2026-11-27T10:00")
    assert out["first_response_due"] is None


def test_emergency_out_of_scope_is_refused_with_reasons(capsys):
    out = simulate_json(capsys, "--plan", "pro", "--channel", "phone", "--at", "2026-11-28T03:00",
                        "--emergency", "--category", "webmastering", "--language", "en")
    assert out["emergency"]["requested"] is True
    assert out["emergency"]["eligible"] is False
    assert any("outside the scope" in r for r in out["emergency"]["reasons"])
    assert out["calendar"] == "phone"
    assert out["first_response_due"] == "2026-11-30T08:00:00+01:00"
    assert "out-of-scope" in out["tags"]


def test_emergency_granted_counts_24_7(capsys):
    out = simulate_json(capsys, "--plan", "enterprise", "--channel", "phone", "--at", "2026-11-28T03:00",
                        "--emergency", "--category", "infrastructure", "--language", "fr")
    assert out["emergency"]["eligible"] is True
    assert out["calendar"] == "emergency"
    assert out["first_response_due"] == "2026-11-28T04:00:00+01:00"


def test_explain_names_hooks_and_the_hours_counted(capsys):
    assert main(["explain", "--policies", str(POLICIES), "--plan", "plus", "--channel", "email",
                 "--at", "2026-11-27T21:00"]) == 0
    out = capsys.readouterr().out
    assert "set by policydesk.sla" in out
    assert "Fri 27 Nov 2026 21:00 CET -> 23:00  (120 min)" in out
    assert "Sat 28 Nov 2026 06:00 CET -> 08:00  (120 min)" in out


def test_validate_bundled_policies(capsys):
    assert main(["validate", "--policies", str(POLICIES)]) == 0


def test_validate_reports_errors_with_line_and_exit_1(tmp_path):
    broken = tmp_path / "policies"
    shutil.copytree(POLICIES, broken)
    text = (broken / "plans.yaml").read_text().replace("first_response: 2h", "first_response: soon")
    (broken / "plans.yaml").write_text(text)
    result = run("validate", "--policies", str(broken))
    assert result.returncode == 1
    line = next(n for n, text_line in enumerate(text.splitlines(), 1) if "first_response: soon" in text_line)
    assert f"plans.yaml:{line}:" in result.stderr
    assert "$.plans.pro.first_response" in result.stderr
    assert "Traceback" not in result.stderr


def test_policies_directory_from_the_environment(tmp_path):
    result = subprocess.run([sys.executable, "-m", "plugin.cli", "validate"], cwd=tmp_path, capture_output=True,
                            text=True, env={**_env(), "POLICYDESK_POLICIES": str(POLICIES)}, timeout=60)
    assert result.returncode == 0, result.stderr


def _env():
    import os

    return {k: v for k, v in os.environ.items() if k != "POLICYDESK_POLICIES"}


@pytest.mark.parametrize(
    "args, message",
    [
        (["simulate", "--plan", "gold", "--channel", "email"], "unknown plan 'gold'"),
        (["simulate", "--plan", "plus", "--channel", "email", "--at", "tomorrow"], "not an ISO 8601 date-time"),
    ],
)
def test_bad_input_is_a_message_and_exit_1(args, message):
    result = run(*args)
    assert result.returncode == 1
    assert message in result.stderr and "Traceback" not in result.stderr


def test_usage_error_is_exit_2():
    result = run("simulate", "--channel", "email")
    assert result.returncode == 2
    assert "--plan" in result.stderr


def test_missing_policy_directory_is_an_error_not_a_traceback(tmp_path):
    result = run("simulate", "--plan", "plus", "--channel", "email", "--policies", str(tmp_path / "nowhere"))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr


# --------------------------------------------------------------------------- the engine stands alone


def test_no_module_of_plugin_loads_integrations():
    # A fresh interpreter imports every module under plugin/ and lists what got loaded.
    script = textwrap.dedent("""
        import importlib, json, pkgutil, sys
        import plugin
        names = ["plugin"] + [m.name for m in pkgutil.walk_packages(plugin.__path__, "plugin.")]
        for name in names:
            importlib.import_module(name)
        print(json.dumps({"imported": names,
                          "integrations": sorted(m for m in sys.modules if m.split(".")[0] == "integrations")}))
    """)
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    print(f"{len(report['imported'])} plugin modules imported, integrations modules loaded: {report['integrations']}")
    assert {"plugin.cli", "plugin.engine", "plugin.manager", "plugin.hooks.sla"} <= set(report["imported"])
    assert report["integrations"] == []


def test_engine_commands_mount_on_any_parser():
    import argparse

    from plugin.cli import add_engine_commands

    parser = argparse.ArgumentParser(prog="x")
    add_engine_commands(parser.add_subparsers(dest="command"), str(POLICIES))
    args = parser.parse_args(["explain", "--plan", "plus", "--channel", "email"])
    assert args.func.__name__ == "cmd_explain" and args.policies == str(POLICIES)


def test_python_m_plugin_cli_has_only_the_engine_commands():
    result = run("serve")
    assert result.returncode == 2
    assert "invalid choice: 'serve'" in result.stderr


def test_console_command_has_engine_and_integration_commands():
    from integrations.cli import build_parser

    parser = build_parser()
    choices = next(a for a in parser._actions if isinstance(a, __import__("argparse")._SubParsersAction)).choices
    assert {"validate", "simulate", "explain", "serve", "sync", "demo", "replay", "queue"} <= set(choices)


def test_a_broken_command_module_fails_loudly_naming_it():
    script = "import sys; sys.modules['integrations.demo'] = None; from integrations.cli import main; main()"
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "ModuleNotFoundError: import of integrations.demo halted" in result.stderr


# --------------------------------------------------------------------------- the error boundary


def test_user_error_is_one_line_naming_the_command(tmp_path):
    result = run("simulate", "--plan", "gold", "--channel", "email", module="integrations.cli")
    assert result.returncode == 1
    assert result.stderr.startswith("policydesk simulate: --plan: unknown plan 'gold'")
    assert len(result.stderr.strip().splitlines()) == 1


def test_every_user_facing_error_type_is_a_user_error():
    from integrations.billing.handler import EventError
    from integrations.replay.records import RecordError
    from integrations.service.config import ConfigError
    from integrations.store import StoreError
    from integrations.zammad.adapter import ZammadConfigError
    from integrations.zammad.commands import SyncUserError
    from plugin.errors import UserError
    from plugin.manager import PluginLoadError
    from plugin.policy import PolicyErrors

    for kind in (EventError, RecordError, ConfigError, StoreError, ZammadConfigError, SyncUserError, PolicyErrors,
                 PluginLoadError):
        assert issubclass(kind, UserError), kind


def test_a_closed_output_pipe_ends_quietly():
    # `policydesk explain ... | head -1`: the reader goes away after the first line.
    command = [sys.executable, "-m", "integrations.cli", "explain", "--policies", str(POLICIES), "--plan", "plus",
               "--channel", "email", "--at", "2026-11-27T21:00"]
    proc = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline()
    proc.stdout.close()
    stderr = proc.stderr.read().decode()
    status = proc.wait(timeout=60)
    assert first.startswith(b"plan: plus")
    assert stderr == "" and status in (0, 141), (status, stderr)


def test_a_bug_is_a_traceback_and_exit_3(monkeypatch, capsys):
    import plugin.cli

    def broken(args):
        raise ZeroDivisionError("a bug")

    parser = plugin.cli.build_parser()
    monkeypatch.setattr(plugin.cli, "cmd_validate", broken)
    parser = plugin.cli.build_parser()
    assert plugin.cli.run_cli(parser, ["validate", "--policies", str(POLICIES)]) == 3
    err = capsys.readouterr().err
    assert "Traceback" in err and "ZeroDivisionError: a bug" in err and "internal error (a bug)" in err


def test_interrupt_is_exit_130(monkeypatch):
    import plugin.cli

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(plugin.cli, "cmd_validate", interrupted)
    assert plugin.cli.run_cli(plugin.cli.build_parser(), ["validate", "--policies", str(POLICIES)]) == 130


def test_a_plugin_that_fails_to_import_is_named(tmp_path):
    # An installed distribution whose `policydesk` entry point cannot be imported.
    dist = tmp_path / "site" / "acme_policydesk-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-policydesk\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[policydesk]\nacme = acme_rules_missing.hooks\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site")}
    result = run("simulate", "--policies", str(POLICIES), "--plan", "plus", "--channel", "email", env=env,
                 module="integrations.cli")
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    line, = result.stderr.strip().splitlines()
    assert line.startswith("policydesk simulate: plugin 'acme' (acme_rules_missing.hooks, installed by acme-policydesk)")
    assert "ModuleNotFoundError" in line


# --------------------------------------------------------------------------- machine-readable output


def test_validate_json_lists_errors(tmp_path):
    broken = tmp_path / "policies"
    shutil.copytree(POLICIES, broken)
    text = (broken / "plans.yaml").read_text().replace("first_response: 2h", "first_response: soon")
    (broken / "plans.yaml").write_text(text)
    result = run("validate", "--json", "--policies", str(broken))
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["valid"] is False
    assert [e["path"] for e in report["errors"]] == ["$.plans.pro.first_response"]
    assert report["errors"][0]["file"].endswith("plans.yaml") and report["errors"][0]["line"] > 1
    ok = run("validate", "--json", "--policies", str(POLICIES))
    assert ok.returncode == 0 and json.loads(ok.stdout) == {"directory": str(POLICIES), "valid": True, "errors": []}


def test_explain_json_adds_the_hours_counted(capsys):
    assert main(["explain", "--json", "--policies", str(POLICIES), "--plan", "plus", "--channel", "email",
                 "--at", "2026-11-27T21:00"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["first_response_due"] == "2026-11-28T08:00:00+01:00"
    assert out["opening_hours_counted"] == [
        {"start": "2026-11-27T21:00:00+01:00", "end": "2026-11-27T23:00:00+01:00", "minutes": 120.0},
        {"start": "2026-11-28T06:00:00+01:00", "end": "2026-11-28T08:00:00+01:00", "minutes": 120.0},
    ]


def test_explain_counts_real_minutes_across_a_dst_change(capsys, tmp_path):
    # A 24/7 calendar: the night of 25 Oct 2026 has 25 hours in Zurich (02:00-03:00 twice).
    assert main(["explain", "--policies", str(POLICIES), "--plan", "enterprise", "--channel", "phone",
                 "--emergency", "--category", "infrastructure", "--language", "en",
                 "--at", "2026-10-25T02:30+02:00"]) == 0
    out = capsys.readouterr().out
    assert "first response due: Sun 25 Oct 2026 02:30 CET" in out
    assert "Sun 25 Oct 2026 02:30 CEST -> 02:30 CET  (60 min)" in out, out
