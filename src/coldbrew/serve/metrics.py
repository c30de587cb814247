"""Prometheus metrics, on a registry of the app's own (so several apps can live in a process)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

if TYPE_CHECKING:
    from coldbrew.serve.engine import Engine

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56)


class Metrics:
    """Request counts and latencies per route template, and the size of the index."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "coldbrew_requests",
            "HTTP requests by method, route and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "coldbrew_request_seconds",
            "Request latency by route",
            ["method", "route"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.items = Gauge("coldbrew_index_items", "Items in the index", registry=self.registry)
        self.users = Gauge("coldbrew_users", "Users known to the service", registry=self.registry)

    def bind(self, engine: Engine) -> None:
        self.items.set_function(lambda: len(engine.index))
        self.users.set_function(lambda: len(engine.users))

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
