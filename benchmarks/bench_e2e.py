"""End to end: from the webhook to the last write landing in the Zammad stand-in.

The real `policydesk serve` (SQLite store, default POLICYDESK_WORKERS) next to the Zammad stand-in (in this
process, over HTTP, after `policydesk sync`). Each round's tickets are created first, with
policydesk's webhook off; then `benchmarks.loadgen` (a separate process) sends one signed webhook per ticket at a steady
rate (default 100/s, BENCH_E2E_RATE), each for a ticket policydesk has not decided yet, so
each event causes writes (tags, attributes, mention, note). Latency per event: the
stand-in's request-log timestamp of the last write by policydesk's API user for that
ticket, minus the time the webhook was sent. ``BENCH_ROUNDS`` (default 5) rounds, each with a
fresh stand-in, service and store (the stand-in slows as its tables grow); the figures are
the median of the rounds, with min and max.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "helpers"))
from service_harness import ADMIN_TOKEN, ServiceProcess, sync_zammad, wait_until  # noqa: E402
from zammad_api import Api  # noqa: E402

from benchmarks.bench_ingest import run_load  # noqa: E402
from benchmarks.harness import MIN_ROUNDS, Figure  # noqa: E402
from integrations.zammad_standin import running_standin  # noqa: E402

CUSTOMERS = ["jonas.keller@uhrwerk.ch", "hans.meier@bergbahn-alpin.ch", "claire.favre@choco-leman.ch",
             "it-ops@helvetia-retail.ch", "info@webatelier.ch"]


def ticket_of(entry) -> int | None:
    parts = entry.path.rstrip("/").split("/")
    if "tickets" in parts and parts[-1].isdigit():
        return int(parts[-1])
    body = entry.body if isinstance(entry.body, dict) else {}
    for key in ("o_id", "mentionable_id", "ticket_id"):
        if str(body.get(key, "")).isdigit():
            return int(body[key])
    return None


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def main() -> str:
    rate = float(os.environ.get("BENCH_E2E_RATE", "100"))
    seconds = float(os.environ.get("BENCH_SECONDS", "10"))
    rounds = max(MIN_ROUNDS, int(os.environ.get("BENCH_ROUNDS", "5")))
    count = int(rate * seconds) + 50
    # The stand-in's waitress runs in this process, with no logging set up: at 100/s it warns
    # "Task queue depth is N" on stderr thousands of times a run. Its queue is not what is measured.
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    results = []
    for r in range(rounds):  # each round the same experiment: a fresh stand-in, service and store
        with running_standin(webhook_backoff=0.05) as zammad, tempfile.TemporaryDirectory() as tmp_name:
            tmp = Path(tmp_name)
            api = Api(zammad.url, ADMIN_TOKEN)
            ids = {c: api.get(f"users/search?query={c}").json()[0]["id"] for c in CUSTOMERS}
            service = ServiceProcess(zammad.url, f"sqlite:///{tmp / 'e2e.db'}", tmp / "service.log",
                                     POLICYDESK_LOG_LEVEL="WARNING").start()
            try:
                sync_zammad(zammad.url, service.url)
                tickets = _new_tickets(zammad, api, ids, count, r)
                results.append(_round(zammad, service, tmp, tickets, rate, seconds, r))
            finally:
                service.stop()

    def figure(key: str) -> str:
        return Figure.of([result[key] for result in results]).show(0)

    return "\n".join([
        f"steady {rate:.0f} events/s for {seconds:.0f} s, {rounds} rounds (median, min–max); SQLite store, default"
        " workers; stand-in over HTTP; each event decides a new ticket",
        "",
        "| benchmark | events per round | p50 | p95 | max | processed per second |",
        "|---|---:|---:|---:|---:|---:|",
        f"| webhook -> last write in Zammad | {results[0]['events']} | {figure('p50')} ms | {figure('p95')} ms"
        f" | {figure('max')} ms | {figure('throughput')}/s |",
        "acknowledged p99 per round: " + ", ".join(f"{result['ack_p99']:.1f}" for result in results) + " ms",
    ])


def _new_tickets(zammad: Any, api: Api, ids: dict[str, int], count: int, number: int) -> list[int]:
    """``count`` new tickets, created while policydesk's webhook is off: the load generator
    sends their webhooks, not the stand-in's trigger."""
    webhooks = [w for w in zammad.state.all("webhooks") if str(w.get("name", "")).startswith("policydesk")]
    for webhook in webhooks:
        webhook["active"] = False
    try:
        tickets = []
        for n in range(count):
            customer = CUSTOMERS[n % len(CUSTOMERS)]
            response = api.post("tickets", json={
                "title": f"e2e bench {number}.{n}", "group": "Support", "customer_id": ids[customer],
                "article": {"type": "email", "sender": "Customer", "subject": "x", "body": "Please help.",
                            "internal": False}})
            tickets.append(response.json()["id"])
        return tickets
    finally:
        for webhook in webhooks:
            webhook["active"] = True


def _round(zammad: Any, service: ServiceProcess, tmp: Path, tickets: list[int], rate: float, seconds: float,
           number: int) -> dict[str, float]:
    """One round: webhooks for ``tickets`` at ``rate`` for ``seconds``; latencies once all are written."""
    import time

    zammad.state.requests.clear()
    latencies_file = tmp / f"sent-{number}.txt"
    load = run_load(service.url, seconds, 4, rate=rate,
                    extra=["--tickets", ",".join(map(str, tickets)), "--prefix", f"e2e{number}",
                           "--latencies", str(latencies_file)])
    sent: dict[int, float] = {}
    for line in latencies_file.read_text().splitlines():
        delivery, send_time, _ = line.split()
        sent[tickets[int(delivery.rsplit("-", 1)[1]) % len(tickets)]] = float(send_time)
    policydesk_user = "policydesk@example.com"

    def last_writes() -> dict[int, float]:
        out: dict[int, float] = {}
        for entry in zammad.state.requests.writes():
            if entry.user and entry.user.lower() == policydesk_user and (t := ticket_of(entry)) in sent:
                out[t] = max(out.get(t, 0.0), entry.at)
        return out

    wait_until(lambda: len(last_writes()) >= len(sent), timeout=300, interval=0.5, what="every ticket written")
    time.sleep(2.0)  # let trailing writes of the last events land
    writes = last_writes()
    latencies = [(writes[t] - sent[t]) * 1000 for t in sent if t in writes]
    return {"events": len(latencies), "p50": percentile(latencies, 0.5), "p95": percentile(latencies, 0.95),
            "max": max(latencies), "throughput": len(writes) / (max(writes.values()) - min(sent.values())),
            "ack_p99": load["p99_ms"]}


if __name__ == "__main__":
    print(main())
