"""Fixtures for the Zammad stand-in tests: a running stand-in and a webhook receiver."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

import pytest

from integrations.zammad_standin import running_standin
from zammad_api import Api


def recordings_dir() -> Path:
    """The recorded real-Zammad cassettes kept in the repository."""
    return Path(__file__).resolve().parent / "zammad_standin" / "recordings"


@pytest.fixture
def standin() -> Iterator[Any]:
    with running_standin(webhook_backoff=0.02) as zammad:
        yield zammad


@pytest.fixture(params=[True, False], ids=["elasticsearch", "no-elasticsearch"])
def standin_any_search(request: pytest.FixtureRequest) -> Iterator[Any]:
    """The stand-in twice: as a Zammad with Elasticsearch and as one without (search on the database)."""
    with running_standin(webhook_backoff=0.02, elasticsearch=request.param) as zammad:
        yield zammad


@pytest.fixture
def standin_no_es() -> Iterator[Any]:
    """A stand-in Zammad without Elasticsearch: ``tickets/search?query=`` is a LIKE, not query syntax."""
    with running_standin(webhook_backoff=0.02, elasticsearch=False) as zammad:
        yield zammad


@pytest.fixture
def api(standin: Any) -> Api:
    return Api(standin.url, standin.admin_token)


class Receiver:
    """A loopback HTTP server recording webhook requests (POST and GET); answers with ``statuses``
    in turn (then 200); a 3xx status redirects to ``redirect_to`` (default: ``/landed``)."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.statuses: list[int] = []
        self.redirect_to = "/landed"
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.lock:
                    receiver.requests.append({"method": self.command, "path": self.path,
                                              "headers": dict(self.headers), "body": body})
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", receiver.redirect_to)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            do_POST = _answer  # noqa: N815
            do_GET = _answer  # noqa: N815

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def payloads(self) -> list[Any]:
        return [json.loads(r["body"]) for r in self.requests]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver()
    yield rec
    rec.close()


@pytest.fixture
def api_class() -> type[Api]:
    return Api


@pytest.fixture(scope="session")
def recordings() -> Path:
    return recordings_dir()
