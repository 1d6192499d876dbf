"""VIP codes: generation, salted hashing, constant-time verification, the ticket check
against the Zammad stand-in, and the code never in logs or the store."""

from __future__ import annotations

import datetime as dt
import json
import logging
import sqlite3
from typing import Any, Iterator

import pytest

from integrations import vip
from integrations.billing import audit_subject
from integrations.billing.handler import BillingReceiver
from integrations.vip import (
    TAG_MISMATCH,
    TAG_VERIFIED,
    TICKET_VIP_CODE,
    check_vip_entry,
    generate_code,
    hash_code,
    issue_vip_code,
    rotate_vip_code,
    verify_vip,
)
from integrations.zammad import mapping
from store_fixtures import open_same, pg_dsn, pg_schema, store  # noqa: F401

UTC = dt.timezone.utc
NOW = dt.datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def test_generate_code_digits_and_randomness() -> None:
    codes = {generate_code() for _ in range(200)}
    assert all(len(c) == 8 and c.isdigit() for c in codes)
    assert len(codes) > 195


def test_hash_is_salted() -> None:
    assert hash_code("12345678", b"salt-one") != hash_code("12345678", b"salt-two")
    assert hash_code("1234 5678", b"s") == hash_code("12345678", b"s")  # as an agent may type it


def test_issue_verify_rotate(store) -> None:
    code = issue_vip_code(store, "7", NOW)
    assert code is not None and verify_vip(store, "7", code)
    assert verify_vip(store, "7", f"{code[:4]} {code[4:]}")
    assert not verify_vip(store, "7", "00000000" if code != "00000000" else "11111111")
    assert not verify_vip(store, "7", "")
    assert not verify_vip(store, "8", code)  # another organization (without a code)
    assert issue_vip_code(store, "7", NOW) is None  # one code per organization
    other = issue_vip_code(store, "9", NOW)
    assert store.get_vip_hash("7").salt != store.get_vip_hash("9").salt  # a salt per code
    new = rotate_vip_code(store, "7", NOW)
    assert verify_vip(store, "7", new) and (new == code or not verify_vip(store, "7", code))
    assert other is not None and verify_vip(store, "9", other)


def test_verify_uses_constant_time_compare(store, monkeypatch) -> None:
    code = issue_vip_code(store, "7", NOW)
    calls: list[tuple[bytes, bytes]] = []
    real = vip.hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(vip.hmac, "compare_digest", spy)
    assert verify_vip(store, "7", code) and not verify_vip(store, "7", "1")
    assert not verify_vip(store, "no-such-org", code)  # the same work without a code
    assert len(calls) == 3


# --------------------------------------------------------------------------- never logged, never stored


def _sqlite_dump(path: str) -> str:
    conn = sqlite3.connect(path)
    try:
        out = []
        for (table,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'"):
            for row in conn.execute(f'SELECT * FROM "{table}"'):
                for value in row:
                    out.append(value.decode("latin-1") if isinstance(value, bytes) else str(value))
        return "\n".join(out)
    finally:
        conn.close()


def test_code_never_logged_nor_stored(tmp_path, bundled_policies, caplog) -> None:
    from integrations.store import open_store

    path = str(tmp_path / "s.db")
    caplog.set_level(logging.DEBUG)
    with open_store(path) as sqlite:
        receiver = BillingReceiver(sqlite, lambda: bundled_policies)
        ev = {"id": "e1", "type": "subscription.created", "occurred_at": "2026-01-05T08:00:00Z",
              "organization": {"billing_account": "a1", "zammad_organization_id": 4},
              "subscription": {"plan": "enterprise", "start": "2026-01-05", "commitment": {"months": 6},
                               "billing_period": "annual"}}
        status, body = receiver(ev, json.dumps(ev).encode(), NOW)
        assert status == 201
        code = body["vip_code"]
        assert verify_vip(sqlite, "4", code)
        audit = sqlite.audit_log(subject=audit_subject("4"))
        assert audit and all(code not in json.dumps(entry.data) for entry in audit)
    assert code not in _sqlite_dump(path)
    assert all(code not in record.getMessage() and code not in str(record.args) for record in caplog.records)


# --------------------------------------------------------------------------- the ticket check, against the stand-in


@pytest.fixture
def zammad() -> Iterator[Any]:
    from integrations.zammad_standin import running_standin

    with running_standin() as standin:
        if standin.state.attribute_by("Ticket", TICKET_VIP_CODE) is None:  # what `policydesk sync` creates
            standin.state.add_attribute({"object": "Ticket", "name": TICKET_VIP_CODE, "display": "VIP code",
                                         "data_type": "input",
                                         "data_option": {"type": "text", "maxlength": 64, "null": True}}, 1)
            standin.state.execute_migrations()
        yield standin


@pytest.fixture
def adapter(zammad) -> Any:
    from integrations.zammad.adapter import ZammadAdapter, ZammadClient
    from integrations.zammad.resources import RetryPolicy

    client = ZammadClient(zammad.url, zammad.token_for("policydesk@example.com"),
                          retry=RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.05))
    return ZammadAdapter(client)


def _enter(zammad: Any, ticket_id: int, value: str) -> None:
    """An agent types the caller's code into the ticket."""
    from integrations.zammad.adapter import ZammadClient

    agent = ZammadClient(zammad.url, "standin-agent-token")
    agent.tickets.update(ticket_id, {TICKET_VIP_CODE: value})


def test_check_vip_entry_verified_mismatch_cleared_and_safe_twice(zammad, adapter, store, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    ticket = next(t for t in zammad.state.all("tickets") if t["title"] == "Question about our invoice")
    tid, org_ref = ticket["id"], str(ticket["organization_id"])
    code = rotate_vip_code(store, org_ref, NOW)
    client = adapter.client

    # nothing entered: nothing done
    assert check_vip_entry(adapter, store, tid, adapter.read_state(tid)) is None

    _enter(zammad, tid, f"{code[:4]} {code[4:]}")
    state = adapter.read_state(tid)
    assert check_vip_entry(adapter, store, tid, state, now=NOW) == TAG_VERIFIED
    assert TAG_VERIFIED in client.tags.list(tid)
    assert not client.tickets.find(tid).get(TICKET_VIP_CODE)  # cleared
    # the same (now stale) state again: nothing more happens
    audits = store.audit_log(subject=f"ticket:{tid}", kind="vip_check")
    assert check_vip_entry(adapter, store, tid, state, now=NOW) is None
    assert store.audit_log(subject=f"ticket:{tid}", kind="vip_check") == audits
    assert len(audits) == 1 and audits[0].data["result"] == TAG_VERIFIED

    wrong = "00000000" if code != "00000000" else "11111111"
    _enter(zammad, tid, wrong)
    assert check_vip_entry(adapter, store, tid, adapter.read_state(tid), now=NOW) == TAG_MISMATCH
    tags = client.tags.list(tid)
    assert TAG_MISMATCH in tags and TAG_VERIFIED not in tags
    assert not client.tickets.find(tid).get(TICKET_VIP_CODE)

    # the decision diff leaves the VIP check's tags alone
    _add, remove = mapping.tag_changes(frozenset(tags), frozenset({"plan:plus"}))
    assert TAG_MISMATCH not in remove

    entries = store.audit_log(subject=f"ticket:{tid}", kind="vip_check")
    assert [e.data["result"] for e in entries] == [TAG_MISMATCH, TAG_VERIFIED]
    assert all(code not in json.dumps(e.data) and wrong not in json.dumps(e.data) for e in entries)
    assert all(code not in r.getMessage() and wrong not in r.getMessage() for r in caplog.records)


def test_check_vip_entry_ticket_without_organization(zammad, adapter, store) -> None:
    ticket = next(t for t in zammad.state.all("tickets") if t["title"] == "Welcome to Zammad!")
    zammad.state.tables["tickets"][ticket["id"]]["organization_id"] = None
    _enter(zammad, ticket["id"], "12345678")
    assert check_vip_entry(adapter, store, ticket["id"], adapter.read_state(ticket["id"]), now=NOW) == TAG_MISMATCH
    entry = store.audit_log(subject=f"ticket:{ticket['id']}", kind="vip_check")[0]
    assert entry.data["organization"] is None and "no organization" in entry.data["reason"]


# --------------------------------------------------------------------------- the plan, and the code alone


def test_code_verifies_only_while_the_plan_includes_it(store, bundled_policies) -> None:
    store.put_subscription("7", plan="pro", started_at=NOW, commitment_end=None, billing_period=None, now=NOW)
    code = issue_vip_code(store, "7", NOW)
    assert verify_vip(store, "7", code, bundled_policies)
    store.put_subscription("7", plan="standard", started_at=NOW, commitment_end=None, billing_period=None, now=NOW)
    assert verify_vip(store, "7", code)  # the hash still matches ...
    assert not verify_vip(store, "7", code, bundled_policies)  # ... but Standard has no VIP code


def test_code_alone_identifies_the_organization(store, bundled_policies, monkeypatch) -> None:
    monkeypatch.setenv("POLICYDESK_VIP_INDEX_KEY", "index-key-for-tests")
    codes = {}
    for org in ("7", "8", "9"):
        store.put_subscription(org, plan="plus", started_at=NOW, commitment_end=None, billing_period=None, now=NOW)
        codes[org] = issue_vip_code(store, org, NOW)
    for org, code in codes.items():
        assert vip.identify_by_vip(store, f"{code[:4]} {code[4:]}", bundled_policies) == org
    wrong = next(c for c in ("00000000", "11111111", "22222222") if c not in codes.values())
    assert vip.identify_by_vip(store, wrong, bundled_policies) is None
    old = codes["7"]
    new = rotate_vip_code(store, "7", NOW)
    assert vip.identify_by_vip(store, new, bundled_policies) == "7"
    assert old == new or vip.identify_by_vip(store, old, bundled_policies) is None  # the old index row is stale
    # only a keyed hash is stored: without the key nothing identifies
    monkeypatch.delenv("POLICYDESK_VIP_INDEX_KEY")
    monkeypatch.delenv("POLICYDESK_BILLING_SECRET", raising=False)
    assert vip.identify_by_vip(store, new, bundled_policies) is None


def test_identify_costs_one_lookup_whatever_the_number_of_organizations(store, monkeypatch) -> None:
    monkeypatch.setenv("POLICYDESK_VIP_INDEX_KEY", "k")
    for n in range(30):
        rotate_vip_code(store, str(100 + n), NOW)
    code = rotate_vip_code(store, "7", NOW)
    reads: list[Any] = []
    real_hash, real_index = store.get_vip_hash, store.org_by_vip_index
    monkeypatch.setattr(store, "get_vip_hash", lambda ref: reads.append(ref) or real_hash(ref))
    monkeypatch.setattr(store, "org_by_vip_index", lambda index: reads.append(index) or real_index(index))
    assert vip.identify_by_vip(store, code) == "7"
    assert len(reads) == 2 and reads[1] == "7"  # the index row, then that organization's hash
    assert code.encode() not in reads[0]  # the index is a keyed digest, not the code
