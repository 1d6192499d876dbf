"""Retention: stored webhook bodies, finished jobs and audit rows are kept for a limited time.

The running service purges on a schedule (``POLICYDESK_PURGE_INTERVAL``) and ``policydesk
queue --purge`` does it once; both log the counts and the service counts them in
``policydesk_purged_rows_total``. Pending, claimed and parked work is never purged: parked
jobs older than the retention are reported in the log instead, to be requeued or looked at.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from integrations.settings import utcnow

log = logging.getLogger("policydesk.retention")


@dataclass(frozen=True)
class Retention:
    #: Days webhook bodies (events) and finished jobs, fired timers, released notifications are kept.
    days: float = 30.0
    #: Days audit rows are kept.
    audit_days: float = 400.0


def purge(store: Any, retention: Retention, now: dt.datetime | None = None, metrics: Any = None) -> dict[str, int]:
    """Delete what is older than the retention; returns counts per table (logged)."""
    now = now or utcnow()
    before = now - dt.timedelta(days=retention.days)
    audit_before = now - dt.timedelta(days=retention.audit_days)
    counts = dict(store.purge(jobs_before=before, bodies_before=before, audit_before=audit_before))
    old_parked = [job for job in store.parked(limit=1000) if _older(job, before)]
    total = sum(counts.values())
    log.info("retention purge: %d row(s) deleted (%s); kept %d parked job(s) older than %g days",
             total, ", ".join(f"{table}={n}" for table, n in sorted(counts.items())) or "nothing",
             len(old_parked), retention.days)
    if old_parked:
        log.warning("%d parked job(s) are older than %g days and are never purged: look at them with "
                    "`policydesk queue` and requeue or fix them (ids: %s)", len(old_parked), retention.days,
                    ", ".join(str(job.id) for job in old_parked[:20]))
    if metrics is not None:
        for table, n in counts.items():
            metrics.purged.labels(table=str(table)).inc(n)
    return counts


def _older(job: Any, before: dt.datetime) -> bool:
    at = getattr(job, "updated_at", None) or getattr(job, "received_at", None) or getattr(job, "created_at", None)
    return isinstance(at, dt.datetime) and at < before
