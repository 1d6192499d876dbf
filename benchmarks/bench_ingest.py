"""Ingest: signed Zammad webhooks per second that `policydesk serve` acknowledges (durably stored).

The real service process (``python -m integrations.cli serve``, its asyncio HTTP server) on SQLite (WAL,
synchronous=FULL) and on PostgreSQL (the local server, a fresh schema); the load from a
separate process (`benchmarks.loadgen`, raw keep-alive sockets) on loopback, open loop at
the target rate, latency counted from each request's scheduled send time. Receives that
wait at the same moment share one transaction and one fsync (group commit,
:mod:`integrations.store.groupcommit`); each is acknowledged only after that commit.

Two payloads: the custom payload `policydesk sync` configures, rendered as Zammad renders
it (every value a string), and Zammad's default payload (the whole ticket and article,
~9 KB). Targets (issue 14): ≥ 2,000/s with p99 < 20 ms on the first, ≥ 1,000/s with p99 <
50 ms on the second. On PostgreSQL also several service processes on one database (the
load spread over them). The service's workers point at a Zammad that never answers, so
the events just queue: this measures the acknowledgement path alone.

Each configuration runs BENCH_ROUNDS rounds (default 5) of BENCH_SECONDS (default 5) after
a warm-up; the table shows the median with min and max. ``python -m benchmarks ingest``;
environment: BENCH_SECONDS, BENCH_ROUNDS, BENCH_CONCURRENCY (connections, default 32),
BENCH_THREADS (request threads per process, POLICYDESK_THREADS, default 32),
BENCH_PROCESSES (service processes for the multi-process rows, default 2),
POLICYDESK_TEST_PG (PostgreSQL DSN).
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "helpers"))
from service_harness import WEBHOOK_TOKEN, ServiceProcess  # noqa: E402

PG_CANDIDATES = ("postgresql://postgres@127.0.0.1:5432/test", "postgresql://root@127.0.0.1:5432/test")
#: payload -> (target acknowledged per second, p99 limit in ms)
TARGETS = {"sync": (2000, 20.0), "zammad": (1000, 50.0)}


def black_hole() -> tuple[socket.socket, str]:
    """A Zammad that never answers: connections queue in the listen backlog, reads time out."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(4096)
    return sock, f"http://127.0.0.1:{sock.getsockname()[1]}"


def find_pg() -> str | None:
    try:
        import psycopg
    except ImportError:
        return None
    for dsn in ([os.environ["POLICYDESK_TEST_PG"]] if os.environ.get("POLICYDESK_TEST_PG") else PG_CANDIDATES):
        try:
            with psycopg.connect(dsn, connect_timeout=3) as conn:
                conn.execute("SELECT 1")
            return dsn
        except psycopg.Error:
            continue
    return None


def vm_hwm_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_load(url: str | list[str], seconds: float, concurrency: int, rate: float = 0.0,
             extra: list[str] | None = None) -> dict[str, Any]:
    """One run of the load generator in its own process; its JSON result."""
    urls = [url] if isinstance(url, str) else list(url)
    command = [sys.executable, "-m", "benchmarks.loadgen", *urls, "--token", WEBHOOK_TOKEN, "--seconds",
               str(seconds), "--concurrency", str(concurrency), "--rate", str(rate), *(extra or [])]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=seconds + 120)
    if result.returncode != 0:
        raise RuntimeError(result.stderr)
    return json.loads(result.stdout.strip().splitlines()[-1])


def spread(values: list[float], fmt: str) -> str:
    return f"{format(statistics.median(values), fmt)} ({format(min(values), fmt)}–{format(max(values), fmt)})"


def measure(name: str, store_url: str, payload: str, processes: int, tmp: Path, settings: dict[str, Any]) -> str:
    """Start ``processes`` services on one store, run the rounds, return the table row."""
    hole, zammad_url = black_hole()
    services: list[ServiceProcess] = []
    try:
        for n in range(processes):
            services.append(ServiceProcess(
                zammad_url, store_url, tmp / f"{name}-{payload}-{n}.log", POLICYDESK_LOG_LEVEL="ERROR",
                ZAMMAD_TIMEOUT="600", ZAMMAD_RETRY_ATTEMPTS="1", POLICYDESK_THREADS=str(settings["threads"]),
                # The jobs hang on the black hole for ever: without a long lease their
                # heartbeats (one write each) would compete with ingest for the write lock.
                POLICYDESK_LEASE="600",
            ).start())
        urls = [s.url for s in services]
        rate, limit = TARGETS[payload]
        extra = ["--payload", payload]
        run_load(urls, 1.0, settings["concurrency"], rate, extra)  # warm up: connections, caches, pages
        rounds = []
        for _ in range(settings["rounds"]):
            cpu_before = sum(cpu_seconds(s.proc.pid) for s in services if s.proc)
            result = run_load(urls, settings["seconds"], settings["concurrency"], rate, extra)
            cpu_after = sum(cpu_seconds(s.proc.pid) for s in services if s.proc)
            result["cpu_ms"] = 1000 * (cpu_after - cpu_before) / max(1, result["acknowledged"])
            rounds.append(result)
        rss = max(vm_hwm_kib(s.proc.pid) for s in services if s.proc) / 1024
    finally:
        for service in services:
            service.kill()  # the workers wait on the black hole: no graceful stop needed
        hole.close()
    rates = [r["per_second"] for r in rounds]
    p99s = [r["p99_ms"] for r in rounds]
    bad = sum(r["sent"] - r["acknowledged"] for r in rounds)
    met = statistics.median(rates) >= 0.97 * rate and statistics.median(p99s) < limit
    return (f"| {name} | {processes} | {payload} ({rounds[0]['payload_bytes']:,} B) | {rate:,}/s, p99 < {limit:g} ms"
            f" | {spread(rates, ',.0f')}/s | {spread(p99s, '.1f')} ms | {spread([r['p50_ms'] for r in rounds], '.1f')} ms"
            f" | {spread([r['cpu_ms'] for r in rounds], '.2f')} ms | {rss:.0f} MiB | {bad}"
            f" | {'met' if met else 'MISSED'} |")


_BARE_SERVER = """
import sys, threading
from integrations.serving import BackgroundServer, create_server, run_until
def app(environ, start_response):
    environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    body = b'{"status": "accepted", "event": 1}'
    start_response("202 Accepted", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]
if sys.argv[1] == "waitress":
    server = create_server(app, "127.0.0.1", int(sys.argv[2]), threads=int(sys.argv[3]))
    print("ready", flush=True)
    run_until(server, threading.Event())
else:
    server = BackgroundServer(app, "127.0.0.1", int(sys.argv[2]), threads=int(sys.argv[3]))
    print("ready", flush=True)
    server.serve()
"""

#: The HTTP servers measured alone: the service's own, and waitress (what it replaced).
BARE = {"loop": "the service's HTTP server alone (its WSGI path: a pool thread per request, stores nothing)",
        "waitress": "waitress alone (answers 202, stores nothing)"}


def bare_row(server: str, payload: str, settings: dict[str, Any]) -> str:
    """The same load against an HTTP server running an app that does nothing: HTTP's own cost here."""
    from service_harness import free_port

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", _BARE_SERVER, server, str(port), str(settings["threads"])],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        url = f"http://127.0.0.1:{port}"
        rate, limit = TARGETS[payload]
        run_load(url, 1.0, settings["concurrency"], rate, ["--payload", payload])
        rounds = []
        for _ in range(settings["rounds"]):
            before = cpu_seconds(proc.pid)
            result = run_load(url, settings["seconds"], settings["concurrency"], rate, ["--payload", payload])
            result["cpu_ms"] = 1000 * (cpu_seconds(proc.pid) - before) / max(1, result["acknowledged"])
            rounds.append(result)
    finally:
        proc.kill()
        proc.wait(10)
    rates = [r["per_second"] for r in rounds]
    p99s = [r["p99_ms"] for r in rounds]
    return (f"| {BARE[server]} | 1 | {payload} ({rounds[0]['payload_bytes']:,} B)"
            f" | {rate:,}/s, p99 < {limit:g} ms | {spread(rates, ',.0f')}/s | {spread(p99s, '.1f')} ms"
            f" | {spread([r['p50_ms'] for r in rounds], '.1f')} ms | {spread([r['cpu_ms'] for r in rounds], '.2f')} ms"
            " | — | — | reference |")


def store_only(url: str, payload: str, grouped: bool, settings: dict[str, Any]) -> dict[str, list[float]]:
    """The store alone, in this process: ``threads`` threads each receiving events one after
    another for ``seconds``, per round; with group commit (``receive``) or one transaction
    and fsync per event (each ``receive`` in its own ``atomic()`` block, the old way)."""
    import datetime as dt
    import threading
    import time

    from benchmarks.loadgen import sync_body, zammad_body
    from integrations.store import open_store, ticket_key

    body = (sync_body if payload == "sync" else zammad_body)(1000)
    store = open_store(url)
    out: dict[str, list[float]] = {"rate": [], "p99": []}
    try:
        for round_no in range(settings["rounds"]):
            latencies: list[float] = []
            lock = threading.Lock()
            deadline = time.perf_counter() + settings["store_seconds"]

            def run(thread: int) -> None:
                own, n = [], 0
                while time.perf_counter() < deadline:
                    delivery = f"{round_no}-{thread}-{n}"
                    started = time.perf_counter()
                    now = dt.datetime.now(dt.UTC)
                    if grouped:
                        store.receive("zammad", delivery, body, {}, now, key=ticket_key(n % 100))
                    else:
                        with store.atomic():
                            store.receive("zammad", delivery, body, {}, now, key=ticket_key(n % 100))
                    own.append((time.perf_counter() - started) * 1000)
                    n += 1
                with lock:
                    latencies.extend(own)

            started = time.perf_counter()
            threads = [threading.Thread(target=run, args=(i,)) for i in range(settings["threads"])]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            latencies.sort()
            out["rate"].append(len(latencies) / (time.perf_counter() - started))
            out["p99"].append(latencies[int(0.99 * (len(latencies) - 1))] if latencies else float("nan"))
    finally:
        store.close()
    return out


def store_rows(stores: list[tuple[str, str]], settings: dict[str, Any]) -> list[str]:
    rows = []
    for name, url in stores:
        for payload in TARGETS:
            alone = store_only(url, payload, False, settings)
            grouped = store_only(url, payload, True, settings)
            rows.append(
                f"| {name} | {payload} | {spread(alone['rate'], ',.0f')}/s, p99 {spread(alone['p99'], '.1f')} ms"
                f" | {spread(grouped['rate'], ',.0f')}/s, p99 {spread(grouped['p99'], '.1f')} ms"
                f" | {statistics.median(grouped['rate']) / statistics.median(alone['rate']):.1f}× |")
    return rows


def main() -> str:
    settings = {
        "seconds": float(os.environ.get("BENCH_SECONDS", "5")),
        "rounds": max(5, int(os.environ.get("BENCH_ROUNDS", "5"))),
        "concurrency": int(os.environ.get("BENCH_CONCURRENCY", "32")),
        "threads": int(os.environ.get("BENCH_THREADS", "32")),
        "store_seconds": float(os.environ.get("BENCH_STORE_SECONDS", "2")),
    }
    processes = int(os.environ.get("BENCH_PROCESSES", "2"))
    rows = []
    pg = find_pg()
    schemas: list[str] = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        for server in BARE:
            for payload in TARGETS:
                rows.append(bare_row(server, payload, settings))
        for payload in TARGETS:
            rows.append(measure("SQLite", f"sqlite:///{tmp / f'ingest-{payload}.db'}", payload, 1, tmp, settings))
        if pg:
            for payload in TARGETS:
                for count in (1, processes):
                    schema = f"bench_{uuid.uuid4().hex[:10]}"
                    schemas.append(schema)
                    url = f"{pg}{'&' if '?' in pg else '?'}schema={schema}"
                    rows.append(measure("PostgreSQL", url, payload, count, tmp, settings))
        else:
            rows.append("| PostgreSQL | — | not measured: no server reachable | | | | | | | | |")
        store_urls = [("SQLite", f"sqlite:///{tmp / 'store-only.db'}")]
        if pg:
            schema = f"bench_{uuid.uuid4().hex[:10]}"
            schemas.append(schema)
            store_urls.append(("PostgreSQL", f"{pg}{'&' if '?' in pg else '?'}schema={schema}"))
        store_table = store_rows(store_urls, settings)
    if pg:
        import psycopg

        with psycopg.connect(pg, autocommit=True) as conn:
            for schema in schemas:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    return "\n".join([
        f"load: {settings['concurrency']} keep-alive connections from a separate process, open loop at the target"
        f" rate, {settings['rounds']} rounds of {settings['seconds']:g} s (median, min–max);"
        f" {settings['threads']} request threads per service process; {os.cpu_count()} cores; load average before:"
        f" {' '.join(f'{x:.1f}' for x in os.getloadavg())}",
        "",
        "| store | processes | payload | target | acknowledged | p99 ack | p50 ack | service CPU per ack"
        " | peak RSS | not acknowledged | target |",
        "|---|---:|---|---|---:|---:|---:|---:|---:|---:|---|",
        *rows,
        "",
        f"The store alone (no HTTP), {settings['threads']} threads receiving concurrently,"
        f" {settings['rounds']} rounds of {settings['store_seconds']:g} s: one transaction and fsync per event"
        " against group commit (median, min–max):",
        "",
        "| store | payload | one commit per event | group commit | gain |",
        "|---|---|---:|---:|---:|",
        *store_table,
    ])


if __name__ == "__main__":
    print(main())
