"""`policydesk serve` stops on SIGTERM/SIGINT even while clients hold keep-alive connections open."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from service_harness import ServiceProcess  # noqa: E402

from integrations.serving import run_until  # noqa: E402
from integrations.zammad_standin import running_standin  # noqa: E402


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_serve_exits_promptly_with_a_kept_alive_connection_open(tmp_path, sig):
    with running_standin() as zammad:
        svc = ServiceProcess(zammad.url, f"sqlite:///{tmp_path / 'policydesk.db'}", tmp_path / "service.log").start()
        sessions = [requests.Session() for _ in range(3)]
        try:
            for session in sessions:  # several idle keep-alive connections, as a load balancer keeps
                response = session.get(svc.url + "/healthz", timeout=5)
                assert response.status_code == 200
                assert response.headers.get("Connection", "").lower() != "close"
            started = time.monotonic()
            svc.proc.send_signal(sig)
            try:
                code = svc.proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                svc.proc.kill()
                svc.proc.wait(timeout=10)
                pytest.fail(f"policydesk serve did not exit within 2 s of signal {sig!r}:\n{svc.log()}")
            assert code == 0, svc.log()
            assert time.monotonic() - started < 2
            assert "shutting down" in svc.log()
        finally:
            for session in sessions:
                session.close()
            svc.stop()


def test_run_until_closes_kept_alive_channels_when_the_event_is_set():
    from waitress.server import create_server

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
        return [b"ok"]

    server = create_server(app, host="127.0.0.1", port=0, threads=2)
    stopping = threading.Event()
    thread = threading.Thread(target=run_until, args=(server, stopping), daemon=True)
    thread.start()
    session = requests.Session()
    try:
        assert session.get(f"http://127.0.0.1:{server.effective_port}/", timeout=5).text == "ok"
        stopping.set()
        thread.join(timeout=2)
        assert not thread.is_alive()
        assert not server._map  # listening socket and the kept-alive channel are closed
    finally:
        session.close()
