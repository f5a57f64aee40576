"""The event buffer: a Redis stream between the 202 and ClickHouse.

The web process appends one msgpack entry per (event, site); the stream id Redis assigns is the
event's timestamp (server time, monotonic within the stream). The worker's `Flusher` moves
entries into ClickHouse. Redis is the only copy in between, so it runs with AOF and noeviction;
a failed append raises `Unavailable` and the client gets a 503.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from app.errors import Unavailable

GROUP = "flushers"
FIELD = b"e"


class BufferedEvent(msgspec.Struct, array_like=True, omit_defaults=True):
    """One event for one site, as it waits in the stream. No IP address, ever."""

    site_id: int
    event_id: int
    name: str
    hostname: str
    pathname: str
    query: str = ""
    referrer: str = ""
    user_agent: str = ""
    visitor_id: int = 0
    previous_visitor_id: int = 0
    country_code: str = ""
    region: str = ""
    city: str = ""
    screen_width: int = 0
    interactive: bool = True
    props: dict[str, str] = {}
    revenue_amount: str = ""
    revenue_currency: str = ""
    perf: dict[str, float] = {}


encoder = msgspec.msgpack.Encoder()
decoder = msgspec.msgpack.Decoder(BufferedEvent)


class EventBuffer:
    """Append side of the buffer (used by the web process)."""

    def __init__(self, redis: aioredis.Redis, stream: str) -> None:
        self._redis = redis
        self.stream = stream

    async def append(self, events: Sequence[BufferedEvent]) -> None:
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for event in events:
                    pipe.xadd(self.stream, {FIELD: encoder.encode(event)})
                await pipe.execute()
        except RedisError as exc:
            raise Unavailable("event buffer unavailable") from exc
