"""The buffer's group commit: concurrent appends all land, failures reach every waiter."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
import redis.asyncio as aioredis

from app.analytics.buffer import FIELD, BufferedEvent, EventBuffer, decoder
from app.errors import Unavailable


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
