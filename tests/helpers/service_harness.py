"""Running the real `policydesk serve` process next to the Zammad stand-in, for end-to-end tests."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Callable

import requests

from integrations.signing import billing_signature, zammad_signature

REPO = Path(__file__).resolve().parents[2]
WEBHOOK_TOKEN = "e2e-webhook-signing-token"
BILLING_SECRET = "e2e-billing-secret"
POLICYDESK_TOKEN = "standin-policydesk-token"  # the seed's policydesk API user
ADMIN_TOKEN = "standin-admin-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate: Callable[[], Any], timeout: float = 15.0, interval: float = 0.05, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        time.sleep(interval)


class ServiceProcess:
    """`python -m integrations.cli serve` in a child process, with its output in a log file."""

    def __init__(self, zammad_url: str, store_url: str, log_path: Path, policies: Path = REPO / "policies",
                 port: int | None = None, **env: str) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.store_url = store_url
        self.log_path = log_path
        self.env = {
            **os.environ,
            "ZAMMAD_URL": zammad_url,
            "ZAMMAD_TOKEN": POLICYDESK_TOKEN,
            "ZAMMAD_TIMEOUT": "3",
            "POLICYDESK_ZAMMAD_WEBHOOK_TOKEN": WEBHOOK_TOKEN,
            "POLICYDESK_BILLING_SECRET": BILLING_SECRET,
            "POLICYDESK_RETRY_BASE": "0.2",
            "POLICYDESK_LEASE": "3",
            "POLICYDESK_LOG_LEVEL": "INFO",
            **env,
        }
        self.policies = policies
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> "ServiceProcess":
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "integrations.cli", "serve", "--listen", f"127.0.0.1:{self.port}",
             "--store", self.store_url, "--policies", str(self.policies)],
            cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT,
        )
        log.close()
        wait_until(self._healthy, timeout=30, what=f"service on {self.url} (log: {self.log_path})")
        return self

    def _healthy(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"service exited with {self.proc.returncode}:\n{self.log()}")
        try:
            return requests.get(self.url + "/livez", timeout=1).status_code == 200
        except requests.ConnectionError:
            return False

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=20)

    def stop(self) -> None:
        """SIGTERM; a clean exit is tested in test_serve_shutdown.py, so here a stuck one is killed."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    # -- talking to it as Zammad and the billing system do ---------------------------

    def post_zammad(self, payload: dict[str, Any] | bytes, delivery: str | None = None,
                    token: str = WEBHOOK_TOKEN, **headers: str) -> requests.Response:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        return requests.post(self.url + "/webhooks/zammad", data=body, timeout=10, headers={
            "Content-Type": "application/json; charset=utf-8",
            "X-Zammad-Trigger": "policydesk e2e",
            "X-Zammad-Delivery": delivery or uuid.uuid4().hex,
            "X-Hub-Signature": zammad_signature(body, token),
            **headers,
        })

    def post_billing(self, event: dict[str, Any], secret: str = BILLING_SECRET,
                     timestamp: int | None = None) -> requests.Response:
        body = json.dumps(event).encode()
        stamp = int(time.time()) if timestamp is None else timestamp
        return requests.post(self.url + "/webhooks/billing", data=body, timeout=10, headers={
            "Content-Type": "application/json",
            "Policydesk-Signature": billing_signature(body, secret, stamp),
        })


def sync_zammad(zammad_url: str, service_url: str, policies: Path = REPO / "policies") -> str:
    """Run `policydesk sync` against the stand-in, as an admin would: it creates the attributes,
    calendars, SLAs, the signed webhook pointing at the service, and the triggers."""
    env = {**os.environ, "ZAMMAD_URL": zammad_url, "ZAMMAD_TOKEN": POLICYDESK_TOKEN,
           "POLICYDESK_ZAMMAD_WEBHOOK_TOKEN": WEBHOOK_TOKEN}
    result = subprocess.run([sys.executable, "-m", "integrations.cli", "sync", "--webhook-url", service_url,
                             "--policies", str(policies)], cwd=REPO, env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout
