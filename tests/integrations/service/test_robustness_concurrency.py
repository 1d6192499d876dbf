"""Robustness: exactly one note per decision change under concurrency and late answers.

Zammad often fires several triggers for one change, and answers a write after policydesk's
client gave up. Here the real worker (2 and 6 jobs at once) processes bursts of concurrent
deliveries for the same tickets against the Zammad stand-in, some ticket updates land and
then stall past the client's timeout, and every ticket must end with one note per decision
change. Prints the counts (``-s`` or the CI log).
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from integrations.service.metrics import Metrics
from integrations.service.processing import Processor, is_transient
from integrations.service.worker import Backoff, Worker
from integrations.store import open_store, ticket_key
from integrations.zammad import mapping
from integrations.zammad.adapter import ZammadAdapter, ZammadClient
from integrations.zammad.resources import RetryPolicy
from integrations.zammad_standin import running_standin
from integrations.zammad_standin.webhooks import webhook_payload
from plugin.engine import Engine
from service_harness import wait_until

CUSTOMERS = ["jonas.keller@uhrwerk.ch", "hans.meier@bergbahn-alpin.ch", "it-ops@helvetia-retail.ch"]
TICKETS = 18
DELIVERIES_PER_CHANGE = 5  # Zammad's triggers for one change, delivered at once
_TEXT = {"data_type": "input", "data_option": {"type": "text", "maxlength": 200, "null": True}}


def report(scenario: str, **counts: Any) -> str:
    line = f"ROBUSTNESS {scenario}: " + " ".join(f"{k}={v}" for k, v in counts.items())
    print("\n" + line, flush=True)
    return line


@pytest.fixture
def zammad() -> Iterator[Any]:
    with running_standin(webhook_backoff=0.05, threads=32) as standin:
        state = standin.state
        for name in (mapping.TICKET_PLAN, mapping.TICKET_FIRST_RESPONSE_DUE, mapping.TICKET_FINGERPRINT,
                     mapping.TICKET_CATEGORY):
            if state.attribute_by("Ticket", name) is None:
                state.add_attribute({"object": "Ticket", "name": name, "display": name, **_TEXT}, 1)
        state.execute_migrations()
        yield standin


def _tickets(zammad: Any) -> list[int]:
    api = ZammadClient(zammad.url, zammad.admin_token, retry=RetryPolicy(attempts=2, base_delay=0.01))
    ids = []
    for n in range(TICKETS):
        customer = next(iter(api.users.search_exact(CUSTOMERS[n % len(CUSTOMERS)])))
        ticket = api.tickets.create({"title": f"burst {n}", "group": "Support", "customer_id": customer["id"],
                                     mapping.TICKET_CATEGORY: "infrastructure",
                                     "article": {"type": "email", "sender": "Customer", "subject": "x",
                                                 "body": "Please help.", "internal": False}})
        ids.append(int(ticket["id"]))
    return ids


def _notes(zammad: Any, ticket_id: int) -> int:
    return sum(1 for a in zammad.state.articles_of(ticket_id)
               if a.get("subject") == mapping.NOTE_SUBJECT and a.get("internal"))


def _deliver_at_once(store: Any, zammad: Any, ticket_ids: list[int], round_name: str) -> int:
    """Each ticket's payload, stored ``DELIVERIES_PER_CHANGE`` times from concurrent threads."""
    now = dt.datetime.now(dt.timezone.utc)
    bodies = {t: json.dumps(webhook_payload(zammad.state, t, None)).encode() for t in ticket_ids}
    barrier = threading.Barrier(DELIVERIES_PER_CHANGE)

    def send(copy: int) -> None:
        barrier.wait()
        for t, body in bodies.items():
            store.receive("zammad", f"{round_name}-{t}-{copy}-{uuid.uuid4().hex[:6]}", body,
                          {"X-Zammad-Trigger": "policydesk 20 ticket updated"}, now, key=ticket_key(t))

    threads = [threading.Thread(target=send, args=(c,)) for c in range(DELIVERIES_PER_CHANGE)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return len(bodies) * DELIVERIES_PER_CHANGE


@pytest.mark.parametrize("workers", [2, 6])
def test_one_note_per_decision_change_with_concurrent_deliveries_and_late_answers(zammad, tmp_path, workers):
    store = open_store(f"sqlite:///{tmp_path / 'concurrency.db'}")
    token = zammad.token_for("policydesk@example.com")
    # A short client timeout, so that a stalled update is given up while Zammad completes it.
    client = ZammadClient(zammad.url, token, timeout=0.4, retry=RetryPolicy(attempts=3, base_delay=0.05, max_delay=0.2))
    from plugin.policy import load_policies

    from plugin.bundled import bundled_policies_dir

    engine = Engine(load_policies(bundled_policies_dir()))
    processor = Processor(ZammadAdapter(client), lambda: engine, store)
    worker = Worker(store, processor, Metrics(), f"robust-{workers}", backoff=Backoff(base_seconds=0.05),
                    is_transient=is_transient, lease_seconds=5, concurrency=workers)
    thread = threading.Thread(target=worker.run, daemon=True)
    ticket_ids = _tickets(zammad)
    late = 6  # these ticket updates land, then answer after the client has given up
    zammad.state.faults.slow_next(late, delay=1.0, method="PUT", path="/api/v1/tickets/", apply_first=True)
    thread.start()
    try:
        sent = _deliver_at_once(store, zammad, ticket_ids, "first")
        wait_until(lambda: store.queue_depth() == 0, timeout=60, interval=0.1, what="first round processed")
        first = {t: _notes(zammad, t) for t in ticket_ids}

        # A change that changes the decision (out of scope), again delivered several times at once.
        admin = ZammadClient(zammad.url, zammad.admin_token)
        for t in ticket_ids:  # an agent recategorises (updated_by is no longer policydesk)
            admin.tickets.update(t, {mapping.TICKET_CATEGORY: "webmastering"})
        zammad.state.faults.slow_next(late, delay=1.0, method="PUT", path="/api/v1/tickets/", apply_first=True)
        sent += _deliver_at_once(store, zammad, ticket_ids, "second")
        wait_until(lambda: store.queue_depth() == 0, timeout=60, interval=0.1, what="second round processed")
        time.sleep(0.3)
        second = {t: _notes(zammad, t) for t in ticket_ids}
        counts = store.counts()
        duplicates = sum(max(0, n - 1) for n in first.values()) + sum(max(0, second[t] - first[t] - 1)
                                                                      for t in ticket_ids)
        missing = sum(1 for n in first.values() if n < 1) + sum(1 for t in ticket_ids if second[t] - first[t] < 1)
        report(f"concurrent deliveries, {workers} workers", tickets=len(ticket_ids), deliveries=sent,
               decision_changes=2 * len(ticket_ids), notes=sum(second.values()), duplicates=duplicates,
               missing=missing, late_answers=2 * late, parked=counts["parked"], done=counts["done"])
        assert duplicates == 0 and missing == 0
        assert counts["parked"] == 0
    finally:
        worker.stop()
        thread.join(10)
        store.close()
