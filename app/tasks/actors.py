"""Actors: thin, idempotent, explicit retries and time limits; each returns a count."""

from __future__ import annotations

import logging
from typing import Any

import dramatiq
from redis.exceptions import RedisError

import app.tasks.broker  # noqa: F401  (declares the placeholder broker first)
from app.analytics.clickhouse.gateway import ClickHouseError
from app.tasks.context import current
from app.tasks.mailing import deliver, email_actor

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


@email_actor
def send_email(template: str, to: str, context: dict[str, Any]) -> None:
    """Render `emails/<template>.*` with `context` and deliver it to `to`.

    A delivery failure is raised as `dramatiq.Retry`, which Dramatiq retries without logging
    the message's arguments (the context may hold a link with a token); we log the reason.
    """
    deliver(template, to, context)


ACTORS: tuple[dramatiq.Actor, ...] = (flush_buffer, send_email)  # type: ignore[type-arg]
