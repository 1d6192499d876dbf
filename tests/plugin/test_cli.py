"""The `policydesk` command as an admin uses it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from support import POLICIES, REPO
from plugin.cli import main


def run(*args: str, cwd=REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "plugin.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=60)


def simulate_json(capsys, *args: str) -> dict:
    assert main(["simulate", "--json", "--policies", str(POLICIES), *args]) == 0
    return json.loads(capsys.readouterr().out)


def test_simulate_json_gives_the_seed_answer(capsys):
    out = simulate_json(capsys, "--plan", "plus", "--channel", "email", "--at", "2026-11-27T21:00")
    assert out["plan"] == "plus"
    assert out["channel"] == "email"
    assert out["calendar"] == "email"
    assert out["first_response_due"] == "2026-11-28T08:00:00+01:00"
    assert out["emergency"] == {"requested": False, "eligible": False, "reasons": ["no emergency handling was requested"]}


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
    line = next(n for n, l in enumerate(text.splitlines(), 1) if "first_response: soon" in l)
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
