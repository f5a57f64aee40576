"""The only place Redis clients are opened.

A request waits on Redis at most `REDIS_TIMEOUT_SECONDS` and is never retried by the client: a
Redis that stops answering (frozen, stuck in a long fsync) costs a 503, never a hung request,
and a client whose append failed sends it again (the buffer drops a copy it already has).
"""

from __future__ import annotations

import redis
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

REDIS_TIMEOUT_SECONDS = 2.0


def async_client(url: str) -> aioredis.Redis:
    """A client for request handlers: short timeouts, no automatic retries."""
    return aioredis.Redis.from_url(
        url,
        retry=Retry(NoBackoff(), 0),
        socket_timeout=REDIS_TIMEOUT_SECONDS,
        socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
    )


def sync_client(url: str, timeout: float | None = None) -> redis.Redis:
    """A blocking client (workers, tools, scrapes); `timeout` bounds connecting and each reply."""
    return redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
