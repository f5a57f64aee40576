"""Actors: thin, idempotent, explicit retries and time limits; each returns a count."""

from __future__ import annotations

import logging

import dramatiq
from redis.exceptions import RedisError

import app.tasks.broker  # noqa: F401  (declares the placeholder broker first)
from app.analytics.clickhouse import ClickHouseError
from app.tasks.context import current

log = logging.getLogger(__name__)

FLUSH_DRAIN_SECONDS = 10.0


def run_flush() -> int:
    """Move buffered events into ClickHouse; return how many rows were written."""
    try:
        stats = current().flusher.drain(max_seconds=FLUSH_DRAIN_SECONDS)
    except (ClickHouseError, RedisError) as exc:
        log.warning("flush failed, the next tick retries: %s", exc)
        return 0
    return stats.events + stats.performance


@dramatiq.actor(queue_name="flush", max_retries=0, time_limit=60_000, max_age=10_000)
def flush_buffer() -> None:
    """The 1 s scheduler tick is the retry, so a failed flush is not retried here."""
    run_flush()


ALL: tuple[dramatiq.Actor, ...] = (flush_buffer,)  # type: ignore[type-arg]
