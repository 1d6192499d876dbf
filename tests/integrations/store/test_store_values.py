"""Values the database cannot hold are refused alike on SQLite and PostgreSQL (issue 13 item 5)."""

from __future__ import annotations

import datetime as dt

import pytest

from integrations.store import Store, StoreValueError
from plugin.errors import UserError
from store_fixtures import open_same, pg_dsn, pg_schema, store  # noqa: F401

UTC = dt.timezone.utc
NOW = dt.datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
HOSTILE = {"nul": "a\u0000b", "surrogate": "a\udc80b", "high surrogate": "\ud800"}


@pytest.mark.parametrize("text", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_text_is_refused_everywhere_and_nothing_is_stored(store: Store, text: str) -> None:
    attempts = {
        "delivery id": lambda: store.receive("zammad", text, b"{}", {}, NOW),
        "header": lambda: store.receive("zammad", "d1", b"{}", {"X-Zammad-Trigger": text}, NOW),
        "key": lambda: store.receive("zammad", "d2", b"{}", {}, NOW, key=text),
        "organization": lambda: store.put_subscription(text, plan="plus", started_at=NOW, commitment_end=None,
                                                       billing_period=None, now=NOW),
        "plan": lambda: store.put_subscription("org-1", plan=text, started_at=NOW, commitment_end=None,
                                               billing_period=None, now=NOW),
        "audit subject": lambda: store.audit("decision", text, {}, NOW),
        "audit data": lambda: store.audit("decision", "ticket:1", {"note": {"text": [text]}}, NOW),
        "audit key": lambda: store.audit("decision", "ticket:1", {text: 1}, NOW),
        "manager": lambda: store.assign_manager("org-1", "account", text, NOW),
        "notification": lambda: store.hold_notification("p", {"title": text}, NOW),
        "timer": lambda: store.set_timers(text, "k", [("warn", NOW)]),
        "vip org": lambda: store.put_vip_hash(text, b"s", b"d", NOW),
        "pending": lambda: store.pending_periods(text, True, NOW),
    }
    refused = {}
    for name, attempt in attempts.items():
        with pytest.raises(StoreValueError) as caught:
            attempt()
        refused[name] = str(caught.value)
        assert text not in str(caught.value)  # the message names the problem, never echoes the value
    print(f"\n{store.dialect}: {len(refused)} of {len(attempts)} hostile writes refused")
    assert store.counts() == {"pending": 0, "claimed": 0, "done": 0, "parked": 0}
    assert store.audit_log() == [] and store.get_subscription("org-1") is None
    # Still usable afterwards (no transaction left broken).
    assert store.receive("zammad", "ok", b"{}", {}, NOW).new


def test_the_error_is_a_user_error_not_a_store_outage() -> None:
    from integrations.store import StoreError

    assert issubclass(StoreValueError, UserError) and not issubclass(StoreValueError, StoreError)


@pytest.mark.parametrize("value", [2**63, -(2**63) - 1, 10**30])
def test_integers_out_of_range_are_refused(store: Store, value: int) -> None:
    with pytest.raises(StoreValueError):
        store.audit("x", "s", {"n": value}, NOW)
    if value > 0:
        with pytest.raises(StoreValueError):
            store.claim("w", NOW, limit=value)


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_numbers_in_json_are_refused(store: Store, value: float) -> None:
    with pytest.raises(StoreValueError):
        store.audit("x", "s", {"n": value}, NOW)


def test_deeply_nested_json_is_refused(store: Store) -> None:
    data: dict = {}
    for _ in range(200):
        data = {"a": data}
    with pytest.raises(StoreValueError, match="nested deeper"):
        store.audit("x", "s", data, NOW)


def test_bodies_are_bytes_and_kept_exactly(store: Store) -> None:
    body = '{"title": "\\u0000 and \\udc80 stay JSON escapes"}'.encode() + b"\x00\xff"
    result = store.receive("zammad", "raw", body, {}, NOW)
    job = store.get_job(result.job_id or 0)
    assert job is not None and job.body == body


def test_error_texts_are_made_storable_not_refused(store: Store) -> None:
    job_id = store.receive("zammad", "e1", b"{}", {}, NOW).job_id or 0
    store.claim("w1", NOW)
    assert store.retry(job_id, "Zammad said a\u0000b\udc80c", NOW, 0, worker="w1")
    job = store.get_job(job_id)
    assert job is not None and job.last_error == "Zammad said a\ufffdb?c"
    store.claim("w1", NOW)
    assert store.park(job_id, "x" * 5000 + "\u0000", worker="w1")
    parked = store.get_job(job_id)
    assert parked is not None and parked.state == "parked" and len(parked.last_error or "") == 2000


def test_the_same_unicode_text_round_trips_on_both_stores(store: Store) -> None:
    text = "Grüße, 東京, emoji \U0001f600, tab\tand newline\n"
    store.audit("decision", "ticket:1", {"note": text}, NOW)
    assert store.audit_log()[0].data == {"note": text}
