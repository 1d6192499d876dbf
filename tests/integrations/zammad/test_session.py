"""`ZammadSession` reads the environment's proxy settings once, and still follows them."""

from __future__ import annotations

import http.server
import threading
import urllib.request

import pytest
import requests

from integrations.zammad.errors import ZammadError
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


def _serving(handler: type[http.server.BaseHTTPRequestHandler]):
    """A loopback server for ``handler`` (its ``seen`` emptied first); yields its URL."""
    handler.seen = []  # type: ignore[attr-defined]
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def server():
    yield from _serving(_Recorder)


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


class _Echo(http.server.BaseHTTPRequestHandler):
    """Remembers each request whole; answers 200 with a session cookie, or a redirect for /moved."""

    protocol_version = "HTTP/1.1"
    seen: list[dict[str, object]] = []

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        type(self).seen.append({"method": self.command, "path": self.path, "body": self.rfile.read(length),
                                "headers": {k.lower(): v for k, v in self.headers.items()}})
        if self.path.startswith("/moved"):
            self.send_response(301)
            self.send_header("Location", "https://zammad.example/api/v1/users/me?token=secret")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = b'{"id": 1}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Set-Cookie", "_zammad_session_1=abc; path=/")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = _answer  # noqa: N815 - http.server's names

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def echo():
    yield from _serving(_Echo)


CALLS = [
    ("GET", "/api/v1/tickets/search", {"params": {"query": "state.name:open äöü", "per_page": 100, "page": 2}}),
    ("PUT", "/api/v1/tickets/7", {"json": {"title": "Ünïcode", "policydesk_fingerprint": None, "tags": ["a"]}}),
    ("POST", "/api/v1/tags/add", {"json": {"item": "vip", "object": "Ticket", "o_id": 7},
                                  "headers": {"X-On-Behalf-Of": "anna", "Accept": None}}),
    ("DELETE", "/api/v1/mentions/3", {}),
    ("POST", "/api/v1/upload", {"data": b"raw bytes", "headers": {"Content-Type": "application/octet-stream"}}),
]


def _plain_session() -> requests.Session:
    plain = requests.Session()
    plain.trust_env = False
    return plain


@pytest.mark.parametrize("method, path, kwargs", CALLS, ids=[f"{m} {p}" for m, p, _ in CALLS])
def test_an_api_call_goes_out_as_requests_would_send_it(echo, method, path, kwargs):
    """The lean path (`ZammadSession._lean_request`) against requests' own Session.request:
    the same request line, query, body and headers reach the server."""
    sent = []
    for session in (ZammadSession(timeout=5), _plain_session()):
        session.headers.update({"Authorization": "Token token=t0ken", "User-Agent": "policydesk-test"})
        session.request(method, echo + path, timeout=5, **kwargs)
        sent.append(_Echo.seen.pop())
    ours, theirs = sent
    assert ours == theirs
    assert ours["headers"]["authorization"] == "Token token=t0ken"


def test_basic_auth_on_the_session_is_sent(echo):
    session = ZammadSession(timeout=5)
    session.auth = ("admin@example.com", "secret")
    session.get(echo + "/api/v1/users/me")
    assert _Echo.seen[-1]["headers"]["authorization"] == "Basic YWRtaW5AZXhhbXBsZS5jb206c2VjcmV0"


def test_zammads_session_cookie_is_not_sent_back(echo):
    """The API token authenticates every call; a session cookie would only add state."""
    session = ZammadSession(timeout=5)
    session.get(echo + "/api/v1/users/me")
    session.get(echo + "/api/v1/users/me")
    assert "cookie" not in _Echo.seen[-1]["headers"]


def test_a_redirect_is_refused_with_where_it_leads(echo):
    """Zammad's API never redirects; ZAMMAD_URL pointing at http:// behind an https
    redirect would turn every write into a GET if followed."""
    session = ZammadSession(timeout=5)
    with pytest.raises(ZammadError) as caught:
        session.post(echo + "/moved", json={"title": "x"})
    message = str(caught.value)
    assert caught.value.status == 301
    assert "https://zammad.example/api/v1/users/me" in message and "ZAMMAD_URL" in message
    assert "secret" not in message  # the query is not shown
    assert [r["method"] for r in _Echo.seen] == ["POST"]  # asked once, not followed
