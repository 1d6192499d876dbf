"""Putting the service together: store, policies, Zammad, worker threads, scheduler, WSGI app.

`Service.from_config` builds everything; `serve` runs it (`integrations.serving.BackgroundServer`) until a signal.
Under gunicorn, `integrations.service.wsgi:application` builds one per worker process.
"""

from __future__ import annotations

import logging
import signal
import socket
import threading
from dataclasses import dataclass, field
from typing import Any, Callable

from integrations.service.app import ServiceSecrets, WebhookService
from integrations.service.config import ServiceConfig
from integrations.service.metrics import Metrics
from integrations.service.policies import PolicyHolder
from integrations.service.processing import Processor, is_transient
from integrations.service.worker import Backoff, Worker
from integrations.store import Store, open_store
from integrations.zammad.adapter import ZammadAdapter, ZammadClient, ZammadSettings

log = logging.getLogger("policydesk.service")


@dataclass
class Service:
    config: ServiceConfig
    store: Store
    holder: PolicyHolder
    adapter: ZammadAdapter
    metrics: Metrics
    processor: Processor
    app: WebhookService
    backoff: Backoff = field(default_factory=Backoff)
    workers: list[Worker] = field(default_factory=list)
    scheduler: Any = None
    reevaluation: Any = None
    threads: list[threading.Thread] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)

    @classmethod
    def from_config(cls, config: ServiceConfig, zammad: ZammadSettings | None = None,
                    backoff: Backoff | None = None) -> "Service":
        import os

        from integrations.service.health import LOGIN_ENV, HealthCheck, ZammadProbe
        from integrations.zammad.client import USER_AGENT

        zammad = zammad or ZammadSettings.load()
        metrics = Metrics()
        store = open_store(config.store_url)
        holder = PolicyHolder(config.policies, on_refused=lambda errors: metrics.reloads_refused.inc())
        adapter = ZammadAdapter(ZammadClient.from_settings(zammad))
        processor = Processor(adapter, lambda: holder.engine, store)
        billing = _billing_handler(store, holder, processor, adapter)
        probe = ZammadProbe(zammad.url, zammad.token, expected_login=os.environ.get(LOGIN_ENV),
                            cache_seconds=config.health_cache_seconds, timeout=min(3.0, zammad.timeout),
                            user_agent=USER_AGENT)
        health = HealthCheck(store.ping, probe, lambda: list(holder.errors))
        app = WebhookService(store, ServiceSecrets(config.zammad_webhook_token, config.billing_secret), metrics,
                             billing=billing, max_body_bytes=config.max_body_bytes, health=health,
                             admin_token=config.admin_token)
        backoff = backoff or Backoff(base_seconds=config.retry_base_seconds, max_attempts=config.max_attempts)
        service = cls(config, store, holder, adapter, metrics, processor, app, backoff)
        service.scheduler = _scheduler(service)
        return service

    def start_background(self) -> None:
        """Start the worker threads, the scheduler and the policy watcher."""
        name = f"{socket.gethostname()}:{id(self) & 0xFFFF:04x}"
        # One dispatcher runs `workers` jobs at once (jobs of one ticket never together).
        worker = Worker(self.store, self.processor, self.metrics, f"{name}/w0", backoff=self.backoff,
                        is_transient=is_transient, lease_seconds=self.config.lease_seconds,
                        concurrency=self.config.workers)
        self.workers.append(worker)
        self._thread(worker.run, "worker")
        if self.scheduler is not None:
            self._thread(lambda: self.scheduler.run(self.stopping), "scheduler")
        from integrations.catchup import install as install_catchup

        self.reevaluation = install_catchup(self)  # catch-up thread; re-evaluation after reloads
        self._thread(self._watch_policies, "policy-watcher")
        self._thread(self._purge_on_schedule, "retention")

    def retention(self) -> Any:
        from integrations.service.retention import Retention

        return Retention(days=self.config.retention_days, audit_days=self.config.audit_retention_days)

    def _purge_on_schedule(self) -> None:
        from integrations.service.retention import purge

        # the first purge a minute after start (not at once: a restart loop must not hammer the store)
        delay = min(60.0, self.config.purge_interval)
        while not self.stopping.wait(delay):
            delay = self.config.purge_interval
            try:
                purge(self.store, self.retention(), metrics=self.metrics)
            except Exception as error:  # the store is down: try again at the next interval
                log.error("retention purge failed (%s: %s); next try in %gs", type(error).__name__,
                          str(error)[:300], delay)

    def _thread(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self.threads.append(thread)

    def _watch_policies(self) -> None:
        while not self.stopping.wait(2.0):
            try:
                self.metrics.sample_process()
                if self.holder.reload_if_changed() and self.reevaluation is not None:
                    self.reevaluation.start(self.holder.policies)
            except Exception:  # a bug in reloading must not stop the service
                log.exception("policy watcher failed")

    def stop(self, timeout: float = 10.0) -> None:
        self.stopping.set()
        if self.reevaluation is not None:
            self.reevaluation.stop()
        for worker in self.workers:
            worker.stop()
        for thread in self.threads:
            thread.join(timeout)
        self.store.close()


def _billing_handler(store: Store, holder: PolicyHolder, processor: Processor, adapter: ZammadAdapter) -> Any:
    """The billing receiver, and its queued Zammad side registered with the processor."""
    from integrations.billing.handler import BillingReceiver
    from integrations.billing.zammad_side import billing_job

    processor.handlers["billing"] = billing_job(processor, store, adapter)
    from integrations.billing.onboarding import zammad_organizations

    return BillingReceiver(store, lambda: holder.policies, organizations=zammad_organizations(adapter))


def _scheduler(service: Service) -> Any:
    from integrations.notify import ZammadNotifier
    from integrations.scheduler import Scheduler

    scheduler = Scheduler(service.store, service.processor, lambda: service.holder.policies, service.metrics,
                          notifier=ZammadNotifier(service.adapter))
    service.processor.handlers["timer"] = scheduler.job_handler()
    return scheduler


def serve(config: ServiceConfig, ready: Callable[[str], None] | None = None) -> None:
    """Run the service until SIGINT or SIGTERM."""
    from integrations.logsetup import mask_secrets
    from integrations.serving import BackgroundServer

    service = Service.from_config(config)
    limits = dict(connection_limit=config.connection_limit, header_timeout=config.header_timeout,
                  body_timeout=config.body_timeout, idle_timeout=config.idle_timeout,
                  max_body_bytes=config.max_body_bytes)
    admin: BackgroundServer | None = None
    try:
        if config.admin_listen is not None:
            admin_app = service.app.split_admin()
            admin = BackgroundServer(admin_app, *config.admin_listen, threads=2, **limits)
        server = BackgroundServer(service.app, config.host, config.port, threads=config.threads, **limits)
    except BaseException:
        if admin is not None:
            admin.stop()
        service.store.close()
        raise
    service.start_background()
    if admin is not None:
        admin.start("admin-http")

    def shutdown(signum: int, frame: Any) -> None:
        # Only set the event: the serving loop closes the listening socket and every
        # kept-alive connection itself, in its own thread.
        log.info("signal %d: shutting down", signum)
        server.stopping.set()

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    log.info("policydesk serving on %s (store %s, policies %s%s)", server.url, mask_secrets(config.store_url),
             config.policies, f"; /healthz and /metrics on {admin.url}" if admin else "")
    if ready:
        ready(server.url)
    try:
        server.serve()
    finally:
        if admin is not None:
            admin.stop()
        service.stop()
