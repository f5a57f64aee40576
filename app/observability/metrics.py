"""Prometheus metrics of one process, exposed as `/metrics` on its internal port only.

Counters and histograms live in the process-wide default registry and are updated where things
happen (the request observer, the ingest pipeline, the flusher, the Dramatiq middleware, the
site cache). Gauges read from Redis (stream length, oldest pending event, dead letters) are
collected at scrape time by `RedisCollector`, with a short timeout.

Processes: each process exposes its own metrics on its own `METRICS_PORT`. `ursa serve` runs
the web app, the worker threads and the scheduler in one process, so its internal app shows all
of them; `ursa web` shows the HTTP and ingest metrics on its internal app; a separate
`ursa worker` process runs a `MetricsServer` to show its job and flush metrics (and its health
checks), as does `ursa scheduler`. With an OTLP endpoint set, each process also pushes the same
metrics there (`app.observability.otlp`). Scrape each process; sum across them in queries
(`sum by (actor) (rate(ursa_jobs_total[5m]))`).

The HTTP histogram's `_count` series is the request count, by method, route template and
status class. A cache's hit ratio (`sites` in process, `view-cards` in the cache Redis) is
`sum(rate(ursa_cache_requests_total{cache="sites", result="hit"}[5m]))
/ sum(rate(ursa_cache_requests_total{cache="sites"}[5m]))`.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any, Protocol
from wsgiref.simple_server import WSGIRequestHandler, make_server
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

import redis
from dramatiq.common import xq_name
from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    make_wsgi_app,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import ThreadingWSGIServer
from prometheus_client.registry import Collector

from app.analytics.buffer.enrich import stream_millis
from app.analytics.buffer.stream import GROUP

disable_created_metrics()  # type: ignore[no-untyped-call]  # no `_created` series

SCRAPE_TIMEOUT_SECONDS = 0.5
DRAMATIQ_NAMESPACE = "dramatiq"  # the Redis broker's default key prefix

HTTP_REQUEST_SECONDS = Histogram(
    "ursa_http_request_duration_seconds",
    "HTTP requests by method, route template and status class (2xx…); _count counts them.",
    ["method", "route", "status"],
)
EVENTS_RECEIVED = Counter(
    "ursa_events_received", "Well-formed events that entered the ingest pipeline."
)
EVENTS_DROPPED = Counter(
    "ursa_events_dropped", "Events accepted but not stored, by reason.", ["reason"]
)
INGEST_ERRORS = Counter(
    "ursa_ingest_errors",
    "Ingest requests that failed on a fault of ours (answered 500, logged with a traceback).",
)
EVENTS_BUFFERED = Counter(
    "ursa_events_buffered", "Entries appended to the Redis buffer (one per site of an event)."
)
EVENTS_WRITTEN = Counter(
    "ursa_events_written", "Rows inserted into ClickHouse by the flusher, by table.", ["table"]
)
FLUSH_BATCH_SECONDS = Histogram(
    "ursa_flush_batch_duration_seconds",
    "Time to move one batch from the buffer into ClickHouse.",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
JOBS = Counter("ursa_jobs", "Dramatiq jobs processed, by actor and outcome.", ["actor", "outcome"])
JOB_SECONDS = Histogram(
    "ursa_job_duration_seconds",
    "Run time of Dramatiq jobs, by actor.",
    ["actor"],
    buckets=(0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0),
)
CACHE_REQUESTS = Counter(
    "ursa_cache_requests", "Cache lookups, by cache and result.", ["cache", "result"]
)
SITE_CACHE_HITS = CACHE_REQUESTS.labels(cache="sites", result="hit")
SITE_CACHE_MISSES = CACHE_REQUESTS.labels(cache="sites", result="miss")


class RedisCollector(Collector):
    """Buffer and queue gauges read from Redis at scrape time.

    A Redis that does not answer within `SCRAPE_TIMEOUT_SECONDS` makes the scrape report
    `ursa_redis_scrape_success 0` (and no other gauge of this collector) instead of hanging.
    """

    def __init__(self, redis_url: str, stream: str, queues: Iterable[str]) -> None:
        self.client = redis.Redis.from_url(
            redis_url,
            socket_timeout=SCRAPE_TIMEOUT_SECONDS,
            socket_connect_timeout=SCRAPE_TIMEOUT_SECONDS,
        )
        self.stream = stream
        self.queues = sorted(set(queues))

    def describe(self) -> list[Any]:
        return []  # collected at scrape time only (registering must not touch Redis)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        success = GaugeMetricFamily(
            "ursa_redis_scrape_success", "1 if Redis answered this scrape's reads, else 0."
        )
        try:
            gauges = [self._stream_length(), self._oldest_pending_age(), self._dead_letters()]
        except redis.RedisError:
            success.add_metric([], 0)
            yield success
            return
        success.add_metric([], 1)
        yield success
        yield from gauges

    def close(self) -> None:
        self.client.close()

    def _stream_length(self) -> GaugeMetricFamily:
        length: Any = self.client.xlen(self.stream)
        return GaugeMetricFamily(
            "ursa_buffer_stream_length",
            "Entries in the Redis event buffer (not yet trimmed).",
            value=int(length),
        )

    def _oldest_pending_age(self) -> GaugeMetricFamily:
        oldest = self._oldest_unflushed_millis()
        age = 0.0 if oldest is None else max(0.0, time.time() - oldest / 1000)
        return GaugeMetricFamily(
            "ursa_buffer_oldest_pending_age_seconds",
            "Age of the oldest buffered event not yet in ClickHouse (0: none waits).",
            value=age,
        )

    def _oldest_unflushed_millis(self) -> int | None:
        """The stream time of the oldest entry not acknowledged by the flusher, if any."""
        try:
            summary: Any = self.client.xpending(self.stream, GROUP)
        except redis.ResponseError:  # no group yet: nothing was ever flushed
            return self._first_millis_after(b"-")
        if summary["pending"]:
            return stream_millis(summary["min"])
        groups: Any = self.client.xinfo_groups(self.stream)
        last = next(g["last-delivered-id"] for g in groups if g["name"] == GROUP.encode())
        return self._first_millis_after(b"(" + last)

    def _first_millis_after(self, start: bytes) -> int | None:
        entries: Any = self.client.xrange(self.stream, min=start, count=1)
        return stream_millis(entries[0][0]) if entries else None

    def _dead_letters(self) -> GaugeMetricFamily:
        gauge = GaugeMetricFamily(
            "ursa_dead_letters",
            "Messages in Dramatiq's dead-letter queue, by queue (each is an alert).",
            labels=["queue"],
        )
        with self.client.pipeline(transaction=False) as pipe:
            for queue in self.queues:
                pipe.zcard(f"{DRAMATIQ_NAMESPACE}:{xq_name(queue)}")
            sizes = pipe.execute()
        for queue, size in zip(self.queues, sizes, strict=True):
            gauge.add_metric([queue], int(size))
        return gauge


class _ProcessMetrics(Collector):
    """The process-wide default registry (counters, histograms, process and GC metrics)."""

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Iterator[Any]:
        yield from REGISTRY.collect()


def process_registry(*collectors: Collector) -> CollectorRegistry:
    """A registry with this process's metrics and `collectors` (scraped as one exposition)."""
    registry = CollectorRegistry()
    registry.register(_ProcessMetrics())
    for collector in collectors:
        registry.register(collector)
    return registry


def job_queues() -> list[str]:
    """The Dramatiq queues of every actor (whose dead letters are watched)."""
    from app.tasks import actors

    return sorted({actor.queue_name for actor in actors.ALL})


class Health(Protocol):
    """The answers of a process's health checks (`app.tasks.watchdog.Watchdog` gives them)."""

    def live(self) -> bool: ...

    def ready(self) -> bool: ...


class MetricsServer:
    """`/metrics`, `/healthz` (liveness) and `/readyz` (readiness) on `METRICS_HOST:METRICS_PORT`,
    served from a thread, for processes without an internal app (`ursa worker`, `ursa
    scheduler`): 200 or 503 as `health` says, 404 for other paths. `close()` stops it and
    releases its Redis client."""

    def __init__(self, redis_url: str, stream: str, host: str, port: int, health: Health) -> None:
        self.collector = RedisCollector(redis_url, stream, job_queues())
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        server: type[ThreadingWSGIServer] = type(
            "MetricsWSGIServer", (ThreadingWSGIServer,), {"address_family": family}
        )  # of the host's address family (IPv4 or IPv6)
        app = _routes(process_registry(self.collector), health)
        self.server = make_server(host, port, app, server, handler_class=_QuietHandler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.collector.close()


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """No access log: probes come every few seconds and scrapes every few more."""


def _routes(registry: CollectorRegistry, health: Health) -> WSGIApplication:
    exposition = make_wsgi_app(registry)
    checks = {"/healthz": health.live, "/readyz": health.ready}

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            return exposition(environ, start_response)  # type: ignore[no-any-return]
        check = checks.get(path)
        if check is None:
            status, body = "404 Not Found", b"not found\n"
        elif check():
            status, body = "200 OK", b"ok\n"
        else:
            status, body = "503 Service Unavailable", b"unhealthy\n"
        headers = [
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Length", str(len(body))),
        ]
        start_response(status, headers)
        return [body]

    return app
