"""Zammad's native countdown agrees with policydesk's: the SLAs and calendars `sync` writes make
the stand-in's escalation computation (lib/escalation.rb, app/models/ticket/escalation.rb)
give the same first-response deadline as policydesk's ``policydesk_first_response_due``, to
the minute; and Zammad's escalation time events reach policydesk once each."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from integrations.zammad.mapping import parse_instant
from integrations.zammad_standin import running_standin
from service_harness import ADMIN_TOKEN, ServiceProcess, sync_zammad, wait_until
from zammad_api import Api

CUSTOMERS = {"plus": "claire.favre@choco-leman.ch", "pro": "jonas.keller@uhrwerk.ch",
             "enterprise": "it-ops@helvetia-retail.ch"}
MINUTE = dt.timedelta(minutes=1)


@pytest.fixture
def desk(tmp_path: Path) -> Iterator[tuple[Any, ServiceProcess, Api]]:
    with running_standin(webhook_backoff=0.05) as zammad:
        service = ServiceProcess(zammad.url, f"sqlite:///{tmp_path / 'policydesk.db'}", tmp_path / "service.log",
                                 POLICYDESK_CATCHUP_SECONDS="0").start()
        try:
            sync_zammad(zammad.url, service.url)
            yield zammad, service, Api(zammad.url, ADMIN_TOKEN)
        finally:
            service.stop()


def create(api: Api, plan: str, channel: str, **attributes: Any) -> int:
    customer_id = api.get(f"users/search?query={CUSTOMERS[plan]}").json()[0]["id"]
    title = f"{plan} {channel} {' '.join(sorted(attributes))}".strip()
    response = api.post("tickets", json={
        "title": title, "group": "Support", "customer_id": customer_id, **attributes,
        "article": {"type": channel, "sender": "Customer", "subject": title, "body": "Our site is down.",
                    "internal": False}})
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def decided(api: Api, ticket_id: int) -> dict[str, Any]:
    return wait_until(lambda: (lambda t: t if t.get("policydesk_first_response_due") else None)(
        api.get(f"tickets/{ticket_id}").json()), timeout=20, what=f"policydesk's deadline on ticket {ticket_id}")


def assert_same_minute(api: Api, ticket_id: int) -> dict[str, Any]:
    def agreeing() -> dict[str, Any] | None:
        ticket = api.get(f"tickets/{ticket_id}").json()
        ours = parse_instant(ticket.get("policydesk_first_response_due"))
        zammads = parse_instant(ticket.get("first_response_escalation_at"))
        return ticket if ours and zammads and abs(ours - zammads) < MINUTE else None

    decided(api, ticket_id)
    try:
        return wait_until(agreeing, timeout=10, what=f"the same deadline on ticket {ticket_id}")
    except AssertionError:
        ticket = api.get(f"tickets/{ticket_id}").json()
        raise AssertionError(f"ticket {ticket_id} ({ticket.get('title')}): policydesk "
                             f"{ticket.get('policydesk_first_response_due')}, Zammad "
                             f"{ticket.get('first_response_escalation_at')}") from None


def test_zammads_first_response_escalation_equals_policydesks_deadline(desk: Any) -> None:
    zammad, service, api = desk
    tickets = [create(api, plan, channel) for plan in CUSTOMERS for channel in ("email", "phone")]
    tickets.append(create(api, "enterprise", "phone", policydesk_emergency=True, policydesk_category="infrastructure"))
    for ticket_id in tickets:
        assert_same_minute(api, ticket_id)
    assert "emergency" in api.get(f"tags?object=Ticket&o_id={tickets[-1]}").json()["tags"]  # accepted, 24/7

    # a pending period: both clocks pause (Zammad: ignore_escalation states, minute granularity).
    # An accepted emergency's clock runs around the clock, so the pause moves its deadline at
    # whatever time this test runs (a Plus e-mail's would not move at night or on a weekend).
    paused = create(api, "enterprise", "phone", policydesk_emergency=True, policydesk_category="infrastructure")
    before = assert_same_minute(api, paused)
    pending_state = next(s["name"] for s in api.get("ticket_states").json() if s["name"].startswith("pending"))
    until = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1)).isoformat()
    assert api.put(f"tickets/{paused}", json={"state": pending_state, "pending_time": until}).status_code == 200
    time.sleep(65)  # bounded: just over a minute, so the pause counts on both clocks
    assert api.put(f"tickets/{paused}", json={"state": "open"}).status_code == 200
    # while pending policydesk's deadline is empty (not known until the pause ends): wait for the new one
    after = wait_until(lambda: (lambda t: t if parse_instant(t.get("policydesk_first_response_due")) not in (
        None, parse_instant(before["policydesk_first_response_due"])) else None)(
        api.get(f"tickets/{paused}").json()), timeout=20, what="a deadline moved by the pause")
    assert parse_instant(after["policydesk_first_response_due"]) > parse_instant(before["policydesk_first_response_due"])
    assert_same_minute(api, paused)


def test_escalation_time_events_reach_policydesk_once_each(desk: Any) -> None:
    zammad, service, api = desk
    ticket_id = create(api, "enterprise", "email")
    ticket = assert_same_minute(api, ticket_id)
    due = parse_instant(ticket["first_response_escalation_at"])
    # Zammad's process_escalation (app/models/ticket.rb): a warning within 15 minutes before the
    # deadline, the escalation once it has passed; each once, however often the job runs.
    for moment in (due - dt.timedelta(minutes=10), due + dt.timedelta(minutes=2)):
        zammad.state.clock.offset += (moment - zammad.state.clock.now_dt()).total_seconds()
        for _ in range(2):
            zammad.state.run_time_events()
            time.sleep(0.5)
    events = [d for d in zammad.deliveries if d.ticket_id == ticket_id and d.trigger_name in (
        "policydesk 30 escalation", "policydesk 40 escalation warning")]
    assert sorted(d.trigger_name for d in events) == ["policydesk 30 escalation", "policydesk 40 escalation warning"]
    wait_until(lambda: all(d.status == "delivered" for d in events), timeout=10, what="both events delivered")
