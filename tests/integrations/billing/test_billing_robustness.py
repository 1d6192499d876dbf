"""Hostile billing events (issue 13, items 4, 6, 10) through the real WSGI app, both stores.

Every attack is a signed, well-formed HTTP request whose event is wrong: a float where an
integer belongs, a deeply nested array in a free-form field, organization ids out of
range or unknown, a huge value, and a refused event id re-sent after many newer
refusals. For each: a 4xx JSON answer (never a 5xx, never a traceback), a short message,
and nothing recorded. The test prints its counts.
"""

from __future__ import annotations

import copy
import datetime as dt
import io
import json
import time
from collections import Counter
from typing import Any

import pytest

from integrations.billing.handler import BillingReceiver
from integrations.service.app import ServiceSecrets, WebhookService
from integrations.service.metrics import Metrics
from integrations.signing import billing_signature
from store_fixtures import open_same, pg_dsn, pg_schema, store  # noqa: F401

SECRET = "robust-billing-secret-7Tq"
GOOD = {"id": "evt-good", "type": "subscription.created", "occurred_at": "2026-01-05T08:00:00Z",
        "organization": {"billing_account": "acct-4", "zammad_organization_id": 4, "name": "Uhrwerk"},
        "subscription": {"plan": "pro", "start": "2026-01-05", "commitment": {"months": 6},
                         "billing_period": "monthly"}}


def _with(path: tuple[str, ...], value: Any, raw: bool = False) -> Any:
    event = copy.deepcopy(GOOD)
    target = event
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return event


def _nested(depth: int) -> Any:
    value: Any = []
    for _ in range(depth):
        value = [value]
    return value


#: (name, event or raw JSON text): every one must be refused with a 4xx.
ATTACKS: list[tuple[str, Any]] = [
    ("months 6.0", _with(("subscription", "commitment"), {"months": 6.0})),
    ("months 6.5", _with(("subscription", "commitment"), {"months": 6.5})),
    ("months true", _with(("subscription", "commitment"), {"months": True})),
    ("nested 900 in name", _with(("organization", "name"), _nested(900))),
    ("nested 900 in billing_account", _with(("organization", "billing_account"), _nested(900))),
    ("nested 900 unknown field", _with(("subscription", "note"), _nested(900))),
    ("org 999999 (unknown)", _with(("organization", "zammad_organization_id"), 999999)),
    ("org 2^64", _with(("organization", "zammad_organization_id"), 2**64)),
    ("org 4.0", _with(("organization", "zammad_organization_id"), 4.0)),
    ("org 0", _with(("organization", "zammad_organization_id"), 0)),
    ("org -1", _with(("organization", "zammad_organization_id"), -1)),
    ("org true", _with(("organization", "zammad_organization_id"), True)),
    ("org 1e300", json.dumps(GOOD).replace('"zammad_organization_id": 4', '"zammad_organization_id": 1e300')),
    ("org 2^64 literal", json.dumps(GOOD).replace('"zammad_organization_id": 4',
                                                  '"zammad_organization_id": 18446744073709551616')),
    ("900 KB name", _with(("organization", "name"), "x" * 900_000)),
    ("900 KB plan", _with(("subscription", "plan"), "p" * 900_000)),
]


def _call(app: WebhookService, body: bytes) -> tuple[int, dict[str, str], bytes]:
    headers = {"CONTENT_TYPE": "application/json", "CONTENT_LENGTH": str(len(body)),
               "HTTP_POLICYDESK_SIGNATURE": billing_signature(body, SECRET, int(time.time()))}
    environ = {"REQUEST_METHOD": "POST", "PATH_INFO": "/webhooks/billing", "wsgi.input": io.BytesIO(body),
               "SERVER_NAME": "test", "SERVER_PORT": "80", "wsgi.url_scheme": "http", **headers}
    captured: dict[str, Any] = {}

    def start_response(status: str, response_headers: list[tuple[str, str]]) -> None:
        captured["status"], captured["headers"] = status, dict(response_headers)

    out = b"".join(app(environ, start_response))
    return int(captured["status"].split()[0]), captured["headers"], out


ORGS = ("4", "999999", "0", "1", str(2**64), str(2**31 - 1))


def _rows(store: Any) -> dict[str, Any]:
    """What an event could have recorded, through the store's public API."""
    return {"jobs": store.counts(), "audit": len(store.audit_log(limit=100_000)),
            "subscriptions": [store.get_subscription(o) for o in ORGS], "vip": [store.get_vip_hash(o) for o in ORGS],
            "loads": [store.manager_loads(r) for r in ("account_manager", "technical_account_manager")]}


@pytest.fixture
def app(store, bundled_policies) -> WebhookService:
    known = {4: {"id": 4, "name": "Uhrwerk"}}
    receiver = BillingReceiver(store, lambda: bundled_policies, organizations=known.get)
    return WebhookService(store, ServiceSecrets("zammad-token", SECRET), Metrics(), billing=receiver,
                          max_body_bytes=2 << 20)


def test_hostile_billing_events_are_4xx_and_record_nothing(app, store, capsys) -> None:
    before = _rows(store)
    statuses: Counter[int] = Counter()
    longest = 0
    for name, attack in ATTACKS:
        body = (attack if isinstance(attack, str) else json.dumps(attack)).encode()
        status, headers, answer = _call(app, body)
        statuses[status] += 1
        assert 400 <= status < 500, f"{name}: {status} {answer[:200]!r}"
        assert headers["Content-Type"] == "application/json", name
        reason = json.loads(answer)["error"]
        assert "Traceback" not in reason
        longest = max(longest, len(answer))
        assert _rows(store) == before, f"{name}: something was recorded"
    assert longest < 2000  # a 900 KB value is not echoed back
    # the good event still works afterwards
    status, _, answer = _call(app, json.dumps(GOOD).encode())
    assert status == 201, answer
    with capsys.disabled():
        print(f"\nhostile billing events: {len(ATTACKS)} sent, {sum(v for k, v in statuses.items() if k >= 500)} x 5xx,"
              f" statuses {dict(sorted(statuses.items()))}, 0 recorded, longest answer {longest} bytes")


def test_refused_id_resent_after_many_newer_refusals_is_still_409(app, store, capsys) -> None:
    assert _call(app, json.dumps(GOOD).encode())[0] == 201
    downgrade = _with(("subscription", "plan"), "plus")
    first = {**downgrade, "id": "refused-0", "type": "subscription.plan_changed"}
    status, _, answer = _call(app, json.dumps(first).encode())
    assert status == 409
    reason = json.loads(answer)["reason"]
    newer = 1200
    receiver = app.billing
    now = dt.datetime.now(dt.timezone.utc)
    for n in range(1, newer + 1):  # straight to the receiver: the HTTP layer adds nothing here
        event = {**first, "id": f"refused-{n}"}
        assert receiver(event, json.dumps(event).encode(), now)[0] == 409
    status, _, answer = _call(app, json.dumps(first).encode())
    body = json.loads(answer)
    assert status == 409 and body["duplicate"] is True and body["reason"] == reason
    with capsys.disabled():
        print(f"\nrefused id re-sent after {newer} newer refusals: {status} duplicate={body['duplicate']}")
