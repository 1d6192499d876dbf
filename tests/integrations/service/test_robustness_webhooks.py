"""Hostile requests to both webhooks: every one is refused with a 4xx and a JSON reason.

Hypothesis builds requests that are wrong in one way each -- malformed, truncated,
non-UTF-8, huge or deeply nested bodies; wrong types in every field; missing,
duplicated and almost-right signatures (one hex digit off, wrong prefix, wrong case,
another key); missing and duplicated headers; wrong content types and lengths; billing
events replayed outside the tolerance window -- and checks, for every one:

* the answer is a 4xx (never a 5xx) with a JSON body ``{"error": "<reason>"}``;
* no stack trace and no secret in the body;
* nothing was stored (every table of the store has the same number of rows);
* no secret appears in the logs (caplog);
* the service keeps serving (``/healthz`` and a good event afterwards).

Two layers: the WSGI app called in-process (fast, many examples), and the real app as
``policydesk serve`` assembles it (``Service.from_config``) served by the service's HTTP server on
loopback, talked to over raw HTTP/1.1 (fewer examples; duplicated headers and
the server's own parsing included).
"""

from __future__ import annotations

import datetime as dt
import http.client
import io
import json
import logging
import socket
import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from integrations.billing import EXAMPLES_DIR
from integrations.billing.handler import EventError, validate_event
from integrations.service.app import WebhookService
from integrations.service.config import ServiceConfig
from integrations.signing import DEFAULT_TOLERANCE_SECONDS, billing_signature, zammad_signature
from integrations.store.schema import TABLES

from support import REPO
ZAMMAD_TOKEN = "robustness-zammad-token-Qx7vK2"
BILLING_SECRET = "robustness-billing-secret-Hn4pW9"
SECRETS = (ZAMMAD_TOKEN, BILLING_SECRET)
MAX_BODY = 1 << 20
UNREACHABLE_ZAMMAD = "http://127.0.0.1:9"  # discard port: nothing answers

FAST = settings(max_examples=80, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.data_too_large])
OVER_HTTP = settings(FAST, max_examples=12)

ZAMMAD_EVENT = {
    "ticket": {"id": 42, "number": "31042", "title": "Mail server rejects our messages", "state": "new",
               "customer_id": 5, "organization_id": 4, "updated_by_id": 5, "create_article_type": "email",
               "policydesk_category": "email", "tags": ["x"]},
    "article": {"id": 7, "type": "email", "sender": "Customer", "body": "Please help.", "internal": False},
}


def billing_examples() -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted(EXAMPLES_DIR.glob("*.json"))]


# --------------------------------------------------------------------------- the app and its store


def row_counts(db_path: Path) -> dict[str, int]:
    """Rows in every table of the SQLite store (read through a separate connection), but
    ``key_claims`` (which worker holds a ticket now: a running worker changes it, not input)."""
    with sqlite3.connect(db_path) as conn:
        return {t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in TABLES if t != "key_claims"}


def make_app(db_path: Path) -> tuple[WebhookService, Any]:
    """The WSGI app as `Service.from_config` builds it (billing receiver included), without
    workers (so nothing moves in the store behind the test's back)."""
    from integrations.service.runtime import Service
    from integrations.zammad.adapter import ZammadSettings

    config = ServiceConfig(store_url=f"sqlite:///{db_path}", host="127.0.0.1", port=0,
                           policies=str(REPO / "policies"), zammad_webhook_token=ZAMMAD_TOKEN,
                           billing_secret=BILLING_SECRET, max_body_bytes=MAX_BODY)
    service = Service.from_config(config, zammad=ZammadSettings(UNREACHABLE_ZAMMAD, "robustness-zammad-api-token",
                                                                timeout=0.5, retry_attempts=1))
    return service.app, service


def wsgi_call(app: WebhookService, method: str, path: str, body: bytes = b"",
              headers: list[tuple[str, str]] | None = None, content_length: str | None = "auto") -> tuple[int, dict[str, str], bytes]:
    """Call the WSGI app as a server would; duplicated headers are joined with ", " (as
    every WSGI server does)."""
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method, "PATH_INFO": path, "SERVER_NAME": "test", "SERVER_PORT": "80",
        "wsgi.input": io.BytesIO(body), "wsgi.url_scheme": "http", "wsgi.errors": io.StringIO(),
    }
    if content_length == "auto":
        environ["CONTENT_LENGTH"] = str(len(body))
    elif content_length is not None:
        environ["CONTENT_LENGTH"] = content_length
    for name, value in headers or []:
        key = name.upper().replace("-", "_")
        key = key if key in ("CONTENT_TYPE",) else "HTTP_" + key
        environ[key] = f"{environ[key]}, {value}" if key in environ else value
    captured: dict[str, Any] = {}

    def start_response(status: str, response_headers: list[tuple[str, str]]) -> None:
        captured["status"], captured["headers"] = status, dict(response_headers)

    out = b"".join(app(environ, start_response))
    return int(captured["status"].split()[0]), captured["headers"], out


def assert_refused(status: int, headers: dict[str, str], body: bytes, *, json_reason: bool = True) -> str:
    assert 400 <= status < 500, f"expected a 4xx, got {status}: {body[:300]!r}"
    text = body.decode("utf-8", "replace")
    assert "Traceback" not in text and 'File "' not in text, text[:500]
    for secret in SECRETS:
        assert secret not in text
    if not json_reason:
        return text
    assert headers.get("Content-Type", "").startswith("application/json"), headers
    payload = json.loads(body)
    assert isinstance(payload, dict) and isinstance(payload.get("error"), str) and payload["error"], payload
    return payload["error"]


def assert_no_secret_logged(caplog: pytest.LogCaptureFixture) -> None:
    for record in caplog.records:
        message = record.getMessage() + (record.exc_text or "")
        for secret in SECRETS:
            assert secret not in message, f"secret in log record {record.name}: {message[:200]}"


# --------------------------------------------------------------------------- hostile requests


def _hex_off_by_one(hexdigits: str, index: int) -> str:
    i = index % len(hexdigits)
    c = hexdigits[i]
    return hexdigits[:i] + ("0" if c != "0" else "1") + hexdigits[i + 1:]


@st.composite
def zammad_signature_header(draw: st.DrawFn, body: bytes) -> list[tuple[str, str]]:
    """An X-Hub-Signature that is wrong for ``body`` (or missing/duplicated)."""
    good = zammad_signature(body, ZAMMAD_TOKEN)
    digest = good.removeprefix("sha1=")
    kind = draw(st.sampled_from(["missing", "empty", "hex-off", "prefix", "upper", "other-key", "other-body",
                                 "truncated", "extra", "duplicated", "garbage", "sha256"]))
    if kind == "missing":
        return []
    value = {
        "empty": "",
        "hex-off": "sha1=" + _hex_off_by_one(digest, draw(st.integers(0, 39))),
        "prefix": draw(st.sampled_from(["SHA1=", "sha1:", "sha-1=", "sha256=", "", "sha1 =", "sha1=="])) + digest,
        "upper": "sha1=" + digest.upper() if any(c.isalpha() for c in digest) else "SHA1=" + digest,
        "other-key": zammad_signature(body, ZAMMAD_TOKEN + "x"),
        "other-body": zammad_signature(body + b" ", ZAMMAD_TOKEN),
        "truncated": good[: draw(st.integers(0, len(good) - 1))],
        "extra": good + draw(st.sampled_from(["0", "a", ",", ";", "\t0"])),
        "duplicated": None,
        "garbage": draw(st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=80)),
        "sha256": "sha256=" + billing_signature(body, ZAMMAD_TOKEN, 0).split("v1=")[1],
    }[kind]
    if kind == "duplicated":
        return [("X-Hub-Signature", good), ("X-Hub-Signature", good)]
    return [("X-Hub-Signature", value)]


NOT_A_DICT = st.one_of(
    st.none(), st.booleans(), st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20),
    st.lists(st.integers(), max_size=3), st.just("42"), st.just(42.0), st.just(True), st.just(["42"]),
)
WRONG_VALUES = st.one_of(NOT_A_DICT, st.dictionaries(st.text(max_size=5), st.integers(), max_size=3))
#: NaN and Infinity are not JSON (RFC 8259): the front door refuses them (400), see test_ops_service.py.
FINITE_WRONG_VALUES = st.one_of(NOT_A_DICT.filter(lambda v: not (isinstance(v, float) and v != v * 1 or v in (
    float("inf"), float("-inf")))), st.dictionaries(st.text(max_size=5), st.integers(), max_size=3))
ZAMMAD_KINDS = ["signature", "body", "shape", "delivery", "content-type", "length", "huge"]
BILLING_KINDS = ["signature", "body", "fields", "content-type", "length", "huge", "nested-field"]


def _deep(n: int, kind: str) -> bytes:
    return {"list": b"[" * n + b"]" * n, "object": b'{"a":' * n + b"1" + b"}" * n,
            "ticket": b'{"ticket": {"id": 1, "x": ' + b"[" * n + b"]" * n + b"}}"}[kind]


@st.composite
def bad_json_bodies(draw: st.DrawFn, valid: bytes) -> bytes:
    """Bodies that are not a usable JSON object: malformed, truncated, non-UTF-8, too deep, not an object."""
    kind = draw(st.sampled_from(["truncated", "garbage", "non-utf8", "deep", "not-object", "huge-number",
                                 "bom", "empty", "trailing"]))
    if kind == "truncated":
        return valid[: draw(st.integers(0, len(valid) - 1))]
    if kind == "garbage":
        body = draw(st.binary(min_size=1, max_size=200))
        try:
            if isinstance(json.loads(body.decode("utf-8")), dict):
                body = b"{" + body
        except (ValueError, RecursionError):
            pass
        return body
    if kind == "non-utf8":
        at = draw(st.integers(1, len(valid) - 2))
        return valid[:at] + draw(st.sampled_from([b"\xff", b"\xc3", b"\xe9", b"\xed\xa0\x80", b"\xc0\xaf"])) + valid[at:]
    if kind == "deep":
        return _deep(draw(st.sampled_from([1000, 20_000, 200_000])), draw(st.sampled_from(["list", "object"])))
    if kind == "not-object":
        return json.dumps(draw(st.one_of(st.none(), st.integers(), st.text(max_size=10),
                                         st.lists(st.integers(), max_size=3)))).encode()
    if kind == "huge-number":
        return b'{"ticket": {"id": ' + b"7" * draw(st.integers(4301, 20_000)) + b"}}"
    if kind == "bom":
        return b"\xef\xbb\xbf" + valid  # json.loads refuses a BOM on str input
    if kind == "empty":
        return b""
    return valid + draw(st.sampled_from([b"x", b"}", b",", b"\x00", b"{}"]))


@st.composite
def zammad_wrong_shape(draw: st.DrawFn) -> bytes:
    """Valid JSON objects without a ``ticket`` object with an integer ``id``."""
    event = json.loads(json.dumps(ZAMMAD_EVENT))
    kind = draw(st.sampled_from(["no-ticket", "ticket-type", "no-id", "id-type", "duplicate-key", "empty"]))
    if kind == "no-ticket":
        del event["ticket"]
    elif kind == "ticket-type":
        event["ticket"] = draw(NOT_A_DICT)
    elif kind == "no-id":
        del event["ticket"]["id"]
    elif kind == "id-type":
        event["ticket"]["id"] = draw(st.one_of(NOT_A_DICT, st.dictionaries(st.text(max_size=5), st.integers(), max_size=3))
                                     .filter(lambda v: not isinstance(v, int) or isinstance(v, bool)))
    elif kind == "empty":
        event = {}
    else:  # the last duplicate wins in json.loads: the id is overridden by a string
        return b'{"ticket": {"id": 42, "id": "42"}, "article": {}}'
    return json.dumps(event).encode()


@st.composite
def hostile_zammad(draw: st.DrawFn, kind: str) -> dict[str, Any]:
    """One request to /webhooks/zammad that must be refused, wrong in the way ``kind`` says."""
    valid = json.dumps(ZAMMAD_EVENT).encode()
    body, headers = valid, [("Content-Type", "application/json")]
    content_length: str | None = "auto"
    delivery: list[tuple[str, str]] = [("X-Zammad-Delivery", uuid.uuid4().hex)]
    signature: list[tuple[str, str]] | None = None
    if kind == "signature":
        signature = draw(zammad_signature_header(body))
    elif kind == "body":
        body = draw(bad_json_bodies(valid))
    elif kind == "shape":
        body = draw(zammad_wrong_shape())
    elif kind == "delivery":
        delivery = draw(st.sampled_from([[], [("X-Zammad-Delivery", "")], [("X-Zammad-Delivery", "   ")],
                                         [("X-Zammad-Delivery", "d" * 201)]]))
    elif kind == "content-type":
        ctype = draw(st.sampled_from([None, "", "text/plain", "application/x-www-form-urlencoded", "application/jsonx",
                                      "application/json5", "multipart/form-data; boundary=x", "text/json",
                                      "application/problem+json", "application/json-seq"]))
        headers = [] if ctype is None else [("Content-Type", ctype)]
    elif kind == "length":
        content_length = draw(st.sampled_from([None, "", "-1", "1e3", "0x10", " 12", "12a", str(len(body) + 10)]))
    else:
        body = b'{"ticket": {"id": 1}, "pad": "' + b"x" * (MAX_BODY + draw(st.integers(0, 1000))) + b'"}'
    if signature is None:
        signature = [("X-Hub-Signature", zammad_signature(body, ZAMMAD_TOKEN))]
    return {"kind": kind, "body": body, "headers": headers + delivery + signature, "content_length": content_length}


@st.composite
def billing_signature_header(draw: st.DrawFn, body: bytes, now: int) -> list[tuple[str, str]]:
    """A Policydesk-Signature that must be refused for ``body`` at ``now``."""
    good_mac = billing_signature(body, BILLING_SECRET, now).split("v1=")[1]
    kind = draw(st.sampled_from(["missing", "empty", "replayed", "future", "hex-off", "upper", "other-key",
                                 "no-t", "no-v1", "dup-t", "v0", "t-not-digit", "garbage", "duplicated-header",
                                 "other-time", "spaces"]))
    tol = DEFAULT_TOLERANCE_SECONDS
    if kind == "missing":
        return []
    if kind in ("replayed", "future"):
        skew = draw(st.integers(tol + 2, 10 * 365 * 86400))
        stamp = now - skew if kind == "replayed" else now + skew
        return [("Policydesk-Signature", billing_signature(body, BILLING_SECRET, max(0, stamp)))]
    value = {
        "empty": "",
        "hex-off": f"t={now},v1={_hex_off_by_one(good_mac, draw(st.integers(0, 63)))}",
        "upper": f"t={now},v1={good_mac.upper()}" if any(c.isalpha() for c in good_mac) else f"T={now},v1={good_mac}",
        "other-key": billing_signature(body, BILLING_SECRET + "x", now),
        "no-t": f"v1={good_mac}",
        "no-v1": f"t={now}",
        "dup-t": f"t={now},t={now},v1={good_mac}",
        "v0": f"t={now},v0={good_mac}",
        "t-not-digit": f"t={now}.0,v1={good_mac}",
        "garbage": draw(st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=80)),
        "duplicated-header": None,
        "other-time": billing_signature(body, BILLING_SECRET, now - 1).replace(f"t={now - 1}", f"t={now}"),
        "spaces": f"t = {now}, v1 = {good_mac}",
    }[kind]
    if kind == "duplicated-header":
        good = f"t={now},v1={good_mac}"
        return [("Policydesk-Signature", good), ("Policydesk-Signature", good)]
    return [("Policydesk-Signature", value)]


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield prefix + (key,)
            yield from _paths(item, prefix + (key,))


@st.composite
def billing_wrong_fields(draw: st.DrawFn) -> bytes:
    """A contract example with one field deleted, retyped or given an impossible value."""
    event = draw(st.sampled_from(billing_examples()))
    path = draw(st.sampled_from(sorted(_paths(event), key=str)))
    parent = event
    for key in path[:-1]:
        parent = parent[key]
    how = draw(st.sampled_from(["delete", "retype", "unknown-field", "bad-date"]))
    if how == "delete":
        del parent[path[-1]]
    elif how == "retype":
        parent[path[-1]] = draw(WRONG_VALUES.filter(lambda v: type(v) is not type(parent[path[-1]])))
    elif how == "unknown-field":
        parent[draw(st.sampled_from(["extra", "plan_id", "__proto__"]))] = 1
        if not isinstance(parent, dict):
            return b"[]"
    else:
        parent[path[-1]] = draw(st.sampled_from(["2026-02-30", "2026-13-01", "26-01-01", "2026-01-01T25:00:00Z",
                                                 "yesterday", "2026-01-05T08:12:44"]))
    return json.dumps(event).encode()


def _schema_valid(body: bytes) -> bool:
    try:
        validate_event(json.loads(body))
    except (EventError, ValueError):
        return False
    return True


@st.composite
def hostile_billing(draw: st.DrawFn, now: int, kind: str) -> dict[str, Any]:
    """One request to /webhooks/billing that must be refused, wrong in the way ``kind`` says."""
    example = draw(st.sampled_from(billing_examples()))
    example["id"] = f"evt_robust_{uuid.uuid4().hex}"
    valid = json.dumps(example).encode()
    body, headers, content_length = valid, [("Content-Type", "application/json")], "auto"
    signature: list[tuple[str, str]] | None = None
    if kind == "signature":
        signature = draw(billing_signature_header(body, now))
    elif kind == "body":
        body = draw(bad_json_bodies(valid))
    elif kind == "fields":
        body = draw(billing_wrong_fields().filter(lambda b: not _schema_valid(b)))
    elif kind == "nested-field":
        example["subscription"]["plan"] = json.loads(_deep(draw(st.sampled_from([50, 500])), "list"))
        body = json.dumps(example).encode()
    elif kind == "content-type":
        ctype = draw(st.sampled_from([None, "text/plain", "application/xml", "application/jsonx", ""]))
        headers = [] if ctype is None else [("Content-Type", ctype)]
    elif kind == "length":
        content_length = draw(st.sampled_from([None, "", "-5", "abc", str(len(body) + 1)]))
    else:
        body = b'{"id": "x", "pad": "' + b"y" * (MAX_BODY + 10) + b'"}'
    if signature is None:
        signature = [("Policydesk-Signature", billing_signature(body, BILLING_SECRET, now))]
    return {"kind": kind, "body": body, "headers": headers + signature, "content_length": content_length}


# --------------------------------------------------------------------------- in-process


@pytest.fixture(scope="module")
def inproc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[WebhookService, Path]]:
    db = tmp_path_factory.mktemp("robust") / "inproc.db"
    app, service = make_app(db)
    yield app, db
    service.store.close()


@pytest.mark.parametrize("kind", ZAMMAD_KINDS)
@FAST
@given(data=st.data())
def test_hostile_zammad_requests_in_process(inproc, caplog, kind, data):
    app, db = inproc
    request = data.draw(hostile_zammad(kind))
    caplog.set_level(logging.DEBUG)
    before = row_counts(db)
    status, headers, body = wsgi_call(app, "POST", "/webhooks/zammad", request["body"], request["headers"],
                                      request["content_length"])
    assert_refused(status, headers, body)
    event(f"{request['kind']} -> {status}")
    assert row_counts(db) == before, f"{request['kind']}: something was stored for a refused request"
    assert_no_secret_logged(caplog)


@pytest.mark.parametrize("kind", BILLING_KINDS)
@FAST
@given(data=st.data())
def test_hostile_billing_requests_in_process(inproc, caplog, kind, data):
    app, db = inproc
    caplog.set_level(logging.DEBUG)
    request = data.draw(hostile_billing(int(time.time()), kind))
    before = row_counts(db)
    status, headers, body = wsgi_call(app, "POST", "/webhooks/billing", request["body"], request["headers"],
                                      request["content_length"])
    assert_refused(status, headers, body)
    event(f"{request['kind']} -> {status}")
    assert row_counts(db) == before, f"{request['kind']}: something was stored for a refused request"
    assert_no_secret_logged(caplog)


@settings(FAST, max_examples=150)
@given(field=st.sampled_from(["title", "state", "customer_id", "organization_id", "updated_by_id",
                              "create_article_type", "policydesk_category", "tags", "number"]),
       value=FINITE_WRONG_VALUES, article=st.one_of(st.just(ZAMMAD_EVENT["article"]), FINITE_WRONG_VALUES))
def test_wrong_types_in_fields_the_front_door_does_not_read_are_stored_once_never_5xx(inproc, field, value, article):
    """With a valid ticket id the event is acknowledged and stored once (the worker parks it
    if it cannot be processed: nothing received is lost); it is never a 5xx."""
    app, db = inproc
    event = json.loads(json.dumps(ZAMMAD_EVENT))
    event["ticket"][field] = value
    event["article"] = article
    body = json.dumps(event).encode()
    before = row_counts(db)
    delivery = uuid.uuid4().hex
    headers = [("Content-Type", "application/json"), ("X-Zammad-Delivery", delivery),
               ("X-Hub-Signature", zammad_signature(body, ZAMMAD_TOKEN))]
    status, _, answer = wsgi_call(app, "POST", "/webhooks/zammad", body, headers)
    assert status == 202, answer
    after = row_counts(db)
    assert (after["events"], after["jobs"]) == (before["events"] + 1, before["jobs"] + 1)
    status, _, answer = wsgi_call(app, "POST", "/webhooks/zammad", body, headers)  # redelivery: one effect
    assert (status, json.loads(answer)["status"]) == (202, "duplicate")
    assert row_counts(db) == after


def test_in_process_app_keeps_serving_after_the_hostile_requests(inproc):
    app, db = inproc
    status, _, body = wsgi_call(app, "GET", "/livez")
    assert status == 200 and json.loads(body)["status"] == "ok"
    status, _, body = wsgi_call(app, "GET", "/healthz")  # this test's Zammad is not running: only that is wrong
    assert (status, json.loads(body)["reasons"]) == (503, ["zammad_unreachable"])
    for method, path, expected in [("GET", "/webhooks/zammad", 405), ("PUT", "/healthz", 405), ("GET", "/nope", 404),
                                   ("POST", "/webhooks/zammad/../billing", 404)]:
        status, headers, body = wsgi_call(app, method, path)
        assert status == expected
        assert_refused(status, headers, body)
    body = json.dumps(ZAMMAD_EVENT).encode()
    status, _, answer = wsgi_call(app, "POST", "/webhooks/zammad", body, [
        ("Content-Type", "application/json; charset=utf-8"), ("X-Zammad-Delivery", uuid.uuid4().hex),
        ("X-Hub-Signature", zammad_signature(body, ZAMMAD_TOKEN))])
    assert status == 202 and json.loads(answer)["status"] == "accepted"


def test_replay_window_edges(inproc):
    """Inside the tolerance (either side) a signed event passes the signature check; one
    second outside it is refused as a replay -- with a fixed clock, so the edge is exact."""
    app, db = inproc
    fixed = dt.datetime(2026, 3, 2, 13, 3, 10, tzinfo=dt.timezone.utc)
    now = int(fixed.timestamp())
    original_clock = app.clock
    app.clock = lambda: fixed
    try:
        body = json.dumps({"id": "evt_edge", "type": "nonsense"}).encode()  # passes the signature, fails the contract
        for skew, expected in [(-DEFAULT_TOLERANCE_SECONDS, 422), (DEFAULT_TOLERANCE_SECONDS, 422),
                               (-DEFAULT_TOLERANCE_SECONDS - 1, 401), (DEFAULT_TOLERANCE_SECONDS + 1, 401)]:
            before = row_counts(db)
            status, headers, answer = wsgi_call(app, "POST", "/webhooks/billing", body, [
                ("Content-Type", "application/json"),
                ("Policydesk-Signature", billing_signature(body, BILLING_SECRET, now + skew))])
            assert status == expected, (skew, answer)
            reason = assert_refused(status, headers, answer)
            if expected == 401:
                assert "replay" in reason
            assert row_counts(db) == before
    finally:
        app.clock = original_clock


# --------------------------------------------------------------------------- over HTTP, served by BackgroundServer


class Served:
    """The assembled app under `BackgroundServer` on a loopback port, in a thread of this process."""

    def __init__(self, db: Path) -> None:
        from integrations.serving import BackgroundServer

        self.db = db
        self.app, self.service = make_app(db)
        self.server = BackgroundServer(self.app, threads=4, max_body_bytes=MAX_BODY).start()
        self.port = self.server.port

    def stop(self) -> None:
        self.server.stop()
        self.service.store.close()

    def request(self, method: str, path: str, body: bytes = b"", headers: list[tuple[str, str]] | None = None,
                content_length: str | None = "auto") -> tuple[int, dict[str, str], bytes]:
        """One request on a fresh connection, headers exactly as given (duplicates kept)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.putrequest(method, path, skip_accept_encoding=True)
            if content_length == "auto":
                conn.putheader("Content-Length", str(len(body)))
            elif content_length is not None:
                conn.putheader("Content-Length", content_length)
            for name, value in headers or []:
                conn.putheader(name, value.encode("latin-1", "replace"))
            conn.endheaders()
            try:
                if body:
                    conn.sock.sendall(body)
                if content_length not in ("auto", None) and content_length.strip().isdigit() \
                        and int(content_length) > len(body):
                    # Promise more than is sent, then stop sending: the server must not hand the app
                    # a half body; the connection is closed without an answer (or a 400).
                    conn.sock.shutdown(socket.SHUT_WR)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the server answered (413) and closed before reading everything
            try:
                response = conn.getresponse()
                return response.status, dict(response.getheaders()), response.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                return 0, {}, b""
        finally:
            conn.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    server = Served(tmp_path_factory.mktemp("robust-http") / "served.db")
    yield server
    server.stop()


def _check_over_http(served: Served, path: str, request: dict[str, Any]) -> None:
    before = row_counts(served.db)
    headers = list(request["headers"])
    cl = request["content_length"]
    status, response_headers, body = served.request("POST", path, request["body"], headers, cl)
    event(f"{request['kind']} -> {status}")
    if status == 0:  # closed without an answer: a promised-but-unsent body, or a reset while an
        # oversized body was still being sent (the server answered 413 and closed)
        assert request["kind"] == "huge" or (cl not in (None, "auto") and cl.isdigit()
                                              and int(cl) > len(request["body"])), request["kind"]
    elif response_headers.get("Content-Type", "").startswith("application/json"):
        assert_refused(status, response_headers, body)
    else:  # refused by the server before the app (too large, malformed Content-Length)
        assert status in (400, 413), (status, body[:200], request["kind"])
        assert_refused(status, response_headers, body, json_reason=False)
    assert row_counts(served.db) == before, f"{request['kind']}: stored for a refused request"


@pytest.mark.parametrize("kind", ZAMMAD_KINDS)
@OVER_HTTP
@given(data=st.data())
def test_hostile_zammad_requests_over_http(served, caplog, kind, data):
    caplog.set_level(logging.DEBUG)
    _check_over_http(served, "/webhooks/zammad", data.draw(hostile_zammad(kind)))
    assert_no_secret_logged(caplog)


@pytest.mark.parametrize("kind", BILLING_KINDS)
@OVER_HTTP
@given(data=st.data())
def test_hostile_billing_requests_over_http(served, caplog, kind, data):
    caplog.set_level(logging.DEBUG)
    _check_over_http(served, "/webhooks/billing", data.draw(hostile_billing(int(time.time()), kind)))
    assert_no_secret_logged(caplog)


def test_non_latin1_and_control_bytes_in_headers_over_http(served):
    body = json.dumps(ZAMMAD_EVENT).encode()
    for delivery in ["d\u00e9livery", "a\x01b"]:
        before = row_counts(served.db)
        status, headers, answer = served.request("POST", "/webhooks/zammad", body, [
            ("Content-Type", "application/json"), ("X-Zammad-Delivery", delivery),
            ("X-Hub-Signature", zammad_signature(body, ZAMMAD_TOKEN)[:-1] + "Z")])
        assert 400 <= status < 500
        assert row_counts(served.db) == before


def test_served_app_keeps_serving_after_the_hostile_requests(served):
    status, _, body = served.request("GET", "/livez")
    assert status == 200 and json.loads(body)["status"] == "ok"
    status, _, body = served.request("GET", "/healthz")  # this test's Zammad is not running: only that is wrong
    assert (status, json.loads(body)["reasons"]) == (503, ["zammad_unreachable"])
    good = json.dumps(ZAMMAD_EVENT).encode()
    before = row_counts(served.db)
    status, _, body = served.request("POST", "/webhooks/zammad", good, [
        ("Content-Type", "application/json"), ("X-Zammad-Delivery", uuid.uuid4().hex),
        ("X-Hub-Signature", zammad_signature(good, ZAMMAD_TOKEN))])
    assert status == 202, body
    assert row_counts(served.db)["events"] == before["events"] + 1
