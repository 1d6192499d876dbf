"""`ZammadSession` reads the environment's proxy settings once, and still follows them."""

from __future__ import annotations

import http.server
import threading
import urllib.request

import pytest

from integrations.zammad.resources import ZammadSession


class _Recorder(http.server.BaseHTTPRequestHandler):
    """Answers every GET with 200 and remembers the request line (a proxy sees absolute URLs)."""

    seen: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        type(self).seen.append(self.path)
        body = b"{}"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    _Recorder.seen = []
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    httpd.server_close()


def test_proxies_from_the_environment_are_followed_and_read_once(server, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", server)  # the recorder acts as the proxy
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    reads = []
    real = urllib.request.getproxies_environment
    monkeypatch.setattr(urllib.request, "getproxies_environment", lambda: reads.append(1) or real())
    session = ZammadSession(timeout=5)
    for _ in range(5):
        assert session.get("http://zammad.example/api/v1/users/me").status_code == 200
    # Through the proxy: the request line is the absolute URL.
    assert _Recorder.seen == ["http://zammad.example/api/v1/users/me"] * 5
    assert 0 < len(reads) <= 2  # once for the origin (requests asks twice), not per request

    # A host in NO_PROXY is asked directly: the request line is the path alone.
    assert session.get(server + "/api/v1/users/me").status_code == 200
    assert _Recorder.seen[5:] == ["/api/v1/users/me"]
