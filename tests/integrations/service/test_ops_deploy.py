"""The deployment guide's files work: the systemd units' command lines and environment names are
ones the program accepts, the environment reference is complete, and the gunicorn config serves
with several workers whose metrics add up."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests

from integrations.settings import ENVIRONMENT

REPO = Path(__file__).resolve().parents[3]
UNITS = sorted((REPO / "docs" / "deploy").glob("*.service"))
DEPLOY = (REPO / "docs" / "deploy.md").read_text()
SECRETS = {"ZAMMAD_TOKEN", "POLICYDESK_ZAMMAD_WEBHOOK_TOKEN", "POLICYDESK_BILLING_SECRET", "POLICYDESK_ADMIN_TOKEN"}


def unit(path: Path) -> tuple[list[str], dict[str, str]]:
    command: list[str] = []
    env: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if line.startswith("ExecStart="):
            command = shlex.split(line.split("=", 1)[1])
        elif line.startswith("Environment="):
            name, _, value = line.split("=", 1)[1].partition("=")
            env[name] = value
    return command, env


def accepted(name: str) -> bool:
    return name in ENVIRONMENT or (name.endswith("_FILE") and name[:-5] in SECRETS)


def test_there_are_units():
    assert {p.name for p in UNITS} == {"policydesk.service", "policydesk-gunicorn.service"}


@pytest.mark.parametrize("path", UNITS, ids=lambda p: p.name)
def test_unit_environment_names_are_ones_policydesk_reads(path):
    _, env = unit(path)
    assert env and [name for name in env if not accepted(name)] == []


def test_the_serve_unit_command_line_parses():
    from integrations.cli import build_parser

    command, _ = unit(REPO / "docs" / "deploy" / "policydesk.service")
    assert command[0].endswith("/policydesk")
    args = build_parser().parse_args(command[1:])  # a wrong option would exit 2 here
    assert args.command == "serve" and args.log_format == "json" and args.admin_listen == "127.0.0.1:9090"


def test_the_gunicorn_unit_uses_the_shipped_config():
    command, _ = unit(REPO / "docs" / "deploy" / "policydesk-gunicorn.service")
    assert command[0].endswith("/gunicorn") and command[1:] == ["-c", "python:integrations.service.gunicorn_conf"]


def test_the_environment_reference_is_complete_and_has_no_unknown_names():
    reference = DEPLOY.split("## Environment reference", 1)[1]
    for name in ENVIRONMENT:
        assert f"`{name}`" in reference, name
    mentioned = set(re.findall(r"\b((?:POLICYDESK|ZAMMAD)_[A-Z_]+)\b", DEPLOY))
    assert [name for name in mentioned if not accepted(name)] == []


def test_gunicorn_with_two_workers_serves_and_its_metrics_add_up(tmp_path):
    pytest.importorskip("gunicorn")  # the test extra installs it
    from service_harness import free_port

    from integrations.signing import zammad_signature
    from integrations.zammad_standin import running_standin

    port = free_port()
    with running_standin() as zammad:
        env = {**os.environ, "PYTHONPATH": str(REPO), "WEB_CONCURRENCY": "2", "POLICYDESK_THREADS": "2",
               "POLICYDESK_LISTEN": f"127.0.0.1:{port}", "POLICYDESK_STORE": f"sqlite:///{tmp_path / 'g.db'}",
               "POLICYDESK_POLICIES": str(REPO / "policies"), "ZAMMAD_URL": zammad.url,
               "ZAMMAD_TOKEN": "standin-policydesk-token", "POLICYDESK_ZAMMAD_WEBHOOK_TOKEN": "g-token",
               "POLICYDESK_BILLING_SECRET": "g-secret", "POLICYDESK_WORKERS": "1",
               "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics")}
        env.pop("POLICYDESK_HOME", None)
        log = open(tmp_path / "gunicorn.log", "wb")
        proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "python:integrations.service.gunicorn_conf"],
                                env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 40
            while time.monotonic() < deadline:
                try:
                    if requests.get(url + "/healthz", timeout=2).status_code == 200:
                        break
                except requests.RequestException:
                    pass
                time.sleep(0.3)
            health = requests.get(url + "/healthz", timeout=5)
            assert health.status_code == 200, (health.text, (tmp_path / "gunicorn.log").read_text()[-3000:])
            for n in range(12):
                body = json.dumps({"ticket": {"id": 900 + n}}).encode()
                answer = requests.post(url + "/webhooks/zammad", data=body, timeout=5, headers={
                    "Content-Type": "application/json", "X-Zammad-Delivery": uuid.uuid4().hex,
                    "X-Hub-Signature": zammad_signature(body, "g-token")})
                assert answer.status_code == 202, answer.text
            # What a worker killed between creating its metrics file and sizing it leaves behind
            # (prometheus/client_python#1199); a scrape in that window reads the same.
            (tmp_path / "metrics" / "counter_4242424.db").write_bytes(b"")
            totals = []
            for _ in range(8):  # each scrape may be answered by either worker
                text = requests.get(url + "/metrics", timeout=5).text
                found = re.search(r'policydesk_events_received_total\{outcome="new",source="zammad"\} ([\d.]+)', text)
                totals.append(float(found.group(1)) if found else 0.0)
                if not found:
                    print(f"\nscrape without the counter: {text[:2000]}")
            pids = set(re.findall(r"Booting worker with pid: (\d+)", (tmp_path / "gunicorn.log").read_text()))
            print(f"\ngunicorn: {len(pids)} workers; received_total seen by 8 scrapes: {totals}")
            assert len(pids) == 2 and totals == [12.0] * 8
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
            log.close()
