"""`RedisCollector`: the buffer's and the job queues' gauges, read from Redis at scrape time.

Handed to every registry that exposes or exports this process's metrics (the internal app's
`/metrics`, the worker's `MetricsServer`, the OTLP export).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from typing import Any

import redis
from dramatiq.common import xq_name
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from app.analytics.buffer.enrich import stream_millis
from app.analytics.buffer.stream import GROUP
from app.settings import Settings
from app.store import keys
from app.store.clients import sync_client
from app.tasks.registry import job_queues

SCRAPE_TIMEOUT_SECONDS = 0.5


class RedisCollector(Collector):
    """Buffer and queue gauges read from Redis at scrape time.

    A Redis that does not answer within `SCRAPE_TIMEOUT_SECONDS` makes the scrape report
    `ursa_redis_scrape_success 0` (and no other gauge of this collector) instead of hanging.
    """

    def __init__(self, redis_url: str, stream: str, queues: Iterable[str]) -> None:
        self.client = sync_client(redis_url, timeout=SCRAPE_TIMEOUT_SECONDS)
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
                pipe.zcard(f"{keys.DRAMATIQ}:{xq_name(queue)}")
            sizes = pipe.execute()
        for queue, size in zip(self.queues, sizes, strict=True):
            gauge.add_metric([queue], int(size))
        return gauge


def redis_gauges(settings: Settings) -> RedisCollector:
    """A collector of the buffer of `settings` and of every job queue."""
    return RedisCollector(settings.REDIS_URL, settings.BUFFER_STREAM, job_queues())
