"""Load generator: signed Zammad webhooks over keep-alive connections, as a separate process.

    python -m benchmarks.loadgen URL [URL ...] --token TOKEN --seconds 10 --concurrency 8
        [--rate 2000] [--payload minimal|sync|zammad] [--tickets 1,2,3 | --ticket-count 100]

Prints one JSON line: sent, acknowledged (202), other statuses, errors, elapsed seconds,
the payload's size, and ack latencies in milliseconds (p50, p95, p99, max); with
``--latencies FILE`` also writes ``delivery_id send_time ack_time`` per acknowledged
request. ``--rate`` paces the whole load to that many requests a second (open loop: each
connection sends on its own schedule and latency counts from the scheduled send time, so
a server falling behind shows in the latency), else each connection sends as fast as it
is answered (closed loop). Connections are spread over the URLs (several service
processes). Payloads:

* ``minimal`` (default): ``{"ticket": {"id", "updated_by_id", "title", "state"},
  "article": {...}}`` — enough for the service to fetch the rest from Zammad;
* ``sync``: the custom payload `policydesk sync` configures
  (`integrations.zammad.sync_objects.webhook_payload_template`), rendered as Zammad does:
  every ``#{...}`` replaced by the value's text;
* ``zammad``: Zammad's default payload (the whole ticket and article with their
  associations, ~9 KB), as the stand-in builds it for a seeded ticket with an e-mail.

Requests are written on raw sockets from bytes prepared before the clock starts (only the
delivery id changes), so the load generator spends as little CPU as possible on the two
cores it shares with the service.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import re
import socket
import threading
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

TIME = "2026-12-01T19:12:46Z"


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def sync_body(ticket_id: int) -> bytes:
    """sync's custom payload, rendered for one ticket the way Zammad renders it."""
    from integrations.zammad.sync_objects import webhook_payload_template

    values = {"id": str(ticket_id), "number": f"{31000 + ticket_id}", "state": "open", "state_id": "2",
              "priority": "2 normal", "group_id": "2", "owner_id": "3", "customer_id": "7", "organization_id": "2",
              "create_article_type_id": "1", "updated_by_id": "7", "policydesk_plan": "plus",
              "policydesk_fingerprint": "5f1c2a9be03d", "support_plan": "plus", "type": "email",
              "sender": "Customer", "internal": "false", "account_manager": "anna", "partner": "false"}

    named = {"ticket.state.name": "open", "ticket.priority.name": "2 normal", "article.type.name": "email",
             "article.sender.name": "Customer", "article.id": str(ticket_id * 10), "ticket.organization.id": "2"}

    def render(match: re.Match[str]) -> str:
        name = match.group(1)
        path = name.split(".")
        if path[-1] == "xmlschema":
            return TIME if path[-2] in ("created_at", "updated_at") else ""
        return named.get(name, values.get(path[-1], ""))

    return re.sub(r"#\{([^}]*)\}", render, webhook_payload_template()).encode()


def zammad_body(ticket_id: int, _cache: dict[str, Any] = {}) -> bytes:  # noqa: B006 - built once
    """Zammad's default payload for a seeded stand-in ticket, with ``ticket_id`` as its id."""
    if "payload" not in _cache:
        from integrations.zammad_standin.server import build_state
        from integrations.zammad_standin.webhooks import webhook_payload

        state, _token, dispatcher = build_state()
        stop = getattr(dispatcher, "stop", None)
        if callable(stop):
            stop()
        ticket = max(state.all("tickets"), key=lambda t: len(state.articles_of(t["id"])))
        articles = state.articles_of(ticket["id"])
        _cache["payload"] = webhook_payload(state, ticket["id"], articles[-1]["id"] if articles else None)
    payload = json.loads(json.dumps(_cache["payload"]))
    payload["ticket"]["id"] = ticket_id
    return json.dumps(payload).encode()


def minimal_body(ticket_id: int) -> bytes:
    return json.dumps({"ticket": {"id": ticket_id, "updated_by_id": 3, "title": "load", "state": "open"},
                       "article": {"id": ticket_id * 10, "body": "x" * 200}}).encode()


def request_parts(host: str, token: str, body: bytes) -> tuple[bytes, bytes]:
    """The request before and after its delivery id."""
    signature = "sha1=" + hmac.new(token.encode(), body, hashlib.sha1).hexdigest()
    head = (f"POST /webhooks/zammad HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nX-Hub-Signature: {signature}\r\nX-Zammad-Trigger: loadgen\r\n"
            "X-Zammad-Delivery: ").encode()
    return head, b"\r\n\r\n" + body


class Connection:
    """One keep-alive HTTP/1.1 connection that reads just enough of each answer."""

    def __init__(self, host: str, port: int) -> None:
        self.sock = socket.create_connection((host, port), timeout=30)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""

    def exchange(self, request: bytes) -> int:
        self.sock.sendall(request)
        while b"\r\n\r\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed by the server")
            self.buffer += chunk
        head, _, rest = self.buffer.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(rest) < length:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed by the server")
            rest += chunk
        self.buffer = rest[length:]
        return int(head.split(b" ", 2)[1])

    def close(self) -> None:
        self.sock.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("urls", nargs="+")
    parser.add_argument("--token", required=True)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rate", type=float, default=0.0, help="requests per second in total (0: as fast as possible)")
    parser.add_argument("--payload", choices=("minimal", "sync", "zammad"), default="minimal")
    parser.add_argument("--tickets", default="", help="comma-separated ticket ids to cycle through")
    parser.add_argument("--ticket-count", type=int, default=100, help="else this many tickets, ids from 1000")
    parser.add_argument("--prefix", default="")
    parser.add_argument("--latencies", default="")
    args = parser.parse_args(argv)

    targets = [urlsplit(url) for url in args.urls]
    build = {"minimal": minimal_body, "sync": sync_body, "zammad": zammad_body}[args.payload]
    ids = [int(t) for t in args.tickets.split(",")] if args.tickets else [1000 + n for n in range(args.ticket_count)]
    bodies = [build(ticket_id) for ticket_id in ids]
    parts = [[request_parts(f"{t.hostname}:{t.port}", args.token, body) for body in bodies] for t in targets]
    prefix = (args.prefix or uuid.uuid4().hex[:8]).encode()
    lock = threading.Lock()
    latencies: list[float] = []
    records: list[tuple[str, float, float]] = []
    statuses: dict[str, int] = {}
    errors = [0]
    counter = [0]
    interval = args.concurrency / args.rate if args.rate else 0.0
    start = time.perf_counter() + 0.2
    deadline = start + args.seconds

    def run(worker: int) -> None:
        target = targets[worker % len(targets)]
        mine = parts[worker % len(targets)]
        conn = Connection(str(target.hostname), int(target.port or 80))
        next_at = start + worker * (interval / args.concurrency if interval else 0)
        own: list[float] = []
        while True:
            now = time.perf_counter()
            if now >= deadline:
                break
            if interval:
                if next_at > now:
                    time.sleep(next_at - now)
                sent, next_at = next_at, next_at + interval
            else:
                sent = now
            with lock:
                n = counter[0]
                counter[0] += 1
            head, tail = mine[n % len(mine)]
            delivery = prefix + b"-%d" % n
            try:
                status = conn.exchange(head + delivery + tail)
            except OSError:
                with lock:
                    errors[0] += 1
                conn.close()
                conn = Connection(str(target.hostname), int(target.port or 80))
                continue
            done = time.perf_counter()
            with lock:
                statuses[str(status)] = statuses.get(str(status), 0) + 1
                if status == 202 and args.latencies:
                    records.append((delivery.decode(), time.time() - (done - sent), time.time()))
            if status == 202:
                own.append((done - sent) * 1000)
        conn.close()
        with lock:
            latencies.extend(own)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(args.concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    if args.latencies:
        with open(args.latencies, "w") as out:
            out.writelines(f"{d} {s:.6f} {a:.6f}\n" for d, s, a in records)
    print(json.dumps({
        "sent": counter[0], "acknowledged": statuses.get("202", 0), "statuses": statuses, "errors": errors[0],
        "seconds": round(elapsed, 3), "per_second": round(statuses.get("202", 0) / elapsed, 1),
        "payload_bytes": len(bodies[0]),
        "p50_ms": round(percentile(latencies, 0.50), 2), "p95_ms": round(percentile(latencies, 0.95), 2),
        "p99_ms": round(percentile(latencies, 0.99), 2), "max_ms": round(max(latencies, default=float("nan")), 2),
    }))


if __name__ == "__main__":
    main()
