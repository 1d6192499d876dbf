"""Retention: old webhook bodies and finished jobs are purged (counts logged and counted);
parked and pending work is never purged, and old parked jobs are reported."""

from __future__ import annotations

import datetime as dt
import logging
import os
import subprocess
import sys
from pathlib import Path

from integrations.service.metrics import Metrics
from integrations.service.retention import Retention, purge
from integrations.store import open_store

REPO = Path(__file__).resolve().parents[3]
UTC = dt.timezone.utc


def fill(store, now: dt.datetime) -> dict[str, int]:
    """Three finished jobs, one parked, one pending."""
    ids = {}
    for n in range(5):
        store.receive("zammad", f"d{n}", b'{"ticket": {"id": %d}}' % n, {}, now)
    jobs = store.claim("w", now, limit=10)
    by_delivery = {job.delivery_id: job for job in jobs}
    for n in range(3):
        store.complete(by_delivery[f"d{n}"].id, worker="w")
    store.park(by_delivery["d3"].id, "ValueError: cannot ever work", worker="w")
    store.retry(by_delivery["d4"].id, "later", now, 0.0, worker="w")
    ids["parked"] = by_delivery["d3"].id
    return ids


def test_purge_deletes_old_finished_work_and_keeps_parked_and_pending(tmp_path, caplog):
    store = open_store(tmp_path / "r.db")
    try:
        now = dt.datetime.now(UTC)
        ids = fill(store, now)
        metrics = Metrics()
        caplog.set_level(logging.INFO, logger="policydesk.retention")
        assert sum(purge(store, Retention(days=30), now=now, metrics=metrics).values()) == 0  # nothing old yet
        later = now + dt.timedelta(days=31)
        counts = purge(store, Retention(days=30), now=later, metrics=metrics)
        assert counts["events"] == 3 and counts["jobs"] == 3
        assert store.counts().get("parked") == 1 and store.counts().get("pending", 0) == 1
        assert store.get_job(ids["parked"]) is not None
        assert 'policydesk_purged_rows_total{table="events"} 3.0' in metrics.render().decode()
        lines = [r.getMessage() for r in caplog.records]
        assert any("retention purge: 6 row(s) deleted" in line and "events=3" in line for line in lines), lines
        assert any("parked job(s) are older than 30 days and are never purged" in line and str(ids["parked"]) in line
                   for line in lines), lines
    finally:
        store.close()


def test_queue_purge_command(tmp_path):
    store = open_store(tmp_path / "q.db")
    old = dt.datetime.now(UTC) - dt.timedelta(days=40)
    fill(store, old)
    store.close()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(REPO),
           "POLICYDESK_RETENTION_DAYS": "0.000001"}
    result = subprocess.run([sys.executable, "-c", "import sys; from integrations.cli import main; sys.exit(main())",
                             "queue", "--purge", "--store", f"sqlite:///{tmp_path / 'q.db'}"],
                            capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "events=3" in result.stdout and "jobs=3" in result.stdout and "parked=1" in result.stdout
    assert "never purged" in result.stderr and "Traceback" not in result.stderr
