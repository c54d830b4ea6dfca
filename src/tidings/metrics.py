"""Prometheus metrics, in a registry per app (tests build many apps in one process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.streams_open = Gauge(
            "tidings_streams_open", "SSE streams open on this instance", registry=self.registry
        )
        self.published = Counter(
            "tidings_published", "Notifications committed by this instance", registry=self.registry
        )
        self.delivered = Counter(
            "tidings_delivered", "Notification frames written to streams", registry=self.registry
        )
        self.dropped = Counter(
            "tidings_subscribers_dropped",
            "Streams cut off by the server",
            ["reason"],
            registry=self.registry,
        )
        self.catch_up = Counter(
            "tidings_catch_up_notifications",
            "Notifications read back from the store to fill a gap",
            registry=self.registry,
        )
        self.broker_errors = Counter(
            "tidings_broker_errors", "Failed broker publishes", registry=self.registry
        )
        self.publish_seconds = Histogram(
            "tidings_publish_seconds",
            "Time from publish request to commit",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=self.registry,
        )
        # -- outbox consumer (tidings.outbox) --------------------------------------------------
        self.outbox_published = Counter(
            "tidings_outbox_published",
            "Outbox rows published (or found published) and deleted by this instance",
            registry=self.registry,
        )
        self.outbox_dead = Counter(
            "tidings_outbox_dead",
            "Outbox rows moved aside to tidings_outbox_dead by this instance",
            registry=self.registry,
        )
        self.outbox_lag = Gauge(
            "tidings_outbox_lag_seconds",
            "Age of the oldest row waiting in tidings_outbox (0 when empty), as last seen",
            registry=self.registry,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
