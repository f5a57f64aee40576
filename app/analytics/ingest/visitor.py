"""Visitor ids: a keyed BLAKE2b hash of (daily salt, site, IP, User-Agent).

Salts rotate at UTC midnight and live in Redis for two days; ids are computed with today's and
yesterday's salt so the worker can carry a session across midnight. Without the salt (deleted
after two days) a visitor id cannot be linked back to an IP address.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from app.errors import Unavailable
from app.store import keys

SALT_TTL_SECONDS = 2 * 24 * 3600
SALT_BYTES = 32


def visitor_hash(key: bytes, site_id: int, ip: str, user_agent: str) -> int:
    return identity_hash(key, visitor_identity(site_id, ip, user_agent))


def visitor_identity(site_id: int, ip: str, user_agent: str) -> bytes:
    """What a visitor id is the hash of: the site, the IP address and the User-Agent."""
    return f"{site_id}\x00{ip}\x00{user_agent}".encode()


def identity_hash(key: bytes, identity: bytes) -> int:
    """The visitor id of a `visitor_identity` under a day's key."""
    digest = hashlib.blake2b(identity, key=key, digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1  # 63 bits: fits Int64 and UInt64 alike


def day_key(salt: bytes, hash_key: bytes) -> bytes:
    """The key a day's visitor ids are hashed with: its salt, keyed with the installation's."""
    return hashlib.blake2b(salt, key=hash_key[:64], digest_size=32).digest()


class Salts:
    """Today's and yesterday's hash keys, created in Redis on first use and cached per day."""

    def __init__(self, redis: aioredis.Redis, hash_key: str) -> None:
        self._redis = redis
        self._hash_key = hash_key.encode()
        self._cache: dict[dt.date, bytes] = {}

    async def keys_for(self, now: dt.datetime) -> tuple[bytes, bytes]:
        today = now.astimezone(dt.UTC).date()
        return await self._key(today), await self._key(today - dt.timedelta(days=1))

    async def _key(self, day: dt.date) -> bytes:
        cached = self._cache.get(day)
        if cached is not None:
            return cached
        redis_key = keys.SALT + day.isoformat()
        try:
            await self._redis.set(
                redis_key, secrets.token_bytes(SALT_BYTES), nx=True, ex=SALT_TTL_SECONDS
            )
            salt = await self._redis.get(redis_key)
        except RedisError as exc:
            raise Unavailable("salt store unavailable") from exc
        assert isinstance(salt, bytes)
        key = day_key(salt, self._hash_key)
        if len(self._cache) > 4:
            self._cache.clear()
        self._cache[day] = key
        return key
