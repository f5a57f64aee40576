"""The buffer's group commit: concurrent appends all land, failures reach every waiter; an
append Redis runs after its deadline adds nothing."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
import redis.asyncio as aioredis

from app.analytics.buffer.stream import FIELD, BufferedEvent, EventBuffer, decoder
from app.errors import Unavailable
from app.store.clients import REDIS_TIMEOUT_SECONDS
from tests.conftest import RedisProcess


def _event(number: int) -> BufferedEvent:
    return BufferedEvent(
        site_id=1, event_id=number, name="pageview", hostname="a.example", pathname=f"/{number}"
    )


async def test_concurrent_appends_are_all_written_in_order_of_arrival(redis_process):
    client = aioredis.Redis.from_url(redis_process.url)
    buffer = EventBuffer(client, f"test:buffer:{uuid.uuid4().hex}")
    await asyncio.gather(*(buffer.append([_event(n)]) for n in range(1, 201)))
    entries: Any = await client.xrange(buffer.stream)
    assert [decoder.decode(fields[FIELD]).event_id for _, fields in entries] == list(range(1, 201))
    await client.aclose()


async def test_every_waiter_gets_unavailable_when_redis_is_down():
    client = aioredis.Redis.from_url("redis://127.0.0.1:9/0")  # nothing listens there
    buffer = EventBuffer(client, "test:buffer:down")
    results = await asyncio.gather(
        *(buffer.append([_event(n)]) for n in range(20)), return_exceptions=True
    )
    assert all(isinstance(result, Unavailable) for result in results)
    await client.aclose()


async def test_a_cancelled_request_does_not_break_the_others(redis_process):
    client = aioredis.Redis.from_url(redis_process.url)
    buffer = EventBuffer(client, f"test:buffer:{uuid.uuid4().hex}")
    doomed = asyncio.ensure_future(buffer.append([_event(1)]))
    doomed.cancel()
    await asyncio.gather(*(buffer.append([_event(n)]) for n in range(2, 12)))
    with pytest.raises(asyncio.CancelledError):
        await doomed
    assert await client.xlen(buffer.stream) >= 10
    await client.aclose()


async def test_entries_get_server_timestamps_as_ids(redis_process):
    client = aioredis.Redis.from_url(redis_process.url)
    buffer = EventBuffer(client, f"test:buffer:{uuid.uuid4().hex}")
    seconds, micros = await client.time()
    await asyncio.gather(*(buffer.append([_event(n), _event(n + 100)]) for n in range(5)))
    entries: Any = await client.xrange(buffer.stream)
    stamps = [int(entry_id.split(b"-")[0]) for entry_id, _ in entries]
    assert len(stamps) == 10
    assert stamps == sorted(stamps)
    assert 0 <= stamps[0] - (seconds * 1000 + micros // 1000) < 5000
    await client.aclose()


async def test_every_waiter_gets_unavailable_when_the_script_fails(redis_process):
    client = aioredis.Redis.from_url(redis_process.url)
    buffer = EventBuffer(client, f"test:buffer:{uuid.uuid4().hex}")
    await client.set(buffer.stream, "not a stream")  # every XADD in the script fails: WRONGTYPE
    results = await asyncio.gather(
        *(buffer.append([_event(n)]) for n in range(20)), return_exceptions=True
    )
    assert all(isinstance(result, Unavailable) for result in results)
    assert await client.get(buffer.stream) == b"not a stream"
    await client.aclose()


async def test_the_script_is_loaded_again_after_redis_forgot_it(redis_process):
    client = aioredis.Redis.from_url(redis_process.url)
    buffer = EventBuffer(client, f"test:buffer:{uuid.uuid4().hex}")
    await buffer.append([_event(1)])
    await client.script_flush()  # as after a restart without the script cache
    await buffer.append([_event(2)])
    assert await client.xlen(buffer.stream) == 2
    await client.aclose()


async def _stored_ids(client: aioredis.Redis, stream: str) -> list[int]:
    """Event ids in the stream, in order."""
    entries: Any = await client.xrange(stream)
    return [decoder.decode(fields[FIELD]).event_id for _, fields in entries]


async def test_an_event_sent_again_after_redis_stalled_is_appended_once(tmp_path):
    """Redis stalls (frozen here) with an append received: the client gives up, the web answers
    503 and the event comes again; Redis runs both once it resumes, and keeps one."""
    server = RedisProcess(tmp_path)
    server.start()
    client = aioredis.Redis.from_url(server.url, socket_timeout=REDIS_TIMEOUT_SECONDS)
    buffer = EventBuffer(client, "test:buffer:stalled")
    try:
        await buffer.append([_event(1)])
        server.freeze()
        try:
            with pytest.raises(Unavailable):
                await buffer.append([_event(2)])
        finally:
            server.thaw()
        await buffer.append([_event(2), _event(3)])  # sent again, with a new one
        assert await _stored_ids(client, buffer.stream) == [1, 2, 3]
    finally:
        await client.aclose()
        server.kill()


async def test_copies_are_dropped_within_the_window_of_recent_ids(redis_process):
    client = aioredis.Redis.from_url(redis_process.url)
    buffer = EventBuffer(client, f"test:buffer:{uuid.uuid4().hex}", recent_ids=3)
    other_site = BufferedEvent(
        site_id=2, event_id=1, name="pageview", hostname="b.example", pathname="/1"
    )
    await buffer.append([_event(1), other_site])  # one event for two sites: two entries
    await asyncio.gather(*(buffer.append([_event(n)]) for n in (1, 2, 2)))
    assert await _stored_ids(client, buffer.stream) == [1, 1, 2]
    await buffer.append([_event(3), _event(4)])  # the window moves past event 1 of site 1
    await buffer.append([_event(1), _event(4)])
    assert await _stored_ids(client, buffer.stream) == [1, 1, 2, 3, 4, 1]
    assert await client.scard(f"{buffer.stream}:ids") == 3
    assert await client.llen(f"{buffer.stream}:ids:order") == 3
    await client.aclose()
