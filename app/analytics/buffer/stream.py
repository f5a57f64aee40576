"""The event buffer: a Redis stream between the 202 and ClickHouse.

The web process appends one msgpack entry per (event, site); the stream id Redis assigns is the
event's timestamp (server time, monotonic within the stream). The worker's `Flusher` moves
entries into ClickHouse. Redis is the only copy in between, so it runs with AOF and noeviction;
a failed append raises `Unavailable` and the client gets a 503.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import msgspec
import redis.asyncio as aioredis

from app.errors import Unavailable
from app.store import keys

GROUP = keys.BUFFER_GROUP
FIELD = b"e"
# The (site, event id) of the last entries, kept in a set beside the stream (`<stream>:ids`, in
# arrival order in the list `<stream>:ids:order`; about 10 MB), so that `APPEND_SCRIPT` skips a
# copy. A Redis that stalls after running an append but before replying (a slow fsync, a frozen
# process) makes the web give up (its socket timeout) and answer 503, and the client sends the
# events again: those copies are dropped. Nothing is appended while Redis stalls, so the window
# covers the time after the stall in which clients retry: half a minute of the most one web
# process takes in.
RECENT_IDS = 100_000


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
    # An engagement beacon's (`limits.ENGAGEMENT_EVENT`); last, so entries written before
    # these fields existed decode with their defaults.
    scroll_depth: int = 0
    engaged_ms: int = 0


encoder = msgspec.msgpack.Encoder()
decoder = msgspec.msgpack.Decoder(BufferedEvent)

# One script call XADDs a whole group of entries: one command to pack and one integer reply to
# parse per group, where a pipeline of XADDs costs one of each per entry in redis-py. Sent by its
# SHA, loaded on the first NOSCRIPT answer. A script runs atomically; when memory is full
# (`noeviction`) Redis refuses a script's first write but not the ones after it, so a group is
# written whole or not at all.
# KEYS: the stream, the set of recent ids, their list in arrival order. ARGV: the field name,
# how many recent ids to keep, then per entry its id (site:event) and payload. Returns how many
# were added. `*` lets Redis assign the ids as for a plain XADD: scripts replicate and log their
# effects, so the AOF and replicas hold each XADD with the id it got.
APPEND_SCRIPT = """
local added = 0
for i = 3, #ARGV, 2 do
    if redis.call('SADD', KEYS[2], ARGV[i]) == 1 then
        redis.call('RPUSH', KEYS[3], ARGV[i])
        redis.call('XADD', KEYS[1], '*', ARGV[1], ARGV[i + 1])
        added = added + 1
    end
end
local extra = redis.call('LLEN', KEYS[3]) - tonumber(ARGV[2])
while extra > 0 do
    local old = redis.call('LPOP', KEYS[3], math.min(extra, 1000))
    redis.call('SREM', KEYS[2], unpack(old))
    extra = extra - #old
end
return added
"""


class EventBuffer:
    """Append side of the buffer (used by the web process).

    Appends of concurrent requests are written together: while one group is on its way to
    Redis, the next requests queue up and go in the following group (group commit), one script
    call each. Each request still waits until its own events are written, so a 202 is only sent
    for events Redis has; an idle server writes each request at once.
    """

    def __init__(self, redis: aioredis.Redis, stream: str, recent_ids: int = RECENT_IDS) -> None:
        self._script = redis.register_script(APPEND_SCRIPT)
        self.stream = stream
        self._keys = [stream, *keys.buffer_ids(stream)]
        self._recent_ids = recent_ids
        self._queue: list[tuple[list[bytes], asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def append(self, events: Sequence[BufferedEvent]) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entries = [
            part
            for event in events
            for part in (f"{event.site_id}:{event.event_id}".encode(), encoder.encode(event))
        ]
        self._queue.append((entries, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_queued())
        await future

    async def _write_queued(self) -> None:
        while self._queue:
            batch, self._queue = self._queue, []
            try:
                entries = [entry for payloads, _ in batch for entry in payloads]
                await self._script(keys=self._keys, args=[FIELD, self._recent_ids, *entries])
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
