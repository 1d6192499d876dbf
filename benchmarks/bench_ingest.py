"""Ingest: signed Zammad webhooks per second that `policydesk serve` acknowledges (durably stored).

The real service process (``python -m integrations.cli serve``, waitress, 8 threads) on SQLite
(WAL, synchronous=FULL: one fsync per acknowledged webhook) and on PostgreSQL (the local
server, a fresh schema); the load from a separate process (`benchmarks.loadgen`) on
loopback over keep-alive connections. The service's workers point at a Zammad that never
answers (a listening socket that never accepts), so each worker hangs on its first job and
the events just queue: this measures the acknowledgement path alone. Peak RSS of the service process is its
VmHWM from /proc. Targets: 1,000 acknowledged a second with p99 under 20 ms.

``python -m benchmarks ingest``; environment: BENCH_SECONDS (default 10),
BENCH_CONCURRENCY (default 4), POLICYDESK_TEST_PG (PostgreSQL DSN).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
from service_harness import WEBHOOK_TOKEN, ServiceProcess  # noqa: E402

PG_CANDIDATES = ("postgresql://postgres@127.0.0.1:5432/test", "postgresql://root@127.0.0.1:5432/test")


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


def run_load(url: str, seconds: float, concurrency: int, rate: float = 0.0, extra: list[str] | None = None) -> dict:
    command = [sys.executable, "-m", "benchmarks.loadgen", url, "--token", WEBHOOK_TOKEN, "--seconds", str(seconds),
               "--concurrency", str(concurrency), "--rate", str(rate), *(extra or [])]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=seconds + 120)
    if result.returncode != 0:
        raise RuntimeError(result.stderr)
    return json.loads(result.stdout.strip().splitlines()[-1])


def measure(store_name: str, store_url: str, tmp: Path, seconds: float, concurrency: int) -> dict:
    hole, zammad_url = black_hole()
    service = ServiceProcess(zammad_url, store_url, tmp / f"{store_name}.log",
                             POLICYDESK_LOG_LEVEL="ERROR", ZAMMAD_TIMEOUT="600", ZAMMAD_RETRY_ATTEMPTS="1").start()
    try:
        run_load(service.url, 1.0, concurrency)  # warm up (connections, pages, JIT-less caches)
        result = run_load(service.url, seconds, concurrency)
        result["rss_peak_mib"] = vm_hwm_kib(service.proc.pid) / 1024
        return result
    finally:
        service.kill()  # the workers wait on the black hole: no graceful stop needed
        hole.close()


def main() -> str:
    seconds = float(os.environ.get("BENCH_SECONDS", "10"))
    concurrency = int(os.environ.get("BENCH_CONCURRENCY", "4"))
    rows = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        stores = [("SQLite", f"sqlite:///{tmp / 'ingest.db'}")]
        pg = find_pg()
        schema = f"bench_{uuid.uuid4().hex[:10]}"
        if pg:
            stores.append(("PostgreSQL", f"{pg}{'&' if '?' in pg else '?'}schema={schema}"))
        for name, url in stores:
            r = measure(name, url, tmp, seconds, concurrency)
            ok = r["per_second"] >= 1000 and r["p99_ms"] < 20
            rows.append(f"| {name} | {r['per_second']:,.0f}/s | {r['p50_ms']:.1f} ms | {r['p99_ms']:.1f} ms"
                        f" | {r['max_ms']:.0f} ms | {r['rss_peak_mib']:.0f} MiB | {r['acknowledged']:,}"
                        f" ({r['errors']} errors, statuses {r['statuses']}) | {'met' if ok else 'MISSED'} |")
        if pg:
            import psycopg

            with psycopg.connect(pg, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        else:
            rows.append("| PostgreSQL | not measured: no server reachable | | | | | | |")
    return "\n".join([
        f"load: {concurrency} keep-alive connections from a separate process, {seconds:.0f} s, closed loop;"
        " the workers point at a Zammad that never answers (events just queue; no worker writes compete)",
        "",
        "| store | acknowledged | p50 ack | p99 ack | max | service peak RSS | acks | target 1,000/s, p99 < 20 ms |",
        "|---|---:|---:|---:|---:|---:|---|---|",
        *rows,
    ])


if __name__ == "__main__":
    print(main())
