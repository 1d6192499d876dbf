"""Operator mistakes are user errors: one line saying what and how to fix it, exit 1 (usage 2), no traceback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BASE_ENV = {"ZAMMAD_URL": "http://127.0.0.1:9", "ZAMMAD_TOKEN": "t", "POLICYDESK_ZAMMAD_WEBHOOK_TOKEN": "w",
            "POLICYDESK_BILLING_SECRET": "b"}


def policydesk(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None,
               timeout: float = 60) -> subprocess.CompletedProcess[str]:
    from integrations.cli import __name__ as _  # noqa: F401 - the module the console script runs
    full = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/root"), **(env or {})}
    return subprocess.run([sys.executable, "-c", "import sys; from integrations.cli import main; sys.exit(main())", *args],
                          capture_output=True, text=True, env={**full, "PYTHONPATH": str(REPO)}, cwd=cwd or REPO,
                          timeout=timeout)


def one_line_error(result: subprocess.CompletedProcess[str], code: int, *needles: str) -> str:
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip() and " INFO " not in line]
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def test_unknown_log_level(tmp_path):
    result = policydesk("serve", "--store", f"sqlite:///{tmp_path}/s.db",
                        env={**BASE_ENV, "POLICYDESK_LOG_LEVEL": "LOUD"})
    one_line_error(result, 1, "log level 'LOUD'", "POLICYDESK_LOG_LEVEL")


def test_port_in_use(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = policydesk("serve", "--listen", f"127.0.0.1:{port}", "--store", f"sqlite:///{tmp_path}/s.db",
                            env=BASE_ENV)
    one_line_error(result, 1, f"cannot listen on 127.0.0.1:{port}", "already in use")


def test_postgresql_unreachable(tmp_path):
    result = policydesk("serve", "--store", "postgresql://policydesk:hunter2@127.0.0.1:9/pd?connect_timeout=2",
                        env=BASE_ENV)
    line = one_line_error(result, 1, "127.0.0.1")
    assert "hunter2" not in result.stderr, line


def test_unsupported_store_scheme(tmp_path):
    result = policydesk("queue", "--store", "mysql://x/y", cwd=tmp_path)
    one_line_error(result, 1, "unsupported scheme 'mysql'")
    assert not (tmp_path / "mysql:").exists() and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("listen, needle", [("127.0.0.1:80000", "out of range"), ("127.0.0.1", "HOST:PORT"),
                                            ("no such host!:80", "not a host name")])
def test_bad_listen_address(tmp_path, listen, needle):
    result = policydesk("serve", "--listen", listen, "--store", f"sqlite:///{tmp_path}/s.db", env=BASE_ENV)
    one_line_error(result, 1, "POLICYDESK_LISTEN", needle)


@pytest.mark.parametrize("missing", ["ZAMMAD_URL", "POLICYDESK_ZAMMAD_WEBHOOK_TOKEN", "POLICYDESK_BILLING_SECRET"])
def test_missing_settings(tmp_path, missing):
    env = {k: v for k, v in BASE_ENV.items() if k != missing}
    result = policydesk("serve", "--store", f"sqlite:///{tmp_path}/s.db", env=env)
    one_line_error(result, 1, missing)


def test_unreadable_secret_file(tmp_path):
    env = {**{k: v for k, v in BASE_ENV.items() if k != "POLICYDESK_BILLING_SECRET"},
           "POLICYDESK_BILLING_SECRET_FILE": str(tmp_path / "nope")}
    result = policydesk("serve", "--store", f"sqlite:///{tmp_path}/s.db", env=env)
    one_line_error(result, 1, "POLICYDESK_BILLING_SECRET_FILE: cannot read")


def test_usage_error_exits_2(tmp_path):
    result = policydesk("serve", "--log-format", "xml")
    assert result.returncode == 2 and "Traceback" not in result.stderr


def test_default_store_goes_to_policydesk_home_not_the_root(tmp_path):
    home = tmp_path / "state"
    result = policydesk("queue", cwd=tmp_path, env={"POLICYDESK_HOME": str(home)})
    assert result.returncode == 0, result.stderr
    assert (home / "policydesk.db").is_file() and not Path("/policydesk.db").exists()


def test_serve_help_summarises_the_settings():
    result = policydesk("serve", "--help")
    from integrations.settings import ENVIRONMENT

    assert result.returncode == 0
    for name in ENVIRONMENT:
        assert name in result.stdout, name
    assert "integrations/service/config.py" not in result.stdout
