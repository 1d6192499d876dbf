"""The service's Prometheus metrics: bounded labels, correct under several gunicorn workers.

Label values come from fixed sets or from short snake_case codes (`code`), never from a
request: 20,000 requests to random paths add no series. With ``PROMETHEUS_MULTIPROC_DIR``
set (several gunicorn workers, see docs/deploy.md) prometheus-client's multiprocess mode
adds up the counters of every worker and `render` reads them all, whichever worker answers;
without it, one registry per service with the standard process and platform collectors.
"""

from __future__ import annotations

import datetime as dt
import glob
import os
import platform
import re
from typing import Any

from prometheus_client import (CollectorRegistry, Counter, Gauge, Histogram, PlatformCollector, ProcessCollector,
                               generate_latest)

from plugin.version import __version__

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: The endpoints a rejection is counted under; anything else is "other".
ENDPOINTS = frozenset({"zammad", "billing", "healthz", "metrics"})
_NOT_CODE = re.compile(r"[^a-z0-9]+")


def code(value: Any, allowed: frozenset[str] | None = None, *, limit: int = 40) -> str:
    """A short snake_case label value: ``"skipped: own update"`` -> ``skipped_own_update``;
    outside ``allowed`` (when given) -> ``other``."""
    text = _NOT_CODE.sub("_", str(value).lower()).strip("_")[:limit].strip("_") or "unknown"
    if allowed is not None and text not in allowed:
        return "other"
    return text


def endpoint_of(path: str) -> str:
    """The fixed endpoint name of a request path (``/webhooks/zammad`` -> ``zammad``)."""
    name = path.rstrip("/").rsplit("/", 1)[-1]
    return name if name in ENDPOINTS else "other"


def multiprocess() -> bool:
    return bool(os.environ.get(MULTIPROC_ENV))


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self._multi = multiprocess()
        gauge_mode = {"multiprocess_mode": "livemostrecent"} if self._multi else {}
        self.received = Counter("policydesk_events_received_total", "Webhook events accepted, by source and outcome",
                                ["source", "outcome"], registry=r)
        self.rejected = Counter("policydesk_events_rejected_total", "Requests refused with a 4xx, by endpoint",
                                ["endpoint", "status"], registry=r)
        self.processed = Counter("policydesk_events_processed_total", "Jobs processed, by source and outcome",
                                 ["source", "outcome"], registry=r)
        self.retried = Counter("policydesk_events_retried_total", "Jobs put back for a later attempt",
                               ["source"], registry=r)
        self.parked = Counter("policydesk_events_parked_total", "Jobs parked with their error after the last attempt",
                              ["source"], registry=r)
        self.escalations = Counter("policydesk_escalations_fired_total", "Escalation steps fired", ["step"], registry=r)
        self.zammad_errors = Counter("policydesk_zammad_errors_total",
                                     "Failed Zammad calls, by status class (4xx, 5xx, no_response)",
                                     ["status_class"], registry=r)
        self.reloads_refused = Counter("policydesk_policy_reloads_refused_total",
                                       "Policy reloads refused (the last good policies stay in force)", registry=r)
        self.purged = Counter("policydesk_purged_rows_total", "Rows deleted by the retention purge, by table",
                              ["table"], registry=r)
        self.ack_latency = Histogram("policydesk_ack_seconds", "Time from request to acknowledgement",
                                     ["source"], registry=r,
                                     buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0))
        self.processing_latency = Histogram("policydesk_processing_seconds", "Time to process one job",
                                            ["source"], registry=r,
                                            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10))
        self.queue_depth = Gauge("policydesk_queue_depth", "Jobs waiting to be processed", registry=r, **gauge_mode)
        self.jobs = Gauge("policydesk_jobs", "Jobs in the store by state", ["state"], registry=r, **gauge_mode)
        self.oldest_pending = Gauge("policydesk_oldest_pending_job_age_seconds",
                                    "Age of the oldest job waiting to be processed (0 when none)", registry=r,
                                    **gauge_mode)
        build = Gauge("policydesk_build_info", "policydesk's version and Python", ["version", "python"],
                      registry=r, **({"multiprocess_mode": "max"} if self._multi else {}))
        build.labels(version=__version__, python=platform.python_version()).set(1)
        if not self._multi:
            ProcessCollector(registry=r)
            PlatformCollector(registry=r)
        else:  # prometheus-client cannot merge process_* across workers: one series per worker pid instead
            worker = {"registry": r, "multiprocess_mode": "liveall"}
            self.worker_rss = Gauge("policydesk_worker_resident_memory_bytes", "Resident memory of each worker",
                                    **worker)
            self.worker_cpu = Gauge("policydesk_worker_cpu_seconds", "CPU time used by each worker", **worker)
            self.worker_fds = Gauge("policydesk_worker_open_fds", "Open file descriptors of each worker", **worker)
            self.sample_process()

    def sample_process(self) -> None:
        """Under several workers: this worker's memory, CPU and descriptors (the service calls it every few seconds)."""
        if not self._multi:
            return
        times = os.times()
        self.worker_cpu.set(times.user + times.system)
        try:
            with open("/proc/self/statm") as statm:
                self.worker_rss.set(int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE"))
            self.worker_fds.set(len(os.listdir("/proc/self/fd")))
        except (OSError, ValueError, IndexError):  # not Linux: CPU time only
            pass

    def zammad_error(self, error: BaseException) -> None:
        """Count a failed Zammad call (the worker calls this for every job error from Zammad)."""
        status = getattr(error, "status", None)
        self.zammad_errors.labels(status_class=f"{status // 100}xx" if isinstance(status, int) and
                                  100 <= status < 600 else "no_response").inc()

    def refresh(self, store: Any, now: dt.datetime | None = None) -> None:
        """Read the gauges that live in the store (shared by every instance)."""
        self.queue_depth.set(store.queue_depth())
        for state, count in store.counts().items():
            self.jobs.labels(state=code(state)).set(count)
        self.oldest_pending.set(store.oldest_pending_age(now or dt.datetime.now(dt.timezone.utc)))

    def render(self) -> bytes:
        if self._multi:
            registry = CollectorRegistry()
            registry.register(_WorkerFiles(os.environ[MULTIPROC_ENV]))
            return generate_latest(registry)
        return generate_latest(self.registry)


class _WorkerFiles:
    """prometheus-client's `MultiProcessCollector`, leaving out the files that hold no values yet.

    A worker creates its metrics file and only then sizes it; a scrape that reads the file in
    between fails whole (``struct.error``), and a worker killed in between leaves the empty
    file for every later scrape (prometheus/client_python#1199). A file shorter than its
    8-byte header holds no values: it is left out.
    """

    def __init__(self, path: str) -> None:
        self._path = path

    def collect(self) -> Any:
        from prometheus_client.multiprocess import MultiProcessCollector

        files = [path for path in glob.glob(os.path.join(self._path, "*.db")) if _holds_values(path)]
        return MultiProcessCollector.merge(files, accumulate=True)


def _holds_values(path: str) -> bool:
    try:
        return os.path.getsize(path) >= 8
    except OSError:  # removed since the listing (a worker's live gauges, when it ended)
        return False
