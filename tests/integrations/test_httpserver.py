"""The service's HTTP server (`integrations.httpserver`): framing, keep-alive, limits, and
webhooks answered from the event loop only once the group commit has made them durable.

Real sockets over loopback, bytes written by hand, so what is tested is what a client sends.
"""

from __future__ import annotations

import datetime as dt
import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from integrations.httpserver import BadRequest, dechunk, parse_head
from integrations.service.app import ServiceSecrets, WebhookService
from integrations.service.metrics import Metrics
from integrations.serving import BackgroundServer
from integrations.signing import zammad_signature
from integrations.store import open_store

TOKEN = "http-token"


def echo_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """Answers what it was given, as JSON."""
    body = environ["wsgi.input"].read()
    seen = {"method": environ["REQUEST_METHOD"], "path": environ["PATH_INFO"], "query": environ["QUERY_STRING"],
            "length": environ.get("CONTENT_LENGTH", ""), "body": body.decode("latin-1"),
            "headers": {k: v for k, v in environ.items() if k.startswith("HTTP_")}}
    out = json.dumps(seen).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(out)))])
    return [out]


@pytest.fixture
def echo() -> Iterator[BackgroundServer]:
    with BackgroundServer(echo_app, threads=2, max_body_bytes=1000, header_timeout=2.0) as server:
        yield server


def connect(server: BackgroundServer) -> socket.socket:
    return socket.create_connection((server.host, server.port), timeout=5)


def read_response(sock: socket.socket, buffer: bytearray) -> tuple[int, dict[str, str], bytes]:
    """One response from ``sock`` (what is read beyond it stays in ``buffer``)."""
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed before a response")
        buffer += chunk
    end = buffer.index(b"\r\n\r\n")
    lines = bytes(buffer[:end]).decode("latin-1").split("\r\n")
    del buffer[:end + 4]
    status = int(lines[0].split(" ")[1])
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(buffer) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed inside a response")
        buffer += chunk
    body = bytes(buffer[:length])
    del buffer[:length]
    return status, headers, body


def closed_by_server(sock: socket.socket) -> bool:
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


@pytest.mark.parametrize("head, status", [
    (b"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked", 400),  # smuggling's classic
    (b"POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4", 400),
    (b"POST / HTTP/1.1\r\nContent-Length: +3", 400),
    (b"POST / HTTP/1.1\r\nContent-Length: 0x3", 400),
    (b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked", 501),
    (b"GET / HTTP/1.1\r\nHost: x\r\n folded: on", 400),
    (b"GET / HTTP/1.1\r\nHost : x", 400),  # a space before the colon
    (b"GET / HTTP/1.1\r\nHost: x\nX-Bare: lf", 400),
    (b"GET / HTTP/1.1\r\nX-Nul: a\x00b", 400),
    (b"GET / HTTP/2.0", 400),
    (b"GET  / HTTP/1.1", 400),
    (b"get / HTTP/1.1", 400),
])
def test_ambiguous_framing_is_refused(head: bytes, status: int) -> None:
    with pytest.raises(BadRequest) as refused:
        parse_head(head)
    assert refused.value.status == status


def test_a_well_formed_head_is_read_as_sent() -> None:
    request = parse_head(b"POST /webhooks/zammad?x=1 HTTP/1.1\r\nContent-Length: 12\r\nContent-Length: 12\r\n"
                         b"X-Hub-Signature:  sha1=ab \t\r\nConnection: Keep-Alive, Upgrade\r\nExpect: 100-continue")
    assert (request.method, request.target, request.version, request.length) == ("POST", b"/webhooks/zammad?x=1",
                                                                                  "1.1", 12)
    assert ("X-Hub-Signature", "sha1=ab") in request.headers
    assert request.keep_alive and request.expect_continue and not request.chunked
    assert not parse_head(b"GET / HTTP/1.0").keep_alive
    assert parse_head(b"GET / HTTP/1.0\r\nConnection: keep-alive").keep_alive
    assert not parse_head(b"GET / HTTP/1.1\r\nConnection: close").keep_alive


def test_chunked_bodies_are_decoded_strictly() -> None:
    assert dechunk(b"3\r\nabc\r\n0\r\n\r\nNEXT", 100) == (b"abc", 13)
    assert dechunk(b"3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nTrailer: x\r\n\r\n", 100) == (b"abcde", 38)
    assert dechunk(b"3\r\nab", 100) is None  # incomplete: wait for more
    assert dechunk(b"3\r\nabc\r\n0\r\n", 100) is None
    for bad, status in ((b"3\r\nabcX\r\n", 400), (b"-3\r\nabc\r\n", 400), (b"zz\r\n", 400),
                        (b"65\r\n" + b"a" * 101, 413)):
        with pytest.raises(BadRequest) as refused:
            dechunk(bad, 100)
        assert refused.value.status == status


def test_pipelined_requests_are_answered_in_order(echo: BackgroundServer) -> None:
    with connect(echo) as sock:
        buffer = bytearray()
        sock.sendall(b"GET /one HTTP/1.1\r\nHost: x\r\n\r\n"
                     b"POST /two?q=%C3%A9 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
                     b"\r\nGET /th%20ree HTTP/1.1\r\nHost: x\r\n\r\n")
        answers = [json.loads(read_response(sock, buffer)[2]) for _ in range(3)]
        assert [(a["method"], a["path"]) for a in answers] == [("GET", "/one"), ("POST", "/two"), ("GET", "/th ree")]
        assert answers[1]["body"] == "hello" and answers[1]["length"] == "5" and answers[1]["query"] == "q=%C3%A9"


def test_a_chunked_post_reaches_the_app_with_its_length(echo: BackgroundServer) -> None:
    with connect(echo) as sock:
        buffer = bytearray()
        sock.sendall(b"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nwiki\r\n")
        time.sleep(0.1)  # the rest later: the body is waited for
        sock.sendall(b"5\r\npedia\r\n0\r\n\r\n")
        status, _, body = read_response(sock, buffer)
        assert status == 200 and json.loads(body)["body"] == "wikipedia" and json.loads(body)["length"] == "9"
        sock.sendall(b"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n7d0\r\n" + b"a" * 2000)
        status, headers, body = read_response(sock, buffer)
        assert status == 413 and headers["connection"] == "close" and json.loads(body) == {
            "error": "request body too large"}
        assert closed_by_server(sock)


def test_expect_100_continue_is_answered_before_the_body(echo: BackgroundServer) -> None:
    with connect(echo) as sock:
        buffer = bytearray()
        sock.sendall(b"POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
        assert read_response(sock, buffer)[0] == 100
        sock.sendall(b"body")
        status, _, body = read_response(sock, buffer)
        assert status == 200 and json.loads(body)["body"] == "body"
        sock.sendall(b"POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n")
        assert read_response(sock, buffer)[0] == 413  # too large: refused, not continued


def test_http_1_0_is_closed_unless_it_asks_to_be_kept(echo: BackgroundServer) -> None:
    with connect(echo) as sock:
        buffer = bytearray()
        sock.sendall(b"GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        status, headers, _ = read_response(sock, buffer)
        assert status == 200 and headers["connection"] == "keep-alive"
        sock.sendall(b"GET /b HTTP/1.0\r\n\r\n")
        status, headers, _ = read_response(sock, buffer)
        assert status == 200 and headers["connection"] == "close" and closed_by_server(sock)


def test_a_header_spelled_with_underscores_cannot_pass_for_another(echo: BackgroundServer) -> None:
    with connect(echo) as sock:
        buffer = bytearray()
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX_Hub_Signature: forged\r\nX-Trace: a\r\nX-Trace: b\r\n\r\n")
        headers = json.loads(read_response(sock, buffer)[2])["headers"]
        assert "HTTP_X_HUB_SIGNATURE" not in headers and headers["HTTP_X_TRACE"] == "a, b"


def test_missing_length_oversized_heads_and_garbage_get_json_refusals(echo: BackgroundServer) -> None:
    for request, status in ((b"POST /x HTTP/1.1\r\nHost: x\r\n\r\n", 411),
                            (b"GET / HTTP/1.1\r\nX-Big: " + b"a" * (300 * 1024), 431),
                            (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 400)):  # TLS on the HTTP port
        with connect(echo) as sock:
            buffer = bytearray()
            try:
                sock.sendall(request)
            except (BrokenPipeError, ConnectionResetError):
                pass
            got, headers, body = read_response(sock, buffer)
            assert got == status and headers["connection"] == "close" and "error" in json.loads(body)


def test_past_the_connection_limit_a_client_waits_until_one_closes() -> None:
    with BackgroundServer(echo_app, threads=2, connection_limit=2) as server:
        first, second = connect(server), connect(server)
        buffers = [bytearray(), bytearray()]
        for sock, buffer in zip((first, second), buffers):
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert read_response(sock, buffer)[0] == 200
        third, buffer = connect(server), bytearray()  # the kernel accepts; the server does not yet
        third.settimeout(0.5)
        third.sendall(b"GET /third HTTP/1.1\r\nHost: x\r\n\r\n")
        with pytest.raises(socket.timeout):
            third.recv(1)
        first.close()
        third.settimeout(5)
        assert json.loads(read_response(third, buffer)[2])["path"] == "/third"
        second.close()
        third.close()


# --------------------------------------------------------------------------- webhooks and the group commit


def webhook(ticket_id: int) -> bytes:
    body = json.dumps({"ticket": {"id": ticket_id}}).encode()
    return (b"POST /webhooks/zammad HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"X-Hub-Signature: {zammad_signature(body, TOKEN)}\r\nX-Zammad-Delivery: {uuid.uuid4()}\r\n".encode()
            + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)


def test_webhooks_are_answered_after_their_commit_and_share_it(tmp_path) -> None:
    store = open_store(tmp_path / "loop.db")
    app = WebhookService(store, ServiceSecrets(TOKEN, "b"), Metrics())
    group = store._group  # type: ignore[attr-defined]
    write, held, release = group._write, threading.Event(), threading.Event()

    def held_write(items: Any) -> Any:
        if not held.is_set():  # the first commit waits until released
            held.set()
            release.wait(10)
        return write(items)

    group._write = held_write
    socks = []
    try:
        with BackgroundServer(app, threads=2) as server:
            first = connect(server)
            socks.append(first)
            first.sendall(webhook(1))
            assert held.wait(5)
            others = [connect(server) for _ in range(5)]
            socks.extend(others)
            for n, sock in enumerate(others, start=2):
                sock.sendall(webhook(n))
            deadline = time.monotonic() + 5
            while len(group._queue) < 5 and time.monotonic() < deadline:  # all five queued behind the commit
                time.sleep(0.01)
            first.settimeout(0.3)
            with pytest.raises(socket.timeout):  # not answered while its commit is held
                first.recv(1)
            groups_before = group.groups
            release.set()
            for sock in socks:
                sock.settimeout(5)
                status, _, body = read_response(sock, bytearray())
                assert status == 202 and json.loads(body)["status"] == "accepted"
            assert group.groups - groups_before == 2  # the held one, then the five together
    finally:
        release.set()
        for sock in socks:
            sock.close()
        store.close()
    with open_store(tmp_path / "loop.db") as again:
        assert len(again.claim("t", dt.datetime.now(dt.timezone.utc), limit=10)) == 6
