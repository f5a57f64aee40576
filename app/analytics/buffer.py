"""The event buffer: a Redis stream between the 202 and ClickHouse.

The web process appends one msgpack entry per (event, site); the stream id Redis assigns is the
event's timestamp (server time, monotonic within the stream). The worker's `Flusher` moves
entries into ClickHouse. Redis is the only copy in between, so it runs with AOF and noeviction;
a failed append raises `Unavailable` and the client gets a 503.

Appends go through a small Lua script (`APPEND_SCRIPT`, sent by its SHA and loaded on the first
NOSCRIPT answer) that XADDs a whole group of entries: one command to pack and one integer reply
to parse per group, where a pipeline of XADDs costs one of each per entry in redis-py. A script
runs atomically; when memory is full (`noeviction`) Redis refuses a script's first write but
not the ones after it, so a group is written whole or not at all.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import msgspec
import redis.asyncio as aioredis

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
    utc_offset: int = 0  # the site's offset from UTC in minutes when the event arrived


encoder = msgspec.msgpack.Encoder()
decoder = msgspec.msgpack.Decoder(BufferedEvent)

# KEYS[1] is the stream, ARGV[1] the field name, the other ARGV the entries; returns how many
# were added. `*` lets Redis assign the ids as for a plain XADD: scripts replicate and log their
# effects, so the AOF and replicas hold each XADD with the id it got.
APPEND_SCRIPT = """
for i = 2, #ARGV do
    redis.call('XADD', KEYS[1], '*', ARGV[1], ARGV[i])
end
return #ARGV - 1
"""


class EventBuffer:
    """Append side of the buffer (used by the web process).

    Appends of concurrent requests are written together: while one group is on its way to
    Redis, the next requests queue up and go in the following group (group commit), one script
    call each. Each request still waits until its own events are written, so a 202 is only sent
    for events Redis has; an idle server writes each request at once.
    """

    def __init__(self, redis: aioredis.Redis, stream: str) -> None:
        self._script = redis.register_script(APPEND_SCRIPT)
        self.stream = stream
        self._queue: list[tuple[list[bytes], asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def append(self, events: Sequence[BufferedEvent]) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append(([encoder.encode(event) for event in events], future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_queued())
        await future

    async def _write_queued(self) -> None:
        while self._queue:
            batch, self._queue = self._queue, []
            try:
                entries = [entry for payloads, _ in batch for entry in payloads]
                await self._script(keys=[self.stream], args=[FIELD, *entries])
            except Exception as exc:  # every waiter must hear about it, whatever it was
                failure = Unavailable("event buffer unavailable")
                failure.__cause__ = exc
                for _, future in batch:
                    if not future.done():
                        future.set_exception(failure)
            else:
                for _, future in batch:
                    if not future.done():
                        future.set_result(None)
