"""Load generator: signed Zammad webhooks over keep-alive connections, as a separate process.

    python -m benchmarks.loadgen URL --token TOKEN --seconds 10 --concurrency 4 [--rate 100]

Prints one JSON line: sent, acknowledged (202), other statuses, errors, elapsed seconds,
and ack latencies in milliseconds (p50, p95, p99, max); with ``--latencies FILE`` also
writes ``delivery_id send_time ack_time`` per acknowledged request. ``--rate`` paces the
whole load to that many requests a second (open loop), else each connection sends as
fast as it is answered (closed loop). Uses only the standard library (http.client).
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import http.client
import json
import threading
import time
import uuid
from urllib.parse import urlsplit


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--token", required=True)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--rate", type=float, default=0.0, help="requests per second in total (0: as fast as possible)")
    parser.add_argument("--tickets", default="1", help="comma-separated ticket ids to cycle through")
    parser.add_argument("--prefix", default="")
    parser.add_argument("--latencies", default="")
    args = parser.parse_args(argv)

    target = urlsplit(args.url)
    tickets = [int(t) for t in args.tickets.split(",")]
    prefix = args.prefix or uuid.uuid4().hex[:8]
    lock = threading.Lock()
    latencies: list[float] = []
    records: list[tuple[str, float, float]] = []
    statuses: dict[str, int] = {}
    errors = [0]
    counter = [0]
    start = time.perf_counter()
    deadline = start + args.seconds
    interval = args.concurrency / args.rate if args.rate else 0.0

    def connection() -> http.client.HTTPConnection:
        return http.client.HTTPConnection(target.hostname, target.port, timeout=30)

    def run(worker: int) -> None:
        conn = connection()
        next_at = start + worker * (interval / args.concurrency if interval else 0)
        while True:
            now = time.perf_counter()
            if now >= deadline:
                break
            if interval:
                if next_at > now:
                    time.sleep(next_at - now)
                next_at += interval
            with lock:
                n = counter[0]
                counter[0] += 1
            delivery = f"{prefix}-{n}"
            body = json.dumps({"ticket": {"id": tickets[n % len(tickets)], "updated_by_id": 3,
                                          "title": "load", "state": "open"},
                               "article": {"id": n, "body": "x" * 200}}).encode()
            signature = "sha1=" + hmac.new(args.token.encode(), body, hashlib.sha1).hexdigest()
            headers = {"Content-Type": "application/json", "X-Zammad-Delivery": delivery,
                       "X-Hub-Signature": signature, "X-Zammad-Trigger": "loadgen"}
            sent = time.perf_counter()
            try:
                conn.request("POST", "/webhooks/zammad", body, headers)
                response = conn.getresponse()
                response.read()
            except (OSError, http.client.HTTPException):
                with lock:
                    errors[0] += 1
                conn.close()
                conn = connection()
                continue
            done = time.perf_counter()
            with lock:
                statuses[str(response.status)] = statuses.get(str(response.status), 0) + 1
                if response.status == 202:
                    latencies.append((done - sent) * 1000)
                    if args.latencies:
                        records.append((delivery, time.time() - (done - sent), time.time()))
        conn.close()

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
        "p50_ms": round(percentile(latencies, 0.50), 2), "p95_ms": round(percentile(latencies, 0.95), 2),
        "p99_ms": round(percentile(latencies, 0.99), 2), "max_ms": round(max(latencies, default=float("nan")), 2),
    }))


if __name__ == "__main__":
    main()
