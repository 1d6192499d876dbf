"""The service's front door as an operator sees it: health that tells the truth, metrics with
bounded labels, strict JSON, nothing echoed, admin endpoints protected or apart."""

from __future__ import annotations

import io
import json
import logging
import re
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Any

import pytest

from integrations.service.app import ServiceSecrets, WebhookService
from integrations.service.health import HealthCheck, ZammadProbe
from integrations.service.metrics import Metrics, code
from integrations.serving import BackgroundServer
from integrations.signing import zammad_signature
from integrations.store import open_store

TOKEN = "ops-webhook-token"
REPO = Path(__file__).resolve().parents[3]


def call(app: Any, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None,
         length: str | None = "auto") -> tuple[int, dict[str, str], bytes]:
    environ: dict[str, Any] = {"REQUEST_METHOD": method, "PATH_INFO": path, "wsgi.input": io.BytesIO(body)}
    if length == "auto":
        environ["CONTENT_LENGTH"] = str(len(body))
    elif length is not None:
        environ["CONTENT_LENGTH"] = length
    for name, value in (headers or {}).items():
        key = name.upper().replace("-", "_")
        environ[key if key == "CONTENT_TYPE" else "HTTP_" + key] = value
    seen: dict[str, Any] = {}
    out = b"".join(app(environ, lambda status, hdrs: seen.update(status=status, headers=dict(hdrs))))
    return int(seen["status"].split()[0]), seen["headers"], out


def signed(body: bytes, delivery: str | None = None) -> dict[str, str]:
    return {"Content-Type": "application/json", "X-Zammad-Delivery": delivery or uuid.uuid4().hex,
            "X-Hub-Signature": zammad_signature(body, TOKEN)}


@pytest.fixture
def app(tmp_path):
    store = open_store(tmp_path / "ops.db")
    yield WebhookService(store, ServiceSecrets(TOKEN, "billing-secret"), Metrics())
    store.close()


def series(app: WebhookService) -> int:
    return sum(1 for line in app.metrics.render().decode().splitlines() if line and not line.startswith("#"))


def test_random_paths_create_no_series_and_are_not_echoed(app, caplog):
    caplog.set_level(logging.ERROR, logger="policydesk.service")  # 20,000 warnings would only slow the test
    call(app, "POST", "/webhooks/first")
    before = series(app)
    for n in range(20_000):
        status, headers, body = call(app, "POST", f"/webhooks/{uuid.uuid4().hex}{n}")
        assert status == 404
    assert series(app) == before
    status, headers, body = call(app, "GET", "/webhooks/<script>secret-path")
    assert status == 404 and headers["Content-Type"] == "application/json"
    assert json.loads(body) == {"error": "no such endpoint"}
    text = app.metrics.render().decode()
    assert 'endpoint="other",status="404"' in text and "secret-path" not in text


def test_label_values_are_short_snake_case_codes():
    assert code("skipped: own update") == "skipped_own_update"
    assert code("Applied (3 changes)") == "applied_3_changes"
    assert code("x" * 500) == "x" * 40
    assert code("weird", frozenset({"ok"})) == "other"


@pytest.mark.parametrize("body, message", [
    (b'{"ticket": {"id": 1}, "x": NaN}', "NaN is not a JSON number"),
    (b'{"ticket": {"id": 1}, "x": Infinity}', "Infinity is not a JSON number"),
    (b'{"ticket": {"id": 1}, "x": -Infinity}', "-Infinity is not a JSON number"),
    (b'{"ticket": {"id": 1}, "ticket": {"id": 2}}', "duplicate key 'ticket'"),
    (b'{"ticket": {"id": 1, "id": 1}}', "duplicate key 'id'"),
])
def test_zammad_endpoint_refuses_nan_infinity_and_duplicate_keys(app, tmp_path, body, message):
    status, _, answer = call(app, "POST", "/webhooks/zammad", body, signed(body))
    assert status == 400 and message in json.loads(answer)["error"]
    assert app.store.counts().get("pending", 0) == 0


def test_422_messages_are_cut_in_the_answer_and_the_log(tmp_path, caplog):
    store = open_store(tmp_path / "b.db")
    huge = "v" * 900_000
    service = WebhookService(store, ServiceSecrets(TOKEN, "billing-secret"), Metrics(),
                             billing=lambda event, body, now: (422, {"error": f"plan: {huge} is not one of ..."}))
    from integrations.signing import billing_signature

    body = b'{"id": "e1"}'
    import time as _time

    status, _, answer = call(service, "POST", "/webhooks/billing", body, {
        "Content-Type": "application/json", "Policydesk-Signature": billing_signature(body, "billing-secret",
                                                                                      int(_time.time()))})
    store.close()
    assert status == 422 and len(answer) < 400 and json.loads(answer)["error"].endswith("…")
    assert max(len(r.getMessage()) for r in caplog.records) < 600


def test_admin_token_guards_healthz_and_metrics(tmp_path):
    store = open_store(tmp_path / "a.db")
    service = WebhookService(store, ServiceSecrets(TOKEN, "b"), Metrics(), admin_token="s3cret-admin")
    try:
        assert call(service, "GET", "/healthz")[0] == 401
        assert call(service, "GET", "/metrics", headers={"Authorization": "Bearer wrong"})[0] == 401
        assert call(service, "GET", "/healthz", headers={"Authorization": "Bearer s3cret-admin"})[0] == 200
        assert call(service, "GET", "/metrics", headers={"Authorization": "Bearer s3cret-admin"})[0] == 200
        assert call(service, "GET", "/livez")[0] == 200  # says nothing but "up"
    finally:
        store.close()


def test_split_admin_moves_healthz_and_metrics_off_the_public_app(app):
    admin = app.split_admin()
    assert call(app, "GET", "/metrics")[0] == 404 and call(app, "GET", "/healthz")[0] == 404
    assert call(admin, "GET", "/metrics")[0] == 200 and call(admin, "GET", "/healthz")[0] == 200
    body = b'{"ticket": {"id": 5}}'
    assert call(app, "POST", "/webhooks/zammad", body, signed(body))[0] == 202
    assert call(admin, "POST", "/webhooks/zammad", body, signed(body))[0] == 404


def test_metrics_have_build_info_process_metrics_and_the_new_counters(app):
    text = app.metrics.render().decode()
    from plugin.version import __version__

    assert re.search(rf'policydesk_build_info\{{python="[\d.]+",version="{re.escape(__version__)}"\}} 1.0', text)
    for name in ("process_resident_memory_bytes", "policydesk_zammad_errors_total",
                 "policydesk_policy_reloads_refused_total", "policydesk_purged_rows_total",
                 "policydesk_oldest_pending_job_age_seconds"):
        assert name in text, name

    class Refused(Exception):
        status = 401

    app.metrics.zammad_error(Refused())
    app.metrics.zammad_error(TimeoutError())
    text = app.metrics.render().decode()
    assert 'policydesk_zammad_errors_total{status_class="4xx"} 1.0' in text
    assert 'policydesk_zammad_errors_total{status_class="no_response"} 1.0' in text


# --------------------------------------------------------------------------- health


def fake_zammad(users: dict[str, tuple[int, dict[str, Any]]], calls: list[str]) -> Any:
    def app(environ: Any, start_response: Any) -> list[bytes]:
        calls.append(environ["PATH_INFO"])
        token = environ.get("HTTP_AUTHORIZATION", "").rpartition("=")[2]
        status, body = users.get(token, (401, {"error": "authentication failed"}))
        start_response(f"{status} X", [("Content-Type", "application/json")])
        return [json.dumps(body).encode()]

    return app


def test_healthz_checks_zammad_token_and_user_and_caches_it(app):
    calls: list[str] = []
    users = {"bot": (200, {"id": 3, "login": "policydesk@example.com"}),
             "admin": (200, {"id": 1, "login": "admin@example.com"})}
    with BackgroundServer(fake_zammad(users, calls)) as zammad:
        def health(token: str, login: str | None = "policydesk@example.com", cache: float = 0) -> tuple[int, Any]:
            probe = ZammadProbe(zammad.url, token, expected_login=login, cache_seconds=cache)
            app.health = HealthCheck(app.store.ping, probe)
            status, _, body = call(app, "GET", "/healthz")
            return status, json.loads(body)

        assert health("bot") == (200, {"status": "ok", "zammad": {"status": "ok", "user": "policydesk@example.com"}})
        status, body = health("nope")
        assert (status, body["reasons"]) == (503, ["zammad_token_refused"])
        status, body = health("admin")
        assert (status, body["status"], body["reasons"]) == (503, "degraded", ["zammad_wrong_user"])
        calls.clear()
        probe = ZammadProbe(zammad.url, "bot", cache_seconds=60)
        app.health = HealthCheck(app.store.ping, probe)
        for _ in range(5):
            assert call(app, "GET", "/healthz")[0] == 200
        assert calls == ["/api/v1/users/me"]  # cached
    app.health = HealthCheck(app.store.ping, ZammadProbe(zammad.url, "bot", cache_seconds=0, timeout=0.5))
    status, _, body = call(app, "GET", "/healthz")  # Zammad is gone now
    assert (status, json.loads(body)["reasons"]) == (503, ["zammad_unreachable"])


def test_healthz_reports_a_store_that_is_down_and_a_refused_reload(app):
    def down() -> None:
        raise OSError("database is down")

    app.health = HealthCheck(down, None, lambda: ["policies/plans.yaml:3:4: $.plans: bad"])
    status, _, body = call(app, "GET", "/healthz")
    answer = json.loads(body)
    assert status == 503 and answer["status"] == "unavailable"
    assert answer["reasons"] == ["store_unavailable", "policy_reload_refused"]
    assert answer["policy_errors"] == ["policies/plans.yaml:3:4: $.plans: bad"]
    assert call(app, "GET", "/livez")[0] == 503


def test_a_refused_reload_counts_in_the_metrics(tmp_path):
    import shutil

    from integrations.service.policies import PolicyHolder

    directory = tmp_path / "policies"
    shutil.copytree(REPO / "policies", directory)
    metrics = Metrics()
    holder = PolicyHolder(str(directory), on_refused=lambda errors: metrics.reloads_refused.inc())
    plans = directory / "plans.yaml"
    plans.write_text(plans.read_text().replace("first_response: 2h", "first_response: two hours", 1))
    import os

    os.utime(plans, ns=(1, 1))
    assert holder.reload_if_changed() is False and holder.errors
    assert "policydesk_policy_reloads_refused_total 1.0" in metrics.render().decode()


def test_counters_add_up_across_processes_in_multiprocess_mode(tmp_path):
    """What several gunicorn workers do: each process counts, any one of them renders the sum."""
    directory = tmp_path / "prom"
    directory.mkdir()
    script = textwrap.dedent("""
        import sys
        from integrations.service.metrics import Metrics
        m = Metrics()
        if sys.argv[1] == "count":
            for _ in range(int(sys.argv[2])):
                m.received.labels(source="zammad", outcome="new").inc()
        else:
            sys.stdout.write(m.render().decode())
    """)
    env = {"PROMETHEUS_MULTIPROC_DIR": str(directory), "PATH": "/usr/bin:/bin"}
    for n in (3, 4):
        subprocess.run([sys.executable, "-c", script, "count", str(n)], env=env, check=True, cwd=REPO)
    out = subprocess.run([sys.executable, "-c", script, "render"], env=env, check=True, cwd=REPO,
                         capture_output=True, text=True).stdout
    assert 'policydesk_events_received_total{outcome="new",source="zammad"} 7.0' in out
    assert "policydesk_build_info" in out
    assert re.search(r'policydesk_worker_resident_memory_bytes\{pid="\d+"\} [1-9]', out), out


def test_oldest_pending_job_age_gauge(app):
    import datetime as dt

    now = dt.datetime.now(dt.timezone.utc)
    app.store.receive("zammad", "old-one", b'{"ticket": {"id": 1}}', {}, now - dt.timedelta(seconds=120))
    app.metrics.refresh(app.store, now)
    found = re.search(r"policydesk_oldest_pending_job_age_seconds ([\d.e+]+)", app.metrics.render().decode())
    assert found and 110 <= float(found.group(1)) <= 130


def test_zammad_sandbox_prints_url_bot_token_and_admin_token(tmp_path):
    import os
    import signal
    import time

    import requests
    from service_harness import free_port

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", "import sys; from integrations.cli import main; sys.exit(main())",
                             "zammad-sandbox", "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        lines = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any(line.startswith("Stop with") for line in lines):
            lines.append(proc.stdout.readline().strip())
        text = "\n".join(lines)
        assert f"Zammad stand-in at http://127.0.0.1:{port}" in text, text
        bot = re.search(r"policydesk's token \(the bot user policydesk@example.com\): (\S+)", text).group(1)
        admin = re.search(r"admin token \(for trying things by hand[^)]*\): (\S+)", text).group(1)
        me = lambda token: requests.get(f"http://127.0.0.1:{port}/api/v1/users/me", timeout=5,  # noqa: E731
                                        headers={"Authorization": f"Token token={token}"}).json()["login"]
        assert me(bot) == "policydesk@example.com" and me(admin) != "policydesk@example.com"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
    assert proc.returncode == 0
