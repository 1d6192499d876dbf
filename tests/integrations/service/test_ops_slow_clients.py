"""Slow clients (issue 13 item 2): hundreds of trickling connections must not stop /healthz or a
valid webhook from answering within a second, and trickled bytes do not extend the deadlines.

Real sockets over loopback against the real app under `integrations.serving.BackgroundServer`;
bounded in count (300 slow clients) and time (about 10 s); prints the counts.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid

import pytest
import requests

from integrations.service.app import ServiceSecrets, WebhookService
from integrations.service.metrics import Metrics
from integrations.serving import BackgroundServer
from integrations.signing import zammad_signature
from integrations.store import open_store

TOKEN = "slow-token"
SLOW_CLIENTS = 300


@pytest.fixture
def served(tmp_path):
    store = open_store(tmp_path / "slow.db")
    app = WebhookService(store, ServiceSecrets(TOKEN, "b"), Metrics())
    server = BackgroundServer(app, threads=4, connection_limit=1000, header_timeout=2.0, body_timeout=3.0,
                              idle_timeout=2.0, max_body_bytes=1 << 20).start()
    yield server
    server.stop()
    store.close()


def trickle(port: int, first: bytes, stop: threading.Event, closed: list[float], started: float) -> None:
    """Send ``first`` then one byte every 0.2 s until the server closes the connection."""
    try:
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    except OSError:
        closed.append(-1.0)
        return
    sock.settimeout(0.2)
    try:
        sock.sendall(first)
        while not stop.is_set():
            try:
                sock.sendall(b"x")
                if sock.recv(1) == b"":
                    break
            except socket.timeout:
                continue
            except OSError:
                break
        else:
            return
        closed.append(time.monotonic() - started)
    finally:
        sock.close()


def test_hundreds_of_slow_clients_do_not_stop_health_or_a_webhook(served):
    stop = threading.Event()
    header_closed: list[float] = []
    body_closed: list[float] = []
    started = time.monotonic()
    threads = []
    for n in range(SLOW_CLIENTS):
        if n % 2:  # trickling the headers
            first, sink = b"POST /webhooks/zammad HTTP/1.1\r\nHost: x\r\nX-Slow: ", header_closed
        else:  # headers complete, trickling a body that never ends
            first, sink = (b"POST /webhooks/zammad HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                           b"Content-Length: 100000\r\n\r\n{"), body_closed
        thread = threading.Thread(target=trickle, args=(served.port, first, stop, sink, started), daemon=True)
        thread.start()
        threads.append(thread)
    time.sleep(1.0)  # every slow client is connected and trickling
    try:
        timings = []
        for n in range(5):
            t0 = time.monotonic()
            health = requests.get(served.url + "/healthz", timeout=5)
            body = json.dumps({"ticket": {"id": 100 + n}}).encode()
            hook = requests.post(served.url + "/webhooks/zammad", data=body, timeout=5, headers={
                "Content-Type": "application/json", "X-Zammad-Delivery": uuid.uuid4().hex,
                "X-Hub-Signature": zammad_signature(body, TOKEN)})
            timings.append(time.monotonic() - t0)
            assert health.status_code == 200 and hook.status_code == 202, (health.text, hook.text)
        deadline = time.monotonic() + 8
        while len(header_closed) + len(body_closed) < SLOW_CLIENTS and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        stop.set()
        for thread in threads:
            thread.join(2)
    print(f"\nslow clients: {SLOW_CLIENTS}; closed by the server: header-trickling {len(header_closed)} "
          f"(latest after {max(header_closed, default=0):.1f}s), body-trickling {len(body_closed)} "
          f"(latest after {max(body_closed, default=0):.1f}s); /healthz + webhook answered in "
          f"max {max(timings) * 1000:.0f} ms")
    assert max(timings) < 1.0
    assert len(header_closed) == SLOW_CLIENTS // 2 and len(body_closed) == SLOW_CLIENTS // 2
    assert all(0 < t < 2.0 + 1 + 1.5 for t in header_closed)  # header deadline + cleanup interval + start-up
    assert all(0 < t < 3.0 + 1 + 1.5 for t in body_closed)


def test_a_silent_connection_is_closed_after_the_header_deadline(served):
    with socket.create_connection(("127.0.0.1", served.port), timeout=10) as sock:
        t0 = time.monotonic()
        assert sock.recv(1) == b""  # closed without an answer
        assert 1.5 < time.monotonic() - t0 < 4.5


def test_the_servers_own_refusals_are_json(served):
    with socket.create_connection(("127.0.0.1", served.port), timeout=5) as sock:
        sock.sendall(b"POST /webhooks/zammad HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 5000000\r\n\r\n")
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413") and b"application/json" in head
    assert json.loads(body) == {"error": "request body too large"}
