"""Prometheus metrics, on a registry of the app's own (so several apps can live in a process):
every request counted and timed by route template (:class:`Observe`, plain ASGI middleware), and
the engine's state read at each scrape of ``/metrics``."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from coldbrew.live.engine import Engine

log = logging.getLogger("coldbrew.serve")
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
        self.registry.register(ModelCollector(engine))
        self.registry.register(EncoderCollector(engine))
        if engine.fleet is not None:
            self.registry.register(ReplicaCollector(engine))

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class Observe:
    """Count and time every request by route template, as plain ASGI (no per-request task).

    Only the method, route template and status are recorded: bodies (user text) never are.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def observed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, observed_send)
        finally:
            path = getattr(scope.get("route"), "path", "unmatched")
            seconds = time.perf_counter() - start
            self.metrics.observe(scope["method"], path, status, seconds)
            log.debug("%s %s %s %.1fms", scope["method"], path, status, seconds * 1e3)


class ModelCollector(Collector):
    """The served model's version and the refits, read from the engine at each scrape."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[Any]:
        status = self.engine.model_status()
        info = InfoMetricFamily(
            "coldbrew_model", "The served model: its name, version, kind and query encoder"
        )
        labels = {"version": status["version"], "kind": status["kind"]}
        names = {"name": self.engine.model_name, "encoder": self.engine.query_encoder_name}
        info.add_metric([], {**labels, **names})
        yield info
        refits = CounterMetricFamily(
            "coldbrew_refits", "Finished refits by outcome", labels=["outcome"]
        )
        for outcome, count in status["outcomes"].items():
            refits.add_metric([outcome], count)
        yield refits
        last = status["last"]
        running = GaugeMetricFamily("coldbrew_refit_running", "1 while a refit runs")
        running.add_metric([], float(status["running"]))
        yield running
        if last.get("seconds") is not None:
            seconds = GaugeMetricFamily(
                "coldbrew_refit_seconds", "Wall time of the last finished refit"
            )
            seconds.add_metric([], float(last["seconds"]))
            yield seconds
        ndcg = GaugeMetricFamily(
            "coldbrew_refit_validation_ndcg20",
            "NDCG@20 on the newest unseen interactions at the last refit",
            labels=["model"],
        )
        for name in ("candidate", "serving"):
            value = last.get("validation", {}).get(name, {}).get("ndcg20")
            if value is not None:
                ndcg.add_metric([name], float(value))
        yield ndcg


class EncoderCollector(Collector):
    """Texts the language model has encoded, by kind (``passage``: item texts a write brought;
    ``query``: users' words): what the stored vectors and the memory of queries did not save."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[Any]:
        encoded = CounterMetricFamily(
            "coldbrew_encoded_texts", "Texts run through the encoder, by kind", labels=["kind"]
        )
        for kind, count in sorted(self.engine.encoder.encoded.items()):
            encoded.add_metric([kind], count)
        yield encoded


class ReplicaCollector(Collector):
    """A replica's place in the fleet (PostgreSQL only): trainer or not, the log it follows."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[Any]:
        fleet = self.engine.fleet
        if fleet is None:
            return
        gauges = {
            "coldbrew_replica_trainer": ("1 on the replica that refits for the fleet", 0.0),
            "coldbrew_replica_log_position": ("Id of the last change seen here", 0.0),
            "coldbrew_replica_lag_seconds": ("Commit to applied, the last batch applied", 0.0),
            "coldbrew_replica_behind": ("1 if the log was pruned past this replica", 0.0),
        }
        values = (float(fleet.is_trainer()), fleet.seen, fleet.last_lag, float(fleet.behind))
        for (name, (text, _)), value in zip(gauges.items(), values):
            gauge = GaugeMetricFamily(name, text)
            gauge.add_metric([], float(value))
            yield gauge
        applied = CounterMetricFamily(
            "coldbrew_replica_changes_applied", "Changes from other replicas applied here"
        )
        applied.add_metric([], fleet.applied)
        yield applied
