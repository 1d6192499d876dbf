"""The background worker: claims stored jobs and carries them out, with retries and parking.

One dispatcher claims jobs in batches and runs up to ``concurrency`` of them at once on
threads (Zammad answers in tens of milliseconds: the calls of many tickets overlap). Jobs of
one ticket never run at once: a job whose ticket is busy waits, and when several wait, only
the newest runs (its payload is the latest state; Zammad renders a payload when it delivers
it) and the older ones are completed as coalesced -- a burst of triggers costs one
evaluation. The dispatcher sleeps until work arrives (`notify_work`, or the store's own
wake-up signal when it has one), not on a polling interval.

A job that fails with a transient error (Zammad down, a timeout, a 5xx) is retried with
exponential backoff; after ``max_attempts`` tries, or at once for an error retrying cannot
fix (a malformed event, a 422 from Zammad), it is parked with its error for an admin to
look at (`policydesk queue` lists and requeues them). Nothing is dropped silently.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable

from integrations.service.metrics import Metrics, code
from integrations.settings import utcnow
from integrations.store import Job, Store
from integrations.zammad.errors import ZammadError

log = logging.getLogger("policydesk.worker")

#: Signalled when a job is stored in this process (the webhook app calls `notify_work`).
_WORK = threading.Condition()
_WORK_SEQ = [0]


def notify_work() -> None:
    """Wake the idle workers of this process: a job was just stored."""
    with _WORK:
        _WORK_SEQ[0] += 1
        _WORK.notify_all()


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


def ticket_key(job: Job) -> str | None:
    """The ticket a job is about, when it is a Zammad event (jobs of one ticket are serialised)."""
    key = getattr(job, "key", None)  # the store's own key, when it keeps one
    if key:
        return str(key)
    if job.source != "zammad":
        return None
    try:
        return f"ticket:{int(json.loads(job.body)['ticket']['id'])}"
    except (ValueError, KeyError, TypeError):
        return None


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
        poll_seconds: float = 1.0,
        lease_seconds: float = 60.0,
        clock: Callable[[], dt.datetime] = utcnow,
        concurrency: int = 1,
        key: Callable[[Job], str | None] = ticket_key,
    ) -> None:
        self.store = store
        self.processor = processor
        self.metrics = metrics
        self.name = name
        self.backoff = backoff
        self.is_transient = is_transient
        #: Longest idle sleep: retries coming due and other processes' jobs are seen this late.
        self.poll_seconds = poll_seconds
        self.lease_seconds = lease_seconds
        self.clock = clock
        self.concurrency = max(1, concurrency)
        self.key = key
        self.stopping = threading.Event()
        self._lock = threading.Condition()
        self._held: dict[int, Job] = {}  # claimed by us, running or waiting for their ticket
        self._busy: set[str] = set()  # tickets with a running job
        self._waiting: dict[str, list[Job]] = {}
        self._running = 0
        self._store_down = False
        self._unrecorded: list[tuple[Job, str]] = []  # done, but the store could not be told
        self._finished: list[tuple[Job, str]] = []  # done, to be recorded by the next commit
        self._finishing = threading.Condition()
        self._batching = False  # `run` records completions in groups (one commit for many)
        self._drained = threading.Event()  # no job runs any more: the recorder may end

    # ----------------------------------------------------------------- one batch

    def run_once(self, limit: int = 10) -> int:
        """Claim up to ``limit`` ready jobs and process them here, one after another
        (coalescing those of one ticket); return how many were claimed."""
        jobs = self.store.claim(self.name, self.clock(), limit=limit, lease_seconds=self.lease_seconds)
        for job in self._coalesce(jobs):
            if self.stopping.is_set():
                break  # unprocessed claims go back to the queue when their lease expires
            self._process(job)
        return len(jobs)

    def _coalesce(self, jobs: list[Job]) -> list[Job]:
        """Per ticket only the newest job; the older ones are completed as folded into it."""
        newest: dict[str, Job] = {}
        for job in jobs:
            key = self.key(job)
            if key is not None and (key not in newest or newest[key].id < job.id):
                newest[key] = job
        keep = {j.id for j in newest.values()}
        out = []
        for job in jobs:
            key = self.key(job)
            if key is None or job.id in keep:
                out.append(job)
            else:
                self._complete_coalesced(job, newest[key])
        return out

    def _complete_coalesced(self, job: Job, into: Job) -> None:
        try:
            self.store.complete(job.id, worker=self.name)
        except Exception as error:  # the lease lapses and the job is simply done again later
            log.warning("job %d: cannot mark it coalesced into %d: %s", job.id, into.id, _one_line(error))
            return
        self.metrics.processed.labels(source=job.source, outcome="coalesced").inc()
        log.debug("job %d (%s) coalesced into job %d", job.id, job.source, into.id)

    def _process(self, job: Job) -> None:
        started = time.perf_counter()
        try:
            outcome = self.processor(job, self.clock())
        except Exception as error:
            self._failed(job, error)
            return
        finally:
            self.metrics.processing_latency.labels(source=job.source).observe(time.perf_counter() - started)
        if self._batching:
            with self._finishing:
                self._finished.append((job, outcome))
                self._finishing.notify()
            return
        self._record(job, outcome)

    def _record(self, job: Job, outcome: str) -> None:
        try:
            completed = self.store.complete(job.id, worker=self.name)
        except Exception as error:  # the store is down: tell it again when it is back
            log.warning("job %d (%s): done but not recorded yet (%s)", job.id, job.source, _one_line(error))
            with self._lock:
                self._unrecorded.append((job, outcome))
            return
        self._completed(job, outcome, completed)

    def _completed(self, job: Job, outcome: str, completed: bool) -> None:
        if not completed:
            log.warning("job %d (%s): lost its claim while processing; another worker may repeat it", job.id,
                        job.source)
        self.metrics.processed.labels(source=code(job.source), outcome=code(outcome)).inc()
        log.info("job %d (%s) %s", job.id, job.source, outcome)

    def _failed(self, job: Job, error: BaseException) -> None:
        reason = _one_line(error)[:2000]
        attempts = job.attempts + 1
        if isinstance(error, ZammadError):
            self.metrics.zammad_error(error)
        try:
            if not self.is_transient(error) or attempts >= self.backoff.max_attempts:
                self.store.park(job.id, reason, worker=self.name)
                self.metrics.parked.labels(source=job.source).inc()
                log.error("job %d (%s) parked after %d attempt(s): %s", job.id, job.source, attempts, reason)
                return
            delay = self.backoff.delay(attempts)
            self.store.retry(job.id, reason, self.clock(), delay, worker=self.name)
        except Exception as store_error:  # the store is down too: the lease lapses, the job returns
            log.warning("job %d (%s) failed (%s) and cannot be rescheduled (%s)", job.id, job.source, reason,
                        _one_line(store_error))
            return
        self.metrics.retried.labels(source=job.source).inc()
        log.warning("job %d (%s) attempt %d failed, retry in %.1fs: %s", job.id, job.source, attempts, delay, reason)

    # ----------------------------------------------------------------- the dispatcher

    def run(self) -> None:
        """Process until `stop` is called, ``concurrency`` jobs at a time."""
        pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix=f"job-{self.name}")
        heartbeat = threading.Thread(target=self._keep_leases, name=f"lease-{self.name}", daemon=True)
        heartbeat.start()
        self._batching = True
        self._drained.clear()
        recorder = threading.Thread(target=self._record_finished, name=f"done-{self.name}", daemon=True)
        recorder.start()
        try:
            while not self.stopping.is_set():
                with self._lock:  # claim ahead by one round, so a slot never waits for the store
                    free = 2 * self.concurrency - self._running
                    while free <= 0 and not self.stopping.is_set():
                        self._lock.wait(self.poll_seconds)  # a running job ends
                        free = 2 * self.concurrency - self._running
                if self.stopping.is_set():
                    break
                seen = _WORK_SEQ[0]
                jobs = self._claim(free)
                for job in jobs:
                    self._admit(job, pool)
                if not jobs:
                    self._sleep(seen)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            self.stopping.set()
            self._drained.set()
            with self._finishing:
                self._finishing.notify_all()
            recorder.join(10)
            heartbeat.join(5)
            self._batching = False

    def _record_finished(self) -> None:
        """Record finished jobs in groups: one transaction (one fsync) for all that are waiting."""
        while True:
            with self._finishing:
                while not self._finished and not self._drained.is_set():
                    self._finishing.wait(self.poll_seconds)
                batch, self._finished = self._finished, []
            if not batch:
                if self._drained.is_set():
                    return
                continue
            try:
                with self.store.atomic(durable=False):  # redone if a power failure undoes it
                    results = [(job, outcome, self.store.complete(job.id, worker=self.name)) for job, outcome in batch]
            except Exception as error:  # the store is down: tell it again when it is back
                log.warning("%d job(s) done but not recorded yet (%s)", len(batch), _one_line(error))
                with self._lock:
                    self._unrecorded.extend(batch)
                continue
            for job, outcome, completed in results:
                self._completed(job, outcome, completed)

    def _record_done(self) -> None:
        """Tell the store about jobs done while it was unreachable (else they would be redone)."""
        with self._lock:
            pending, self._unrecorded = self._unrecorded, []
        for n, (job, outcome) in enumerate(pending):
            try:
                completed = self.store.complete(job.id, worker=self.name)
            except Exception:
                with self._lock:
                    self._unrecorded.extend(pending[n:])
                return
            self._completed(job, outcome, completed)

    def _claim(self, free: int) -> list[Job]:
        if self._unrecorded:
            self._record_done()
        try:
            jobs = self.store.claim(self.name, self.clock(), limit=free, lease_seconds=self.lease_seconds)
        except Exception as error:  # the store itself failed (disk full, database down): wait, retry
            delay = min(5.0, max(0.05, self.poll_seconds * 2))
            log.warning("worker %s: cannot read the queue (%s); retrying in %.1fs", self.name, _one_line(error), delay)
            self._store_down = True
            self.stopping.wait(delay)
            return []
        if self._store_down:
            log.info("worker %s: the queue is readable again", self.name)
            self._store_down = False
        return jobs

    def _sleep(self, seen: int) -> None:
        """Until work arrives in this process, or the store says so, or ``poll_seconds``."""
        wait_for_work = getattr(self.store, "wait_for_work", None)
        if wait_for_work is not None:
            wait_for_work(self.poll_seconds)
            return
        with _WORK:
            if _WORK_SEQ[0] == seen:
                _WORK.wait(self.poll_seconds)

    def _admit(self, job: Job, pool: ThreadPoolExecutor) -> None:
        key = self.key(job)
        with self._lock:
            self._held[job.id] = job
            if key is not None and key in self._busy:
                self._waiting.setdefault(key, []).append(job)
                return
            if key is not None:
                self._busy.add(key)
            self._running += 1
        pool.submit(self._run_job, job, key, pool)

    def _run_job(self, job: Job, key: str | None, pool: ThreadPoolExecutor) -> None:
        try:
            if not self.stopping.is_set():
                self._process(job)
        finally:
            folded: list[Job] = []
            following: Job | None = None
            with self._lock:
                self._held.pop(job.id, None)
                waiting = self._waiting.pop(key, []) if key is not None else []
                if waiting and not self.stopping.is_set():
                    following = max(waiting, key=lambda j: j.id)
                    folded = [j for j in waiting if j is not following]
                    for j in folded:
                        self._held.pop(j.id, None)
                else:
                    self._busy.discard(key) if key is not None else None
                    self._running -= 1
                    self._lock.notify_all()
            for j in folded:
                self._complete_coalesced(j, following)  # type: ignore[arg-type]
            if following is not None:
                try:
                    pool.submit(self._run_job, following, key, pool)
                except RuntimeError:  # shutting down: its claim lapses and it runs again later
                    with self._lock:
                        self._busy.discard(key)  # type: ignore[arg-type]
                        self._running -= 1
                        self._lock.notify_all()

    def _keep_leases(self) -> None:
        """Renew the claims of every held job (Zammad retries can outlast a lease)."""
        while not self.stopping.wait(self.lease_seconds / 3):
            with self._lock:
                held = list(self._held.values())
            for job in held:
                try:
                    self.store.extend_lease(job.id, self.name, self.clock(), self.lease_seconds)
                except Exception as error:  # the store is unreachable: the lease may lapse, the job is retried
                    log.warning("job %d: cannot renew its lease (%s)", job.id, _one_line(error))
                    break

    def stop(self) -> None:
        self.stopping.set()
        with self._lock:
            self._lock.notify_all()
        wake = getattr(self.store, "notify_work", None)
        if wake is not None:
            wake()
        with _WORK:
            _WORK.notify_all()


def _one_line(error: BaseException) -> str:
    """``Type: message`` on one line (no traceback in the log for an expected failure)."""
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
