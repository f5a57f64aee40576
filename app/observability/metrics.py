"""Prometheus metrics of one process, exposed as `/metrics` on its internal port only.

Counters and histograms live in the process-wide default registry and are updated where things
happen (the request observer, the ingest pipeline, the flusher, the Dramatiq middleware, the
site cache). Gauges read from Redis are collected at scrape time, with a short timeout
(`app.server.gauges`). Which process shows which metrics: docs/operations.md.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
)
from prometheus_client.registry import Collector

disable_created_metrics()  # type: ignore[no-untyped-call]  # no `_created` series


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
