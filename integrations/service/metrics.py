"""The service's Prometheus metrics, in a registry of its own (one per service instance)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from integrations.store import Store


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.received = Counter("policydesk_events_received_total", "Webhook events accepted, by source and outcome",
                                ["source", "outcome"], registry=r)
        self.rejected = Counter("policydesk_events_rejected_total", "Webhook requests refused with a 4xx",
                                ["endpoint", "status"], registry=r)
        self.processed = Counter("policydesk_events_processed_total", "Jobs processed, by source and outcome",
                                 ["source", "outcome"], registry=r)
        self.retried = Counter("policydesk_events_retried_total", "Jobs put back for a later attempt",
                               ["source"], registry=r)
        self.parked = Counter("policydesk_events_parked_total", "Jobs parked with their error after the last attempt",
                              ["source"], registry=r)
        self.escalations = Counter("policydesk_escalations_fired_total", "Escalation steps fired", ["step"], registry=r)
        self.ack_latency = Histogram("policydesk_ack_seconds", "Time from request to acknowledgement",
                                     ["source"], registry=r,
                                     buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0))
        self.processing_latency = Histogram("policydesk_processing_seconds", "Time to process one job",
                                            ["source"], registry=r,
                                            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10))
        self.queue_depth = Gauge("policydesk_queue_depth", "Jobs waiting to be processed", registry=r)
        self.jobs = Gauge("policydesk_jobs", "Jobs in the store by state", ["state"], registry=r)

    def refresh(self, store: Store) -> None:
        """Read the gauges that live in the store (shared by every instance)."""
        self.queue_depth.set(store.queue_depth())
        for state, count in store.counts().items():
            self.jobs.labels(state=state).set(count)

    def render(self) -> bytes:
        return generate_latest(self.registry)
