"""Shared caches: values one web process computes and every replica may reuse, in the cache Redis.

Every key is written with a TTL, so an evicting cache Redis may drop any of them at any time;
values are JSON-shaped, encoded with msgspec. A cache never decides whether a request succeeds:
an unreachable cache Redis, or a value that does not decode, is a miss (with a warning logged).
Today one cache uses it, the cards of public and shared dashboards (docs/operations.md).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from app.observability.metrics import CACHE_REQUESTS
from app.store import keys

VIEW_SECONDS = 60  # the cards of public and shared dashboards (and their pages' max-age)

log = logging.getLogger(__name__)

Value = dict[str, Any]

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(dict[str, Any])


class SharedCache:
    """One named cache: `get_or_build(key, build)` with every entry kept `ttl_seconds`."""

    def __init__(self, redis: aioredis.Redis, name: str, ttl_seconds: int) -> None:
        if ttl_seconds <= 0:
            raise ValueError("a shared cache needs a TTL")
        self.redis = redis
        self.name = name
        self.ttl_seconds = ttl_seconds
        self._hits = CACHE_REQUESTS.labels(cache=name, result="hit")
        self._misses = CACHE_REQUESTS.labels(cache=name, result="miss")
        self._errors = CACHE_REQUESTS.labels(cache=name, result="error")

    def key(self, *parts: object) -> str:
        return keys.SHARED_CACHE + ":".join((self.name, *(str(part) for part in parts)))

    async def get_or_build(self, key: str, build: Callable[[], Awaitable[Value]]) -> Value:
        """The cached value of `key`, or `build()`'s (stored for `ttl_seconds`)."""
        try:
            raw = await self.redis.get(key)
            if raw is not None:
                value = _decoder.decode(raw)
                self._hits.inc()
                return value
        except (RedisError, msgspec.DecodeError) as exc:
            self._errors.inc()
            log.warning("cache %s unavailable, computing %s: %s", self.name, key, exc)
            return await build()
        self._misses.inc()
        value = await build()
        try:
            await self.redis.set(key, _encoder.encode(value), ex=self.ttl_seconds)
        except RedisError as exc:
            self._errors.inc()
            log.warning("cache %s unavailable, %s not stored: %s", self.name, key, exc)
        return value
