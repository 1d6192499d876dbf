"""A database that silently drops traffic (issue 13 item 8), and SQLite's stuck writer.

PostgreSQL is reached through a black-holing TCP proxy on loopback (tests/helpers/
blackhole.py): the service must answer 503 within a few seconds, /healthz must answer,
and work must resume once the network is back — with one log line per failure, no
traceback. Every wait here is bounded.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from blackhole import BlackHoleProxy
from integrations.service.app import ServiceSecrets, WebhookService
from integrations.service.metrics import Metrics
from integrations.signing import zammad_signature
from integrations.store import open_store, ticket_key
from store_fixtures import _empty_pg, pg_dsn, pg_schema  # noqa: F401

UTC = dt.timezone.utc
TOKEN = "blackhole-webhook-token"
#: The store's timeout in these tests; a caller must get its answer within BOUND.
TIMEOUT = 1.5
BOUND = 3 * TIMEOUT + 2


def call(app: WebhookService, method: str, path: str, body: bytes = b"", delivery: str = "") -> tuple[int, dict[str, Any]]:
    environ = {"REQUEST_METHOD": method, "PATH_INFO": path, "CONTENT_TYPE": "application/json",
               "CONTENT_LENGTH": str(len(body)), "HTTP_X_ZAMMAD_DELIVERY": delivery,
               "HTTP_X_HUB_SIGNATURE": zammad_signature(body, TOKEN), "wsgi.input": _Input(body)}
    answer: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        answer["status"] = int(status.split()[0])

    payload = b"".join(app(environ, start_response))
    return answer["status"], json.loads(payload)


class _Input:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def read(self, size: int = -1) -> bytes:
        return self._body


def webhook(n: int) -> bytes:
    return json.dumps({"ticket": {"id": n, "state": "open"}, "article": {}}).encode()


def timed(action: Any) -> tuple[float, Any]:
    started = time.monotonic()
    try:
        result = action()
    except Exception as error:  # noqa: BLE001 - the test inspects it
        result = error
    return time.monotonic() - started, result


@pytest.fixture
def proxy(pg_dsn: str) -> Any:
    from psycopg.conninfo import conninfo_to_dict

    info = conninfo_to_dict(pg_dsn)
    hole = BlackHoleProxy(str(info.get("host", "127.0.0.1")), int(info.get("port", 5432)))
    yield hole
    hole.close()


def test_postgres_black_holed_answers_503_in_seconds_and_resumes(
    pg_dsn: str, pg_schema: str, proxy: BlackHoleProxy, caplog: pytest.LogCaptureFixture
) -> None:
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    _empty_pg(pg_dsn, pg_schema)
    info = conninfo_to_dict(pg_dsn)
    through = make_conninfo(**{**info, "host": "127.0.0.1", "port": str(proxy.port)})
    store = open_store(through, schema=pg_schema, timeout=TIMEOUT, pool_size=4)
    app = WebhookService(store, ServiceSecrets(TOKEN, "billing-secret"), Metrics())
    caplog.set_level(logging.INFO)
    try:
        assert call(app, "POST", "/webhooks/zammad", webhook(1), "bh-1")[0] == 202
        assert store.wait_for_work(0)  # starts the listener: up before the network goes
        listener = store._listener  # type: ignore[attr-defined]
        deadline = time.monotonic() + 20
        while listener.connects < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        proxy.black_hole()

        answers = []
        for n in range(2, 6):  # established connections and new ones both swallowed
            elapsed, (status, body) = timed(lambda n=n: call(app, "POST", "/webhooks/zammad", webhook(n), f"bh-{n}"))
            answers.append((status, round(elapsed, 1)))
        health = timed(lambda: call(app, "GET", "/healthz"))
        direct = timed(lambda: store.claim("w1", dt.datetime.now(UTC)))
        print(f"\nblack-holed PostgreSQL: webhooks {answers}, /healthz {health[1][0]} in {health[0]:.1f} s,"
              f" claim raised {type(direct[1]).__name__} in {direct[0]:.1f} s, {proxy.swallowed} bytes swallowed")
        assert all(status == 503 and elapsed < BOUND for status, elapsed in answers), answers
        assert health[1][0] == 503 and health[0] < BOUND
        assert isinstance(direct[1], Exception) and direct[0] < BOUND

        proxy.restore()
        deadline = time.monotonic() + 30
        status = 0
        while status != 202 and time.monotonic() < deadline:  # Zammad redelivers until it is stored
            status, _ = call(app, "POST", "/webhooks/zammad", webhook(2), "bh-2")
        assert status == 202
        assert call(app, "GET", "/healthz")[0] == 200
        jobs = store.claim("w1", dt.datetime.now(UTC), limit=10)
        assert sorted(j.delivery_id for j in jobs) == ["bh-1", "bh-2"]
        assert all(j.key in (ticket_key(1), ticket_key(2)) for j in jobs)

        # The listener noticed its connection died, reconnected, and hears NOTIFY again.
        deadline = time.monotonic() + 30
        while listener.connects < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert listener.connects >= 2
        store.wait_for_work(0)
        woke: list[bool] = []
        waiter = threading.Thread(target=lambda: woke.append(store.wait_for_work(30)))
        waiter.start()
        time.sleep(0.1)
        other = open_store(pg_dsn, schema=pg_schema)  # another instance, not through the proxy
        try:
            other.receive("zammad", "bh-other", webhook(9), {}, dt.datetime.now(UTC), key=ticket_key(9))
        finally:
            other.close()
        waiter.join(30)
        assert woke == [True]
    finally:
        store.close()
    assert "Traceback" not in caplog.text
    assert all("\n" not in r.getMessage() for r in caplog.records)  # one line each
    store_lines = [r for r in caplog.records if r.name.startswith("policydesk") and r.exc_info]
    assert store_lines == []


def test_postgres_unreachable_at_connect_is_bounded_too(pg_dsn: str, pg_schema: str, proxy: BlackHoleProxy) -> None:
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    info = conninfo_to_dict(pg_dsn)
    through = make_conninfo(**{**info, "host": "127.0.0.1", "port": str(proxy.port)})
    proxy.black_hole()
    elapsed, result = timed(lambda: open_store(through, schema=pg_schema, timeout=TIMEOUT))
    assert isinstance(result, Exception) and elapsed < BOUND, (elapsed, result)


def test_sqlite_stuck_writer_answers_503_within_the_busy_timeout(tmp_path: Path) -> None:
    path = tmp_path / "stuck.db"
    store = open_store(f"sqlite:///{path}", busy_timeout=0.5)
    app = WebhookService(store, ServiceSecrets(TOKEN, "billing-secret"), Metrics())
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock and hangs
        elapsed, (status, _body) = timed(lambda: call(app, "POST", "/webhooks/zammad", webhook(1), "s-1"))
        assert status == 503 and elapsed < 5
        assert call(app, "GET", "/healthz")[0] == 200  # readers are not blocked (WAL)
        other.execute("ROLLBACK")
        assert call(app, "POST", "/webhooks/zammad", webhook(1), "s-1")[0] == 202
    finally:
        other.close()
        store.close()
