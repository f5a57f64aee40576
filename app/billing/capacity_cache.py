"""`has_enough_capacity(site)` for the ingest path: may the site's organization still collect?

The answer is the capacity rule's state as the metering job stored it on the billing profile
(`dropping_since`, `app.billing.capacity`). It is held in process for `LOCAL_SECONDS`, and in
the cache Redis for `REDIS_SECONDS` (every web process shares it; a miss reads the app
database), so the usual event costs no network round trip. `invalidate` (a plan change, staff
extending the grace period, the job starting or ending a drop) deletes the Redis answer at once;
other processes' in-process answers are at most `LOCAL_SECONDS` old.

Refused events are counted in process and added to the cache Redis when the organization's
answer is next fetched (every `LOCAL_SECONDS` while events arrive); the metering job moves that
count onto the billing profile. A cache Redis that fails never refuses an event: the answer is
"collect" for `LOCAL_SECONDS`, with a warning logged.
"""

from __future__ import annotations

import time
from collections import Counter

import redis.asyncio as aioredis
from redis.exceptions import RedisError
from sqlmodel import select

from app.analytics.ingest.sites import SiteRef
from app.db import SessionMaker
from app.models import BillingProfile
from app.observability.logging import get_logger
from app.store import keys

LOCAL_SECONDS = 5.0
REDIS_SECONDS = 15 * 60
COLLECTING, REFUSING = b"1", b"0"

log = get_logger(__name__)


async def accepting_in_database(sessions: SessionMaker, organization_id: int) -> bool:
    query = select(BillingProfile.dropping_since).where(
        BillingProfile.organization_id == organization_id
    )
    async with sessions() as session:
        dropping_since = (await session.exec(query)).first()
    return dropping_since is None


class CapacityCache:
    """The ingest path's `CapacityCheck` (`app.analytics.ingest.pipeline`)."""

    def __init__(
        self, redis: aioredis.Redis, sessions: SessionMaker, local_seconds: float = LOCAL_SECONDS
    ) -> None:
        self.redis = redis
        self.sessions = sessions
        self.local_seconds = local_seconds
        self._local: dict[int, tuple[float, bool]] = {}
        self._refused: Counter[int] = Counter()

    def cached(self, site: SiteRef) -> bool | None:
        if site.organization_id is None:
            return True
        held = self._local.get(site.organization_id)
        if held is None or held[0] <= time.monotonic():
            return None
        return held[1]

    async def has_enough_capacity(self, site: SiteRef) -> bool:
        """The answer for the site's organization, from Redis or the app database; held in
        process (`cached`)."""
        if site.organization_id is None:
            return True
        return await self._answer(site.organization_id)

    async def _answer(self, organization_id: int) -> bool:
        try:
            accepting = await self._shared_answer(organization_id)
            await self._flush_refused(organization_id)
        except RedisError as exc:
            log.warning("capacity cache unavailable, collecting", error=str(exc))
            accepting = True
        self._local[organization_id] = (time.monotonic() + self.local_seconds, accepting)
        return accepting

    async def _shared_answer(self, organization_id: int) -> bool:
        key = keys.CAPACITY + str(organization_id)
        stored = await self.redis.get(key)
        if stored is not None:
            return bool(stored == COLLECTING)
        accepting = await accepting_in_database(self.sessions, organization_id)
        await self.redis.set(key, COLLECTING if accepting else REFUSING, ex=REDIS_SECONDS)
        return accepting

    def note_refused(self, site: SiteRef) -> None:
        if site.organization_id is not None:
            self._refused[site.organization_id] += 1

    async def _flush_refused(self, organization_id: int) -> None:
        count = self._refused.pop(organization_id, 0)
        if count:
            key = keys.REFUSED + str(organization_id)
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.incrby(key, count)
                pipe.expire(key, REDIS_SECONDS * 4)
                await pipe.execute()

    async def invalidate(self, organization_id: int) -> None:
        """Forget the organization's answer here and in Redis: the next event reads it afresh.
        A cache Redis that fails is logged; its answer then expires within `REDIS_SECONDS`."""
        self._local.pop(organization_id, None)
        try:
            await self.redis.delete(keys.CAPACITY + str(organization_id))
        except RedisError as exc:
            log.warning(
                "capacity cache not invalidated", organization_id=organization_id, error=str(exc)
            )

    async def take_refused(self, organization_id: int) -> int:
        """The refused events counted since the last call (the metering job stores them)."""
        await self._flush_refused(organization_id)
        raw = await self.redis.getdel(keys.REFUSED + str(organization_id))
        return int(raw) if raw is not None else 0
