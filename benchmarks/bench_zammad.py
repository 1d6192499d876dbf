"""A realistic Zammad: every API call answered after a delay, tickets created through it, its
own triggers delivering the webhooks.

The Zammad stand-in (in this process, over HTTP) answers every request after
``BENCH_ZAMMAD_DELAY`` seconds (default 0.030: Rails + PostgreSQL answer in tens of
milliseconds). The real `policydesk serve` (SQLite store, default settings) runs beside it,
configured by `policydesk sync` (webhook with sync's custom payload, triggers). Tickets are
created at a steady rate through the stand-in's API, so the stand-in's "ticket created"
trigger delivers each of them, and policydesk's own writes fire "ticket updated" as Zammad
does. Measured:

- Zammad calls per event by kind, counted at the stand-in (requests by policydesk's API
  user for that ticket): a new ticket (including the echo events its writes cause), an
  update that changes nothing (an agent edits the title);
- webhook -> last write: from the stand-in sending the "ticket created" webhook to
  policydesk's last write on that ticket landing, p50/p95/p99, at ``BENCH_ZAMMAD_RATE``
  (default 5) new tickets a second;
- the highest sustained rate: "ticket created" webhooks for tickets made beforehand, sent at
  ``BENCH_ZAMMAD_OFFERED`` a second (default 150, above what policydesk finishes, so the
  queue grows and the rate measured is policydesk's, not the offer's) over 8 connections
  for 3 s, as a Zammad with several background workers delivers them; the rate at which
  policydesk finished them (tickets / time from the first webhook to the last write);
- the same through the stand-in's own delivery: tickets created as fast as
  ``BENCH_ZAMMAD_CREATORS`` clients can (default 12 at once), each webhook sent by the
  stand-in one at a time (its own limit, not policydesk's).
  Median of ``BENCH_ROUNDS`` (default 5) rounds, with min and max.
"""

from __future__ import annotations

import bisect
import os
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "helpers"))
from service_harness import ADMIN_TOKEN, WEBHOOK_TOKEN, ServiceProcess, wait_until  # noqa: E402
from zammad_api import Api  # noqa: E402

from integrations.zammad_standin import running_standin  # noqa: E402

CUSTOMERS = ["jonas.keller@uhrwerk.ch", "hans.meier@bergbahn-alpin.ch", "claire.favre@choco-leman.ch",
             "it-ops@helvetia-retail.ch", "info@webatelier.ch"]
POLICYDESK_USER = "policydesk@example.com"
CREATED_TRIGGER = "policydesk 10 ticket created"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def ticket_of(entry: Any) -> int | None:
    """The ticket a logged request is about (path, tag/mention/article body, query)."""
    parts = entry.path.rstrip("/").split("/")
    if "tickets" in parts and parts[-1].isdigit():
        return int(parts[-1])
    for source in (entry.body if isinstance(entry.body, dict) else {}, entry.query or {}):
        for key in ("o_id", "mentionable_id", "ticket_id"):
            if str(source.get(key, "")).isdigit():
                return int(source[key])
    return None


class Desk:
    """The stand-in with its per-call delay, and policydesk serving beside it."""

    def __init__(self, zammad: Any, service: ServiceProcess, delay: float) -> None:
        self.zammad, self.service, self.delay = zammad, service, delay
        self.api = Api(zammad.url, ADMIN_TOKEN)
        self.customer_ids = {c: self.api.get(f"users/search?query={c}").json()[0]["id"] for c in CUSTOMERS}
        self._n = 0
        self._lock = threading.Lock()
        #: Ticket creations the stand-in dropped in `flat_out` (not counted as created).
        self.failed_creations = 0

    def create_ticket(self) -> int:
        with self._lock:
            self._n += 1
            n = self._n
        customer = CUSTOMERS[n % len(CUSTOMERS)]
        response = self.api.post("tickets", json={
            "title": f"bench {n}", "group": "Support", "customer_id": self.customer_ids[customer],
            "article": {"type": "email" if n % 3 else "phone", "sender": "Customer", "subject": f"bench {n}",
                        "body": "Our mail server rejects every message since this morning.", "internal": False}})
        return int(response.json()["id"])

    def policydesk_calls(self, since: float = 0.0) -> dict[int | None, list[Any]]:
        entries = self.zammad.state.requests.all()
        # Logged in arrival order: start near ``since`` (a scan of the whole log would take
        # the stand-in's own CPU, in this process, away from it).
        start = bisect.bisect_left([e.at for e in entries], since - 5.0)
        out: dict[int | None, list[Any]] = {}
        for entry in entries[start:]:
            if entry.at >= since and (entry.user or "").lower() == POLICYDESK_USER:
                out.setdefault(ticket_of(entry), []).append(entry)
        return out

    def last_writes(self, tickets: set[int], since: float) -> dict[int, float]:
        """When policydesk's last write of each ticket landed (the request plus Zammad's delay)."""
        out: dict[int, float] = {}
        for ticket, entries in self.policydesk_calls(since).items():
            if ticket in tickets:
                writes = [e.at for e in entries if e.is_write]
                if writes:
                    out[ticket] = max(writes) + self.delay
        return out

    def webhook_sent(self, tickets: set[int]) -> dict[int, float]:
        """When the stand-in sent each ticket's "ticket created" webhook."""
        out: dict[int, float] = {}
        for delivery in list(self.zammad.deliveries):
            if delivery.ticket_id in tickets and delivery.trigger_name == CREATED_TRIGGER and delivery.attempts:
                first = delivery.attempts[0]
                out.setdefault(delivery.ticket_id, first.started - first.duration)
        return out

    def settled(self, tickets: set[int], since: float, quiet: float = 1.0) -> bool:
        """Every ticket has its fingerprint and nothing was written for ``quiet`` seconds."""
        state = self.zammad.state
        with state.lock:
            done = all(state.tables["tickets"][t].get("policydesk_fingerprint") for t in tickets)
        writes = self.last_writes(tickets, since)
        return done and (not writes or time.time() - max(writes.values()) > quiet)


def steady(desk: Desk, rate: float, seconds: float) -> list[int]:
    """Create tickets at ``rate`` a second for ``seconds`` (open loop, several clients)."""
    count = max(1, int(rate * seconds))
    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = []
        for n in range(count):
            pause = start + n / rate - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            futures.append(pool.submit(desk.create_ticket))
        return [f.result() for f in futures]


def flat_out(desk: Desk, seconds: float, creators: int) -> list[int]:
    """Create tickets as fast as ``creators`` clients can, for ``seconds``.

    A creation the stand-in drops (its connection reset under this load, seen once in a
    run) is counted in ``desk.failed_creations`` and the client goes on: a client that
    stopped would lower the rate offered, not policydesk's."""
    deadline = time.monotonic() + seconds
    created: list[int] = []
    lock = threading.Lock()

    def creator() -> None:
        while time.monotonic() < deadline:
            try:
                tid = desk.create_ticket()
            except requests.ConnectionError:
                with lock:
                    desk.failed_creations += 1
                continue
            with lock:
                created.append(tid)

    threads = [threading.Thread(target=creator) for _ in range(creators)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return created


def parallel_deliveries(desk: Desk, seconds: float, rate: float, connections: int) -> tuple[list[int], float]:
    """Tickets created while the webhook is off, then their "ticket created" webhooks sent
    at ``rate`` over ``connections`` at once (as a Zammad with several background workers
    delivers them); policydesk's own writes still fire the stand-in's triggers. Returns the
    tickets and when the first webhook was sent."""
    import http.client
    import json
    import uuid
    from urllib.parse import urlsplit

    from integrations.signing import zammad_signature
    from integrations.zammad_standin.webhooks import webhook_payload

    state = desk.zammad.state
    webhook = next(w for w in state.all("webhooks") if str(w.get("name", "")).startswith("policydesk"))
    webhook["active"] = False
    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            tickets = list(pool.map(lambda _: desk.create_ticket(), range(int(rate * seconds))))
    finally:
        webhook["active"] = True
    bodies = []
    for t in tickets:
        article = state.articles_of(t)[0]["id"]
        bodies.append(json.dumps(webhook_payload(state, t, article)).encode())
    target = urlsplit(desk.service.url)
    started = time.time()
    interval = connections / rate

    def send(offset: int) -> None:
        connection = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
        for n in range(offset, len(bodies), connections):
            pause = started + n / rate - time.time()
            if pause > 0:
                time.sleep(pause)
            connection.request("POST", "/webhooks/zammad", body=bodies[n], headers={
                "Content-Type": "application/json", "X-Zammad-Trigger": CREATED_TRIGGER,
                "X-Zammad-Delivery": uuid.uuid4().hex, "X-Hub-Signature": zammad_signature(bodies[n], WEBHOOK_TOKEN)})
            connection.getresponse().read()
        connection.close()

    del interval
    threads = [threading.Thread(target=send, args=(c,)) for c in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return tickets, started


def plan_upgrade(desk: Desk) -> tuple[float, int, int]:
    """The billing system upgrades Uhrwerk Digital (Pro) to Enterprise: (calls per open ticket,
    calls for the organization, open tickets)."""
    import json

    state = desk.zammad.state
    org = next(o for o in state.all("organizations") if o["name"] == "Uhrwerk Digital GmbH")
    with state.lock:
        tickets = {t["id"] for t in state.all("tickets") if t.get("organization_id") == org["id"]}
    since = time.time()
    event = json.loads((REPO / "integrations/billing/examples/subscription.plan_changed.json").read_text())
    event["id"] = f"evt_bench_{int(since)}"
    event["organization"]["zammad_organization_id"] = org["id"]
    today = time.strftime("%Y-%m-%d")
    event["occurred_at"] = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
    event["subscription"].update({"plan": "enterprise", "start": today})
    event["subscription"]["commitment"] = {"end": time.strftime("%Y-%m-%d", time.gmtime(since + 200 * 86400))}
    response = desk.service.post_billing(event)
    if response.status_code >= 300:
        raise RuntimeError(f"billing refused the upgrade: {response.status_code} {response.text[:200]}")
    wait_until(lambda: all(state.tables["tickets"][t].get("policydesk_plan") == "enterprise" for t in tickets),
               timeout=120, interval=0.5, what="the upgrade applied to every open ticket")
    time.sleep(1.5)  # echoes of the upgrade's writes
    calls = desk.policydesk_calls(since)
    per_ticket = sum(len(calls.get(t, [])) for t in tickets) / max(1, len(tickets))
    return per_ticket, sum(len(v) for k, v in calls.items() if k not in tickets), len(tickets)


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) a process has used, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def calls_per_ticket(desk: Desk, tickets: list[int], since: float) -> tuple[float, float]:
    calls = desk.policydesk_calls(since)
    per = [len(calls.get(t, [])) for t in tickets]
    return statistics.mean(per), max(per)


def main() -> str:
    delay = float(os.environ.get("BENCH_ZAMMAD_DELAY", "0.030"))
    rate = float(os.environ.get("BENCH_ZAMMAD_RATE", "5"))
    rounds = int(os.environ.get("BENCH_ROUNDS", "5"))
    seconds = float(os.environ.get("BENCH_SECONDS", "4"))
    creators = int(os.environ.get("BENCH_ZAMMAD_CREATORS", "12"))
    with running_standin(webhook_backoff=0.05, threads=96) as zammad, tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        service = ServiceProcess(zammad.url, f"sqlite:///{tmp / 'bench.db'}", tmp / "service.log",
                                 POLICYDESK_LOG_LEVEL="WARNING").start()
        try:
            configure(zammad, service.url)
            zammad.state.faults.slow_for(24 * 3600, delay=delay)  # every call, from here on
            desk = Desk(zammad, service, delay)
            configured = time.time()
            warm = steady(desk, 2, 2)  # users/me, states, user look-ups: once per process
            wait_until(lambda: desk.settled(set(warm), configured), timeout=60, interval=0.5, what="warm-up")
            once = len(desk.policydesk_calls(configured).get(None, []))

            # 1. latency at a steady rate, and calls per new ticket
            latencies: list[float] = []
            new_calls: list[float] = []
            worst_calls = 0
            for _ in range(rounds):
                since = time.time()
                tickets = steady(desk, rate, seconds)
                wait_until(lambda: desk.settled(set(tickets), since), timeout=120, interval=0.5, what="round")
                sent, last = desk.webhook_sent(set(tickets)), desk.last_writes(set(tickets), since)
                latencies += [(last[t] - sent[t]) * 1000 for t in tickets if t in sent and t in last]
                mean, worst = calls_per_ticket(desk, tickets, since)
                new_calls.append(mean)
                if os.environ.get("BENCH_VERBOSE"):
                    posts = [a.duration * 1000 for d in zammad.deliveries if d.ticket_id in set(tickets)
                             for a in d.attempts]
                    print(f"steady: {len(tickets)} tickets, {len(posts)} deliveries, POST p50 "
                          f"{percentile(posts, 0.5):.1f} ms p95 {percentile(posts, 0.95):.1f} ms", flush=True)
                worst_calls = max(worst_calls, worst)

            # 2. an update that changes nothing: an agent edits the title
            since = time.time()
            for t in tickets:
                desk.api.put(f"tickets/{t}", json={"title": f"edited {t}"})
            time.sleep(2.0)
            wait_until(lambda: desk.settled(set(tickets), since), timeout=60, interval=0.5, what="edits")
            unchanged_mean, unchanged_worst = calls_per_ticket(desk, tickets, since)

            # 3. a plan upgrade: the organization's open tickets re-evaluated
            upgrade = plan_upgrade(desk)

            # 4. the highest sustained rate, webhooks delivered in parallel
            parallel: list[float] = []
            offered = float(os.environ.get("BENCH_ZAMMAD_OFFERED", "150"))
            service_cpu: list[float] = []
            for _ in range(rounds):
                since = time.time()
                cpu_before = process_cpu(service.proc.pid)
                created, started = parallel_deliveries(desk, 3.0, offered, 8)
                wait_until(lambda: desk.settled(set(created), since, quiet=0.5), timeout=180, interval=0.2,
                           what="parallel round")
                last = desk.last_writes(set(created), since)
                parallel.append(len(created) / (max(last.values()) - started))
                service_cpu.append((process_cpu(service.proc.pid) - cpu_before) * 1000 / len(created))
                if os.environ.get("BENCH_VERBOSE"):
                    print(f"parallel: {len(created)} webhooks offered at {offered:g}/s, all written after "
                          f"{max(last.values()) - started:.1f} s; service CPU {service_cpu[-1]:.1f} ms per ticket",
                          flush=True)

            # 5. the same through the stand-in's own (one-at-a-time) webhook delivery
            rates: list[float] = []
            for _ in range(rounds):
                since = time.time()
                started = time.time()
                created = flat_out(desk, seconds, creators)
                created_rate = len(created) / (time.time() - started)
                wait_until(lambda: desk.settled(set(created), since, quiet=0.5), timeout=180, interval=0.2,
                           what="flat-out round")
                last = desk.last_writes(set(created), since)
                finished = max(last.values()) - started
                rates.append(min(created_rate, len(created) / finished))
                if os.environ.get("BENCH_VERBOSE"):
                    sent = desk.webhook_sent(set(created))
                    print(f"flat-out: {len(created)} created at {created_rate:.1f}/s, last webhook sent after "
                          f"{max(sent.values()) - started:.1f} s, all written after {finished:.1f} s; "
                          f"deliveries {len(zammad.deliveries)}, mean POST "
                          f"{statistics.mean(a.duration for d in zammad.deliveries for a in d.attempts) * 1000:.1f} ms",
                          flush=True)
        finally:
            service.stop()
    unchanged = f"{unchanged_mean:.2f} (max {unchanged_worst})"
    return "\n".join([
        f"Zammad stand-in answering every call after {delay * 1000:.0f} ms; policydesk serve with default "
        f"settings (SQLite, POLICYDESK_WORKERS default); tickets created through the stand-in, its own triggers "
        f"delivering; {rounds} rounds",
        "",
        "| event | Zammad calls by policydesk |",
        "|---|---:|",
        f"| new ticket, including the echoes of its writes | {statistics.mean(new_calls):.2f} per ticket "
        f"(max {worst_calls}) |",
        f"| update that changes nothing (title edited) | {unchanged} per update |",
        f"| plan upgrade (Pro -> Enterprise), per open ticket of the organization | {upgrade[0]:.2f} per ticket "
        f"({upgrade[2]} tickets) plus {upgrade[1]} for the organization |",
        f"| once per process (users/me, ticket states, user look-ups) | {once} |",
        "",
        "| benchmark | events | p50 | p95 | p99 | median (min-max) |",
        "|---|---:|---:|---:|---:|---:|",
        f"| webhook -> last write, {rate:g} new tickets/s | {len(latencies)} | {percentile(latencies, 0.5):.0f} ms | "
        f"{percentile(latencies, 0.95):.0f} ms | {percentile(latencies, 0.99):.0f} ms | |",
        f"| highest sustained rate, webhooks offered at {offered:g}/s over 8 connections | {rounds} rounds | | | | "
        f"{statistics.median(parallel):.0f}/s ({min(parallel):.0f}-{max(parallel):.0f}) |",
        f"| policydesk's CPU per new ticket (service process, all threads) | {rounds} rounds | | | | "
        f"{statistics.median(service_cpu):.1f} ms ({min(service_cpu):.1f}-{max(service_cpu):.1f}) |",
        f"| highest sustained rate through the stand-in's one-at-a-time delivery ({creators} creating clients)"
        f" | {rounds} rounds | | | | {statistics.median(rates):.0f}/s ({min(rates):.0f}-{max(rates):.0f}) |",
        *([f"\n{desk.failed_creations} ticket creations were dropped by the stand-in (connection reset) and not"
           " counted"] if desk.failed_creations else []),
    ])


def configure(zammad: Any, service_url: str) -> None:
    """`policydesk sync` as an admin runs it (attributes, calendars, SLAs, webhook, triggers)."""
    from service_harness import sync_zammad

    sync_zammad(zammad.url, service_url)


if __name__ == "__main__":
    print(main())
