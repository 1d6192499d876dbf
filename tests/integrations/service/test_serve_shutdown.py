"""`policydesk serve` stops on SIGTERM/SIGINT even while clients hold keep-alive connections open."""

from __future__ import annotations

import signal
import socket
import subprocess
import time

import pytest
import requests

from service_harness import ServiceProcess  # noqa: E402

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
            # a path that tries to write a line of its own into the log (issue 13 item 7)
            forged = requests.post(svc.url + "/webhooks/x%0A2026-01-01T00:00:00%20INFO%20policydesk:%20forged", timeout=5)
            assert forged.status_code == 404 and "forged" not in forged.text
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
            log = svc.log()
            assert "shutting down" in log
            serving = [line for line in log.splitlines() if "serving on" in line]
            assert len(serving) == 1 and "store sqlite:///" in serving[0] and "policies " in serving[0], serving
            assert not [line for line in log.splitlines() if line.startswith("2026-01-01T00:00:00 INFO")]
            assert "\\n2026-01-01T00:00:00 INFO policydesk: forged" in log
        finally:
            for session in sessions:
                session.close()
            svc.stop()


def test_background_server_closes_kept_alive_channels_when_stopped():
    from integrations.serving import BackgroundServer

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
        return [b"ok"]

    server = BackgroundServer(app, threads=2).start()
    client = socket.create_connection((server.host, server.port), timeout=5)
    try:
        client.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert client.recv(4096).endswith(b"\r\n\r\nok")  # answered, and kept alive
        started = time.monotonic()
        server.stop(timeout=2)
        assert time.monotonic() - started < 2 and not server._thread.is_alive()
        assert client.recv(4096) == b""  # the kept-alive connection was closed by the server
        assert server.server.sock.fileno() == -1 and not server.server.connections
        with pytest.raises(OSError):
            socket.create_connection((server.host, server.port), timeout=2).close()
    finally:
        client.close()
