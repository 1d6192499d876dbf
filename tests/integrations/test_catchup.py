"""The service catches up by itself: changes Zammad gave up delivering, and policy reloads."""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path
from typing import Any, Iterator

import pytest

from integrations.catchup import CATCHUP_TRIGGER, REEVALUATION_TRIGGER, CatchUp, Reevaluation
from integrations.service.metrics import Metrics
from integrations.service.processing import Processor
from integrations.store import open_store
from integrations.zammad.adapter import ZammadAdapter, ZammadClient
from integrations.zammad.commands import run
from integrations.zammad.resources import RetryPolicy
from integrations.zammad_standin import running_standin
from plugin.engine import Engine
from plugin.policy import load_policies
from service_harness import ServiceProcess, sync_zammad, wait_until
from support import POLICIES
from zammad_api import Api

POLICYDESK_TOKEN = "standin-policydesk-token"
CUSTOMER = "jonas.keller@uhrwerk.ch"  # Uhrwerk Digital GmbH, Pro
PLUS_CUSTOMER = "claire.favre@choco-leman.ch"  # Chocolaterie Léman SA, Plus (no account manager)
UTC = dt.timezone.utc


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime.now(UTC)

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture
def zammad(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    from integrations.zammad_standin import state as standin_state

    if hasattr(standin_state, "CALENDAR_COLUMNS"):  # an older stand-in still had a note column
        monkeypatch.delitem(standin_state.CALENDAR_COLUMNS, "note", raising=False)
    with running_standin(webhook_backoff=0.02, elasticsearch=False) as standin:  # the catch-up must not need it
        yield standin


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Any]:
    with open_store(f"sqlite:///{tmp_path / 'policydesk.db'}") as opened:
        yield opened


def adapter_for(zammad: Any) -> ZammadAdapter:
    return ZammadAdapter(ZammadClient(zammad.url, POLICYDESK_TOKEN, retry=RetryPolicy(attempts=1)))


def create_ticket(api: Api, title: str, channel: str = "email", customer: str = CUSTOMER) -> int:
    customer_id = api.get(f"users/search?query={customer}").json()[0]["id"]
    response = api.post("tickets", json={"title": title, "group": "Support", "customer_id": customer_id,
                                         "article": {"type": channel, "sender": "Customer", "subject": title,
                                                     "body": "Please help.", "internal": False}})
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def pending(store: Any, now: dt.datetime) -> list[Any]:
    jobs = store.claim("test", now + dt.timedelta(days=1), limit=100)
    return jobs


def test_catch_up_queues_each_missed_change_once(zammad: Any, store: Any, capsys: Any) -> None:
    assert run(["sync", "--policies", str(POLICIES)], {
        "ZAMMAD_URL": zammad.url, "ZAMMAD_TOKEN": POLICYDESK_TOKEN, "POLICYDESK_ZAMMAD_WEBHOOK_TOKEN": "t",
        "POLICYDESK_PUBLIC_URL": "http://127.0.0.1:9/"}) == 0, capsys.readouterr()
    clock = Clock()
    clock.now += dt.timedelta(minutes=5)  # the seed's tickets are older than the first mark
    adapter = adapter_for(zammad)
    catchup = CatchUp(store, adapter, overlap=120, settle=30, clock=clock)
    assert catchup.run_once() == 0 and catchup.mark() == clock.now - dt.timedelta(seconds=30)  # the first run only sets the mark

    zammad.state.clock.offset += 600  # Zammad's time: the tickets are created 10 minutes on
    api = Api(zammad.url, "standin-admin-token")
    missed = [create_ticket(api, f"missed {i}") for i in range(3)]
    clock.now += dt.timedelta(minutes=6)
    searches_before = len(zammad.state.requests.matching("POST", "/api/v1/tickets/search"))
    assert catchup.run_once() == 3
    assert len(zammad.state.requests.matching("POST", "/api/v1/tickets/search")) - searches_before == 1
    assert CatchUp(store, adapter, settle=30, clock=clock).run_once() == 0  # another instance or run: queued once

    jobs = pending(store, clock.now)
    assert sorted(json.loads(j.body)["ticket"]["id"] for j in jobs) == missed
    assert {j.headers["X-Zammad-Trigger"] for j in jobs} == {CATCHUP_TRIGGER}
    assert all(set(json.loads(j.body)["ticket"]) == {"id", "updated_at", "updated_by_id"} for j in jobs)

    engine = Engine(load_policies(POLICIES))
    processor = Processor(adapter, lambda: engine, store)
    for job in jobs:
        assert processor(job, clock.now) == "applied"
        store.complete(job.id)
    for ticket_id in missed:
        assert "plan:pro" in api.get(f"tags?object=Ticket&o_id={ticket_id}").json()["tags"]
    clock.now += dt.timedelta(minutes=1)
    assert catchup.run_once() == 0  # policydesk wrote last: nothing to catch up


def test_reevaluation_after_a_reload_is_rate_bounded_with_progress(zammad: Any, store: Any,
                                                                   caplog: Any) -> None:
    metrics = Metrics()
    sleeps: list[float] = []
    reevaluation = Reevaluation(store, adapter_for(zammad), rate=50, log_every=2, metrics=metrics,
                                sleep=sleeps.append)
    closed = {s["id"] for s in zammad.state.all("ticket_states") if s["name"] in ("closed", "merged", "removed")}
    open_ids = sorted(t["id"] for t in zammad.state.all("tickets") if t["state_id"] not in closed)
    with caplog.at_level(logging.INFO, logger="policydesk.catchup"):
        assert reevaluation.run(reevaluation._generation) == len(open_ids)
    assert sleeps == [pytest.approx(0.02)] * len(open_ids)  # at most 50 a second
    assert f"{len(open_ids)}/{len(open_ids)} open ticket(s) queued" in caplog.text
    assert b"policydesk_reevaluation_remaining 0.0" in metrics.render()
    jobs = pending(store, dt.datetime.now(UTC))
    assert sorted(json.loads(j.body)["ticket"]["id"] for j in jobs) == open_ids
    assert {j.headers["X-Zammad-Trigger"] for j in jobs} == {REEVALUATION_TRIGGER}


# --------------------------------------------------------------------------- issue 11's "How to check"


def test_stopped_service_catches_up_every_ticket_once(zammad: Any, tmp_path: Path) -> None:
    """Stop the service for "5 minutes" while tickets are created, start it: every ticket is in
    line within the catch-up period, none twice.  Time is scaled: Zammad gives up in well
    under a second here (webhook backoff 0.02 s) and the catch-up runs every second.  The
    customer is on Plus (no account manager): a mention's own echo is another matter (the
    adapter's), not a catch-up's."""
    store_url = f"sqlite:///{tmp_path / 'policydesk.db'}"
    env = {"POLICYDESK_CATCHUP_SECONDS": "1", "POLICYDESK_CATCHUP_OVERLAP": "5", "POLICYDESK_CATCHUP_SETTLE": "2"}
    service = ServiceProcess(zammad.url, store_url, tmp_path / "service.log", **env).start()
    sync_zammad(zammad.url, service.url)
    api = Api(zammad.url, "standin-admin-token")
    try:
        first = create_ticket(api, "while running", customer=PLUS_CUSTOMER)
        wait_until(lambda: "plan:plus" in api.get(f"tags?object=Ticket&o_id={first}").json()["tags"],
                   what="the running service's decision")
        service.stop()

        created = [create_ticket(api, f"while stopped {i}", channel, PLUS_CUSTOMER) for i, channel in
                   enumerate(["email", "phone", "web", "email"])]

        def given_up() -> bool:  # every delivery of those tickets failed its last attempt
            deliveries = [d for d in zammad.deliveries if d.ticket_id in created]
            return bool(deliveries) and all(d.status == "failed" for d in deliveries)

        wait_until(given_up, timeout=30, what="Zammad giving up its deliveries")
        assert all("plan:plus" not in api.get(f"tags?object=Ticket&o_id={t}").json()["tags"] for t in created)

        service = ServiceProcess(zammad.url, store_url, tmp_path / "service.log", port=service.port, **env).start()
        for ticket_id in created:
            wait_until(lambda t=ticket_id: "plan:plus" in api.get(f"tags?object=Ticket&o_id={t}").json()["tags"],
                       timeout=20, what=f"ticket {ticket_id} caught up")
    finally:
        service.stop()
    for ticket_id in [first, *created]:  # none twice: one explaining note, one plan-tag write
        notes = [a for a in api.get(f"ticket_articles/by_ticket/{ticket_id}").json()
                 if a.get("subject") == "policydesk" and a.get("internal")]
        calls = [(r.method, r.path, r.user, r.status, str(r.body)[:80]) for r in zammad.state.requests.all()
                 if r.path.endswith(f"/tickets/{ticket_id}") and r.method != "GET"]
        assert len(notes) == 1, (ticket_id, [n["body"] for n in notes], calls)
        tag_adds = [r for r in zammad.state.requests.matching("POST", "/api/v1/tags/add")
                    if isinstance(r.body, dict) and r.body.get("o_id") in (ticket_id, str(ticket_id))
                    and str(r.body.get("item", "")).startswith("plan:")]
        assert len(tag_adds) == 1, (ticket_id, tag_adds)


def test_each_run_hands_changed_organizations_to_the_hand_edit_check(zammad: Any, store: Any) -> None:
    """Zammad has no organization trigger (app/models/transaction/trigger.rb): the catch-up asks
    for organizations changed since its mark (integrations.billing.hand_edit)."""
    calls: list[tuple[dt.datetime, dt.datetime]] = []
    clock = Clock()
    catchup = CatchUp(store, adapter_for(zammad), overlap=120, settle=30, clock=clock,
                      organizations_changed=lambda since, now: calls.append((since, now)) or {"unchanged": 1})
    catchup.run_once()  # the first run only sets the mark
    clock.now += dt.timedelta(minutes=5)
    catchup.run_once()
    assert len(calls) == 1
    since, now = calls[0]
    assert now == clock.now and since == clock.now - dt.timedelta(minutes=5) - dt.timedelta(seconds=30 + 120)
