"""Long-lived clients and services of one process, created lazily from settings.

Importing this module touches nothing; `Services(settings)` opens nothing until a property is
first used. Routes get them through dependency injection; Dramatiq actors through
`app.tasks.context`.
"""

from __future__ import annotations

from functools import cached_property

import redis.asyncio as aioredis
from redis import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from app.accounts.web_sessions import SessionStore
from app.analytics.buffer.flush import Flusher
from app.analytics.buffer.stream import EventBuffer
from app.analytics.clickhouse.gateway import ClickHouse, Gateway
from app.analytics.clickhouse.traced import TracedGateway
from app.analytics.ingest.caps import MinuteCounter
from app.analytics.ingest.geo import Locator, make_locator
from app.analytics.ingest.pipeline import Pipeline
from app.analytics.ingest.sites import SiteDirectory
from app.analytics.ingest.visitor import Salts
from app.billing.capacity_cache import CapacityCache
from app.billing.stripe_gateway import StripeGateway
from app.cache.ratelimit import Limiter
from app.cache.shared import VIEW_SECONDS, SharedCache
from app.db import SessionMaker, make_engine, make_sessionmaker
from app.settings import Settings
from app.store.clients import async_client, sync_client


class Services:
    def __init__(self, settings: Settings, gateway: Gateway | None = None) -> None:
        if not settings.REDIS_URL:
            raise RuntimeError("REDIS_URL must be resolved before services are created")
        self.settings = settings
        self._gateway = gateway

    @cached_property
    def redis(self) -> aioredis.Redis:
        """The durable Redis: the buffer, login sessions, visits, salts (`app.store.keys`)."""
        return async_client(self.settings.REDIS_URL)

    @cached_property
    def cache_redis(self) -> aioredis.Redis:
        """Caches and rate limits: every key has a TTL, and with CACHE_REDIS_URL set they stay
        out of the buffer's noeviction budget."""
        return async_client(self.settings.cache_redis_url)

    @cached_property
    def limiter(self) -> Limiter:
        return Limiter(self.cache_redis, self.settings.SECRET_KEY, self.settings.trusted_networks)

    @cached_property
    def view_cards(self) -> SharedCache:
        return SharedCache(self.cache_redis, "view-cards", VIEW_SECONDS)

    @cached_property
    def capacity(self) -> CapacityCache:
        """The capacity rule's answers for ingest (`app.billing.capacity_cache`)."""
        return CapacityCache(self.cache_redis, self.sessions)

    @cached_property
    def web_sessions(self) -> SessionStore:
        # On the buffer's Redis (noeviction): a cache eviction must not log people out.
        return SessionStore(
            self.redis,
            idle_seconds=self.settings.SESSION_IDLE_HOURS * 3600,
            absolute_seconds=self.settings.SESSION_MAX_DAYS * 86400,
        )

    @cached_property
    def sync_redis(self) -> Redis:
        return sync_client(self.settings.REDIS_URL)

    @property
    def clickhouse(self) -> Gateway:
        if self._gateway is None:
            self._gateway = TracedGateway(ClickHouse(self.settings.clickhouse_dsn))
        return self._gateway

    @cached_property
    def engine(self) -> AsyncEngine:
        return make_engine(self.settings.database_url)

    @cached_property
    def sessions(self) -> SessionMaker:
        return make_sessionmaker(self.engine)

    @cached_property
    def sites(self) -> SiteDirectory:
        return SiteDirectory(self.sessions, self.settings.SITE_CACHE_SECONDS)

    @cached_property
    def stripe(self) -> StripeGateway | None:
        """The Stripe gateway; None when `STRIPE_SECRET_KEY` is unset (billing not configured)."""
        key = self.settings.STRIPE_SECRET_KEY.get_secret_value()
        return StripeGateway(key, self.settings.STRIPE_API_BASE) if key else None

    @cached_property
    def locator(self) -> Locator:
        return make_locator(self.settings.GEOIP_DB)

    @cached_property
    def buffer(self) -> EventBuffer:
        return EventBuffer(self.redis, self.settings.BUFFER_STREAM)

    @cached_property
    def pipeline(self) -> Pipeline:
        salts = Salts(self.redis, self.settings.HASH_KEY)
        caps = (
            MinuteCounter(self.settings.INGEST_CLIENT_EVENTS_PER_MINUTE),
            MinuteCounter(self.settings.INGEST_SITE_EVENTS_PER_MINUTE),
        )
        return Pipeline(self.sites, salts, self.locator, self.buffer, caps, self.capacity)

    @cached_property
    def flusher(self) -> Flusher:
        return Flusher(
            self.sync_redis,
            self.clickhouse,
            self.settings.BUFFER_STREAM,
            batch_size=self.settings.FLUSH_BATCH_SIZE,
        )

    async def aclose(self) -> None:
        if "redis" in self.__dict__:
            await self.redis.aclose()
        if "cache_redis" in self.__dict__:
            await self.cache_redis.aclose()
        if "engine" in self.__dict__:
            await self.engine.dispose()
        if "stripe" in self.__dict__ and self.stripe is not None:
            await self.stripe.aclose()

    def close_sync(self) -> None:
        if "sync_redis" in self.__dict__:
            self.sync_redis.close()
        if self._gateway is not None:
            self._gateway.close()
