"""The whole loop with real parts: the `policydesk serve` process, the Zammad stand-in over
HTTP, signed webhooks, and the store on disk (SQLite) or a real PostgreSQL server."""

from __future__ import annotations

import datetime as dt
import json
import signal
import threading
import time
import uuid

import pytest

from integrations.store import open_store
from service_harness import ADMIN_TOKEN, ServiceProcess, sync_zammad, wait_until
from store_fixtures import pg_dsn  # noqa: F401  (fixture)
from zammad_api import Api

from integrations.zammad_standin import running_standin

CUSTOMER_PRO = "jonas.keller@uhrwerk.ch"  # Uhrwerk Digital GmbH, Pro, account manager ana.keller@


@pytest.fixture
def standin():
    with running_standin(webhook_backoff=0.05) as zammad:
        yield zammad


@pytest.fixture
def api(standin):
    return Api(standin.url, ADMIN_TOKEN)


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'policydesk.db'}"
        return
    base = request.getfixturevalue("pg_dsn")
    schema = f"e2e_{uuid.uuid4().hex[:10]}"
    yield f"{base}{'&' if '?' in base else '?'}schema={schema}"
    import psycopg

    with psycopg.connect(base.split("?")[0], autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
def service(standin, api, store_url, tmp_path):
    svc = ServiceProcess(standin.url, store_url, tmp_path / "service.log").start()
    sync_zammad(standin.url, svc.url)
    yield svc
    svc.stop()


def create_ticket(api, customer=CUSTOMER_PRO, channel="email", title="Mail server rejects our messages"):
    customer_id = api.get(f"users/search?query={customer}").json()[0]["id"]
    response = api.post("tickets", json={
        "title": title, "group": "Support", "customer_id": customer_id,
        "article": {"type": channel, "sender": "Customer", "subject": title, "body": "Please help.",
                    "internal": False},
    })
    assert response.status_code == 201, response.text
    return response.json()["id"]


def tags(api, ticket_id):
    return set(api.get(f"tags?object=Ticket&o_id={ticket_id}").json()["tags"])


def policydesk_notes(api, ticket_id):
    articles = api.get(f"ticket_articles/by_ticket/{ticket_id}").json()
    return [a for a in articles if a.get("subject") == "policydesk" and a.get("internal")]


def test_ticket_created_gets_the_decision(service, api, standin, bundled_policies):
    hours = bundled_policies.calendars[bundled_policies.roles["account_manager"].calendar]
    created = dt.datetime.now(dt.timezone.utc)
    ticket_id = create_ticket(api)
    wait_until(lambda: {"plan:pro", "hours:email"} <= tags(api, ticket_id), what="policydesk's tags")
    wait_until(lambda: policydesk_notes(api, ticket_id), what="the explaining note")
    ticket = api.get(f"tickets/{ticket_id}").json()
    assert ticket["policydesk_plan"] == "pro"
    assert ticket["policydesk_first_response_due"]
    mentions = api.get(f"mentions?mentionable_type=Ticket&mentionable_id={ticket_id}").json()
    mentioned = {api.get(f"users/{m['user_id']}").json()["email"] for m in mentions.get("mentions", mentions)}
    # a Zammad mention notifies at once: Ana (Mon-Fri 09:00-18:00) is mentioned only within her hours
    within = hours.is_open(created)
    if within == hours.is_open(dt.datetime.now(dt.timezone.utc)):  # not straddling an opening or closing
        assert ("ana.keller@provider.example" in mentioned) == within, (within, mentioned)
    # policydesk's own writes fire no further webhook round (the trigger excludes its user), and a
    # customer's follow-up re-evaluates without a second note: the decision did not change.
    api.put(f"tickets/{ticket_id}", json={"title": "Mail server rejects our messages (still)"})
    time.sleep(1.0)
    assert len(policydesk_notes(api, ticket_id)) == 1


def test_duplicate_delivery_has_one_effect(service, api, standin):
    ticket_id = create_ticket(api)
    wait_until(lambda: policydesk_notes(api, ticket_id), what="first processing")
    payload = {"ticket": {"id": ticket_id, "updated_by_id": 1}, "article": {}}
    first = service.post_zammad(payload, delivery="dup-1")
    second = service.post_zammad(payload, delivery="dup-1")
    assert (first.status_code, first.json()["status"]) == (202, "accepted")
    assert (second.status_code, second.json()["status"]) == (202, "duplicate")
    store = open_store(service.store_url)
    try:
        wait_until(lambda: store.queue_depth() == 0, what="queue drained")
        assert len([e for e in _events(store) if e == "dup-1"]) == 1
    finally:
        store.close()
    notes = policydesk_notes(api, ticket_id)
    assert len(notes) == 1, [n["body"] for n in notes]


def _events(store):
    return [job.delivery_id for job in _all_jobs(store)]


def _all_jobs(store):
    jobs, job_id, misses = [], 1, 0
    while misses < 50:  # ids are dense; stop after a run of missing ones
        job = store.get_job(job_id)
        if job is None:
            misses += 1
        else:
            misses = 0
            jobs.append(job)
        job_id += 1
    return jobs


@pytest.mark.parametrize("how", ["no signature", "wrong token", "tampered body"])
def test_bad_signature_is_refused_and_nothing_stored(service, how):
    store = open_store(service.store_url)
    try:
        before = store.counts()
        payload = {"ticket": {"id": 1}, "article": {}}
        if how == "no signature":
            response = service.post_zammad(payload, **{"X-Hub-Signature": ""})
        elif how == "wrong token":
            response = service.post_zammad(payload, token="not-the-token")
        else:
            good = json.dumps(payload).encode()
            from integrations.signing import zammad_signature
            from service_harness import WEBHOOK_TOKEN

            response = service.post_zammad(good.replace(b"1", b"2"),
                                           **{"X-Hub-Signature": zammad_signature(good, WEBHOOK_TOKEN)})
        assert response.status_code == 401
        assert "error" in response.json() and "Traceback" not in response.text
        assert store.counts() == before
    finally:
        store.close()


def test_zammad_failing_for_a_while_then_everything_lands(service, api, standin):
    standin.state.faults.fail_for(3.0, status=503, path="/api/v1/tickets/")
    ticket_id = create_ticket(api)  # the create itself is not under /tickets/ and succeeds
    time.sleep(0.5)
    # The ticket update (fields, fingerprint and note together) cannot land yet.
    assert policydesk_notes(api, ticket_id) == []
    wait_until(lambda: "plan:pro" in tags(api, ticket_id), timeout=30, what="applied after recovery")
    wait_until(lambda: len(policydesk_notes(api, ticket_id)) == 1, what="one note")
    time.sleep(0.5)
    assert len(policydesk_notes(api, ticket_id)) == 1


def test_sigkill_during_a_burst_loses_nothing_and_applies_nothing_twice(service, api, standin, tmp_path):
    ticket_ids = [create_ticket(api, title=f"burst {n}") for n in range(12)]
    wait_until(lambda: all(policydesk_notes(api, t) for t in ticket_ids), timeout=30, what="initial processing")
    # Customers change the category of every ticket: each event changes the decision once.
    acknowledged: list[str] = []
    stop = threading.Event()

    def burst():
        n = 0
        while not stop.is_set() and n < 400:
            ticket_id = ticket_ids[n % len(ticket_ids)]
            delivery = f"burst-{n}"
            try:
                response = service.post_zammad({"ticket": {"id": ticket_id, "updated_by_id": 1}, "article": {}},
                                               delivery=delivery)
            except Exception:  # the service is being killed: unacknowledged, Zammad would retry
                n += 1
                continue
            if response.status_code == 202:
                acknowledged.append(delivery)
            n += 1

    sender = threading.Thread(target=burst)
    sender.start()
    time.sleep(0.5)
    service.kill(signal.SIGKILL)
    stop.set()
    sender.join()
    service.start()
    store = open_store(service.store_url)
    try:
        wait_until(lambda: store.queue_depth() == 0 and store.counts()["claimed"] == 0, timeout=60,
                   what="every acknowledged event processed after restart")
        done = {job.delivery_id for job in _all_jobs(store) if job.state == "done"}
        lost = [d for d in acknowledged if d not in done]
        print(f"acknowledged={len(acknowledged)} processed={len(done & set(acknowledged))} lost={len(lost)} "
              f"parked={store.counts()['parked']}")
        assert acknowledged and not lost
        assert store.counts()["parked"] == 0
    finally:
        store.close()
    for ticket_id in ticket_ids:
        assert len(policydesk_notes(api, ticket_id)) == 1, f"ticket {ticket_id} got its note twice"


def _backdated_emergency(standin, api, breach_in: float) -> int:
    """An Enterprise 24/7 emergency received by phone almost an hour ago (1 h target): its
    warning step is past, its breach falls due in ``breach_in`` seconds."""
    from integrations.zammad_standin.server import apply_seed

    created = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1) + dt.timedelta(seconds=breach_in)
    stamp = created.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    apply_seed(standin.state, {"tickets": [{
        "title": "Database cluster unreachable", "group": "Support", "customer": "it-ops@helvetia-retail.ch",
        "created_at": stamp, "updated_at": stamp,
        "article": {"type": "phone", "sender": "Customer", "subject": "DB", "body": "down", "internal": False},
    }]})
    ticket_id = max(t["id"] for t in standin.state.all("tickets"))
    response = api.put(f"tickets/{ticket_id}", json={"policydesk_category": "infrastructure",
                                                      "policydesk_emergency": True})
    assert response.status_code == 200, response.text
    return ticket_id


def _escalation_fires_once_at_its_instant(services, api, standin, store_url):
    ticket_id = _backdated_emergency(standin, api, breach_in=4.0)
    wait_until(lambda: "sla:warning" in tags(api, ticket_id), what="the warning step (already past)")
    wait_until(lambda: "sla:breached" in tags(api, ticket_id), timeout=20, what="the breach step")
    store = open_store(store_url)
    try:
        wait_until(lambda: store.queue_depth() == 0 and store.counts()["claimed"] == 0, what="queue drained")
        timers = {t.step: t for t in store.timers_of(str(ticket_id))}
        breach = timers["breach"]
        late = (breach.fired_at - breach.due_at).total_seconds()
        print(f"breach due {breach.due_at.isoformat()} fired {breach.fired_at.isoformat()} ({late:+.3f} s)")
        assert 0 <= late < 1.5, late
        timer_jobs = [j for j in _all_jobs(store) if j.source == "timer" and j.delivery_id.startswith(f"{ticket_id}:")]
        assert sorted(j.delivery_id.rsplit(":", 1)[1] for j in timer_jobs) == ["breach", "warning"]
    finally:
        store.close()
    breach_notes = [n for n in policydesk_notes(api, ticket_id) if "Escalation 'breach'" in n["body"]]
    assert len(breach_notes) == 1
    assert api.get(f"tickets/{ticket_id}?expand=true").json()["priority"] == "3 high"


def test_escalation_fires_once_at_the_right_instant(service, api, standin, store_url):
    _escalation_fires_once_at_its_instant([service], api, standin, store_url)


def test_two_instances_on_postgres_fire_each_step_once(standin, api, tmp_path, request):
    base = request.getfixturevalue("pg_dsn")
    schema = f"e2e_{uuid.uuid4().hex[:10]}"
    store_url = f"{base}{'&' if '?' in base else '?'}schema={schema}"
    first = ServiceProcess(standin.url, store_url, tmp_path / "one.log").start()
    second = ServiceProcess(standin.url, store_url, tmp_path / "two.log").start()
    try:
        sync_zammad(standin.url, first.url)
        # Zammad's webhook reaches one instance; both share the queue, the timers and the leader lock.
        _escalation_fires_once_at_its_instant([first, second], api, standin, store_url)
    finally:
        first.stop()
        second.stop()
        import psycopg

        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def test_downgrade_within_commitment_is_refused_and_changes_nothing(service, api, standin):
    org = next(o for o in standin.state.all("organizations") if o["name"] == "Helvetia Retail Group")
    today = dt.date.today().isoformat()

    def event(kind, plan):
        return {"id": f"evt_{uuid.uuid4().hex[:8]}", "type": kind, "occurred_at": dt.datetime.now(dt.timezone.utc)
                .isoformat(timespec="seconds"), "organization": {"billing_account": "acct_42",
                                                                  "zammad_organization_id": org["id"]},
                "subscription": {"plan": plan, "start": today, "commitment": {"months": 6},
                                 "billing_period": "annual"}}

    created = service.post_billing(event("subscription.created", "enterprise"))
    assert created.status_code == 201, created.text
    assert created.json()["vip_code"]
    store = open_store(service.store_url)
    try:
        wait_until(lambda: store.queue_depth() == 0 and store.counts()["claimed"] == 0, what="activation applied")
        writes_before = len(standin.state.requests.writes())
        refused = service.post_billing(event("subscription.plan_changed", "pro"))
        assert refused.status_code == 409
        assert refused.json()["status"] == "refused" and "downgrade" in refused.json()["reason"]
        time.sleep(1.0)
        assert store.get_subscription(str(org["id"])).plan == "enterprise"
        assert any(e.kind.endswith("refused") for e in store.audit_log(limit=50))
    finally:
        store.close()
    assert api.get(f"organizations/{org['id']}").json()["support_plan"] == "enterprise"
    assert len(standin.state.requests.writes()) == writes_before, "a refused downgrade wrote to Zammad"


def test_agent_reply_stops_the_clock(service, api, standin):
    ticket_id = create_ticket(api)
    wait_until(lambda: policydesk_notes(api, ticket_id), what="first processing")
    store = open_store(service.store_url)
    try:
        wait_until(lambda: any(t.fired_at is None for t in store.timers_of(str(ticket_id))), what="timers set")
        reply = api.post("ticket_articles", json={"ticket_id": ticket_id, "type": "email", "sender": "Agent",
                                                  "internal": False, "body": "We are on it.",
                                                  "to": CUSTOMER_PRO})
        assert reply.status_code == 201, reply.text
        wait_until(lambda: not [t for t in store.timers_of(str(ticket_id)) if t.fired_at is None],
                   what="timers cleared by the first response")
    finally:
        store.close()
    assert api.get(f"tickets/{ticket_id}").json()["first_response_at"]
