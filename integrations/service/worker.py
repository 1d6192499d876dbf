"""The background worker: claims stored jobs and carries them out, with retries and parking.

A job that fails with a transient error (Zammad down, a timeout, a 5xx) is retried with
exponential backoff; after ``max_attempts`` tries, or at once for an error retrying cannot
fix (a malformed event, a 422 from Zammad), it is parked with its error for an admin to
look at (`policydesk queue` lists and requeues them). Nothing is dropped silently.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import threading
import time
from dataclasses import dataclass
from typing import Callable

from integrations.service.metrics import Metrics
from integrations.settings import utcnow
from integrations.store import Job, Store

log = logging.getLogger("policydesk.worker")


class PermanentError(Exception):
    """Processing can never succeed (a malformed event, a rejected write): park at once."""


@dataclass(frozen=True)
class Backoff:
    base_seconds: float = 2.0
    factor: float = 2.0
    max_seconds: float = 300.0
    max_attempts: int = 8

    def delay(self, attempts: int) -> float:
        """Seconds to wait before attempt ``attempts + 1`` (full jitter in the upper half)."""
        raw = min(self.max_seconds, self.base_seconds * self.factor ** max(0, attempts - 1))
        return raw / 2 + random.random() * raw / 2


#: Carries out one job; returns a short outcome word for logs and metrics.
Processor = Callable[[Job, dt.datetime], str]


class Worker:
    """Runs ``processor`` over the queue until stopped. Several may run, in several processes."""

    def __init__(
        self,
        store: Store,
        processor: Processor,
        metrics: Metrics,
        name: str,
        backoff: Backoff = Backoff(),
        is_transient: Callable[[BaseException], bool] = lambda error: not isinstance(error, PermanentError),
        poll_seconds: float = 0.2,
        lease_seconds: float = 60.0,
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self.store = store
        self.processor = processor
        self.metrics = metrics
        self.name = name
        self.backoff = backoff
        self.is_transient = is_transient
        self.poll_seconds = poll_seconds
        self.lease_seconds = lease_seconds
        self.clock = clock
        self.stopping = threading.Event()

    def run_once(self, limit: int = 10) -> int:
        """Claim up to ``limit`` ready jobs and process them; return how many were claimed."""
        jobs = self.store.claim(self.name, self.clock(), limit=limit, lease_seconds=self.lease_seconds)
        for job in jobs:
            if self.stopping.is_set():
                break  # unprocessed claims go back to the queue when their lease expires
            # The lease ran while earlier jobs of the batch were processed: renew it, and
            # leave the job alone if another worker has taken it over meanwhile.
            if self.store.extend_lease(job.id, self.name, self.clock(), self.lease_seconds):
                self._process(job)
        return len(jobs)

    def _process(self, job: Job) -> None:
        started = time.perf_counter()
        done = threading.Event()
        heartbeat = threading.Thread(target=self._keep_lease, args=(job, done), daemon=True)
        heartbeat.start()  # Zammad retries can outlast a lease: keep the claim while working
        try:
            outcome = self.processor(job, self.clock())
        except Exception as error:
            done.set()
            self._failed(job, error)
            return
        finally:
            done.set()
            heartbeat.join()
            self.metrics.processing_latency.labels(source=job.source).observe(time.perf_counter() - started)
        if not self.store.complete(job.id, worker=self.name):
            log.warning("job %d (%s): lost its claim while processing; another worker may repeat it", job.id,
                        job.source)
        self.metrics.processed.labels(source=job.source, outcome=outcome).inc()
        log.info("job %d (%s) %s", job.id, job.source, outcome)

    def _keep_lease(self, job: Job, done: threading.Event) -> None:
        while not done.wait(self.lease_seconds / 3):
            try:
                self.store.extend_lease(job.id, self.name, self.clock(), self.lease_seconds)
            except Exception:  # the store is unreachable: the lease may lapse, the job is retried
                log.warning("job %d: cannot renew its lease", job.id)

    def _failed(self, job: Job, error: BaseException) -> None:
        reason = f"{type(error).__name__}: {error}"[:2000]
        attempts = job.attempts + 1
        if not self.is_transient(error) or attempts >= self.backoff.max_attempts:
            self.store.park(job.id, reason, worker=self.name)
            self.metrics.parked.labels(source=job.source).inc()
            log.error("job %d (%s) parked after %d attempt(s): %s", job.id, job.source, attempts, reason)
            return
        delay = self.backoff.delay(attempts)
        self.store.retry(job.id, reason, self.clock(), delay, worker=self.name)
        self.metrics.retried.labels(source=job.source).inc()
        log.warning("job %d (%s) attempt %d failed, retry in %.1fs: %s", job.id, job.source, attempts, delay, reason)

    def run(self) -> None:
        """Process until `stop` is called; sleeps ``poll_seconds`` when the queue is empty."""
        while not self.stopping.is_set():
            try:
                claimed = self.run_once()
            except Exception:  # the store itself failed (disk full, database down): wait, retry
                log.exception("worker %s: cannot read the queue; retrying", self.name)
                claimed = 0
                self.stopping.wait(min(5.0, self.poll_seconds * 10))
            if not claimed:
                self.stopping.wait(self.poll_seconds)

    def stop(self) -> None:
        self.stopping.set()
