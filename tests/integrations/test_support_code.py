"""Support codes: unique, Damm-checked (every single misheard digit and every swap of
neighbours caught), reversible with the key; typed on a ticket against the stand-in."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any, Iterator

import pytest

from integrations.support_code import (
    ORG_SUPPORT_CODE,
    TAG_INVALID,
    TAG_LINKED,
    TAG_MISMATCH,
    TICKET_SUPPORT_CODE,
    check_digit,
    check_support_code_entry,
    ensure_support_code,
    normalise,
    organization_of,
    support_code,
    support_code_key,
)
from store_fixtures import open_same, pg_dsn, pg_schema, store  # noqa: F401

NOW = dt.datetime(2026, 12, 1, 10, tzinfo=dt.timezone.utc)
IDS = [1, 2, 3, 4, 9, 10, 99_999_999, 100_000_000, 2**31 - 1] + random.Random(7).sample(range(1, 2**31), 300)


def test_codes_are_short_grouped_and_round_trip() -> None:
    for organization_id in IDS:
        code = support_code(organization_id)
        digits = normalise(code)
        assert digits.isdigit() and len(digits) == (9 if organization_id < 10**8 else 11)
        assert code == " ".join(digits[i:i + 3] for i in range(0, len(digits), 3))
        assert organization_of(code) == organization_id
        assert organization_of(digits) == organization_id  # typed without spaces
    assert len({support_code(i) for i in IDS}) == len(IDS)


def test_every_single_digit_error_and_neighbour_swap_is_caught() -> None:
    caught = missed = 0
    for organization_id in IDS[:60]:
        digits = normalise(support_code(organization_id))
        wrong = {digits[:p] + d + digits[p + 1:] for p in range(len(digits)) for d in "0123456789" if d != digits[p]}
        wrong |= {digits[:p] + digits[p + 1] + digits[p] + digits[p + 2:] for p in range(len(digits) - 1)
                  if digits[p] != digits[p + 1]}
        for typed in wrong:
            if organization_of(typed) is None:
                caught += 1
            else:
                missed += 1
    print(f"\nsupport codes: {caught} misheard variants caught, {missed} missed")
    assert missed == 0 and caught > 5000


def test_damm_check_digit_reference_value() -> None:
    assert check_digit("572") == "4"  # the textbook example (Damm 2004): 5724 checks to 0
    assert organization_of("abc") is None and organization_of("") is None and organization_of("1" * 30) is None


def test_the_key_changes_the_codes() -> None:
    assert support_code_key({}) != support_code_key({"POLICYDESK_SUPPORT_CODE_KEY": "site-key"})
    other = support_code_key({"POLICYDESK_SUPPORT_CODE_KEY": "site-key"})
    assert support_code(4) != support_code(4, other)
    assert organization_of(support_code(4, other), other) == 4


# --------------------------------------------------------------------------- against the stand-in


@pytest.fixture
def zammad() -> Iterator[Any]:
    from integrations.zammad_standin import running_standin

    with running_standin() as standin:
        for obj, name in (("Organization", ORG_SUPPORT_CODE), ("Ticket", TICKET_SUPPORT_CODE)):
            if standin.state.attribute_by(obj, name) is None:  # what `policydesk sync` creates
                standin.state.add_attribute({"object": obj, "name": name, "display": name, "data_type": "input",
                                             "data_option": {"type": "text", "maxlength": 64, "null": True}}, 1)
        standin.state.execute_migrations()
        yield standin


@pytest.fixture
def adapter(zammad) -> Any:
    from integrations.zammad.adapter import ZammadAdapter, ZammadClient
    from integrations.zammad.resources import RetryPolicy

    return ZammadAdapter(ZammadClient(zammad.url, zammad.token_for("policydesk@example.com"),
                                      retry=RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.05)))


def _type(zammad: Any, ticket_id: int, value: str) -> None:
    from integrations.zammad.adapter import ZammadClient

    ZammadClient(zammad.url, "standin-agent-token").tickets.update(ticket_id, {TICKET_SUPPORT_CODE: value})


def test_ensure_support_code_writes_once(zammad, adapter) -> None:
    org = zammad.state.by_name("organizations", "Chocolaterie Léman SA")
    record = adapter.client.organizations.find(org["id"])
    assert ensure_support_code(adapter, record) == support_code(org["id"])
    record = adapter.client.organizations.find(org["id"])
    assert record[ORG_SUPPORT_CODE] == support_code(org["id"])
    writes = len(zammad.state.requests.matching("PUT", f"/api/v1/organizations/{org['id']}"))
    ensure_support_code(adapter, record)
    assert len(zammad.state.requests.matching("PUT", f"/api/v1/organizations/{org['id']}")) == writes


def test_typed_code_links_flags_and_is_cleared(zammad, adapter, store) -> None:
    ticket = next(t for t in zammad.state.all("tickets") if t["title"] == "Question about our invoice")
    tid, own = ticket["id"], ticket["organization_id"]
    other = next(o for o in zammad.state.all("organizations") if o["id"] != own)
    client = adapter.client

    _type(zammad, tid, support_code(own))  # the caller's own code: linked, nothing to change
    assert check_support_code_entry(adapter, store, tid, adapter.read_state(tid), NOW) == TAG_LINKED
    assert not client.tickets.find(tid).get(TICKET_SUPPORT_CODE)

    _type(zammad, tid, support_code(other["id"]))  # another organization's code: flagged, not moved
    state = adapter.read_state(tid)
    assert check_support_code_entry(adapter, store, tid, state, NOW) == TAG_MISMATCH
    assert client.tickets.find(tid)["organization_id"] == own
    tags = client.tags.list(tid)
    assert TAG_MISMATCH in tags and TAG_LINKED not in tags
    assert check_support_code_entry(adapter, store, tid, state, NOW) is None  # stale state: nothing more

    digits = normalise(support_code(own))
    misheard = digits[:-2] + str((int(digits[-2]) + 1) % 10) + digits[-1]
    _type(zammad, tid, misheard)
    assert check_support_code_entry(adapter, store, tid, adapter.read_state(tid), NOW) == TAG_INVALID

    # a ticket without an organization gets the one the code names
    zammad.state.tables["tickets"][tid]["organization_id"] = None
    _type(zammad, tid, support_code(other["id"]))
    assert check_support_code_entry(adapter, store, tid, adapter.read_state(tid), NOW) == TAG_LINKED
    assert client.tickets.find(tid)["organization_id"] == other["id"]
    results = [e.data["result"] for e in store.audit_log(subject=f"ticket:{tid}", kind="support_code_check")]
    assert results == [TAG_LINKED, TAG_INVALID, TAG_MISMATCH, TAG_LINKED]


def test_the_typed_marker_of_syncs_payload_is_enough(zammad, adapter, store) -> None:
    """sync's webhook payload carries `<attribute>_typed` instead of the code: the code is read from Zammad."""
    from types import SimpleNamespace

    from integrations.support_code import typed

    assert typed({"policydesk_support_code_typed": "true"}, TICKET_SUPPORT_CODE)
    assert not typed({"policydesk_support_code_typed": "false", TICKET_SUPPORT_CODE: ""}, TICKET_SUPPORT_CODE)
    ticket = next(t for t in zammad.state.all("tickets") if t["title"] == "Question about our invoice")
    _type(zammad, ticket["id"], support_code(ticket["organization_id"]))
    state = SimpleNamespace(record={"id": ticket["id"], "policydesk_support_code_typed": "true"})
    assert check_support_code_entry(adapter, store, ticket["id"], state, NOW) == TAG_LINKED
    assert not adapter.client.tickets.find(ticket["id"]).get(TICKET_SUPPORT_CODE)
