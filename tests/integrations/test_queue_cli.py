"""`policydesk queue --json`: the queue's counts and parked jobs for scripts."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys

from integrations.store import open_store


def _queue(*args: str, cwd) -> dict:
    done = subprocess.run([sys.executable, "-m", "integrations.cli", "queue", *args, "--json"],
                          capture_output=True, text=True, cwd=cwd, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_queue_json_lists_parked_jobs_and_requeues(tmp_path):
    url = f"sqlite:///{tmp_path / 'store.db'}"
    now = dt.datetime.now(dt.timezone.utc)
    with open_store(url) as store:
        store.receive("zammad", "delivery-1", b'{"ticket": {"id": 7}}', {}, now)
        store.receive("zammad", "delivery-2", b'{"ticket": {"id": 8}}', {}, now)
        job = next(j for j in store.claim("w", now, limit=2) if j.delivery_id == "delivery-1")
        assert store.park(job.id, "Zammad answered 404: ticket 7 not found", "w")
    data = _queue("--store", url, cwd=tmp_path)
    assert data["counts"]["parked"] == 1 and data["purged"] is None and data["requeued"] == {}
    (parked,) = data["parked"]
    assert parked == {"id": job.id, "source": "zammad", "delivery_id": "delivery-1", "attempts": parked["attempts"],
                      "last_error": "Zammad answered 404: ticket 7 not found"}
    again = _queue("--store", url, "--requeue", str(job.id), "--requeue", "999", cwd=tmp_path)
    assert again["requeued"] == {str(job.id): True, "999": False} and again["parked"] == []
    purged = _queue("--store", url, "--purge", cwd=tmp_path)["purged"]
    assert isinstance(purged, dict) and all(isinstance(n, int) for n in purged.values())
