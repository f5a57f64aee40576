"""Upgrading a running Redis: retired key families go, the buffer stream and its group stay."""

from __future__ import annotations

from typing import Any

import redis

from app.analytics.buffer.stream import GROUP
from app.services import Services
from app.store import keys
from app.store.upgrade import drop_retired_keys


async def test_retired_keys_are_dropped_and_the_buffer_is_kept(services: Services) -> None:
    r = services.sync_redis
    stream = f"{services.settings.BUFFER_STREAM}:upgrade-test"  # not the one tests flush
    r.xadd(stream, {"e": b"{}"})
    if not _has_group(r, stream):
        r.xgroup_create(stream, GROUP, id="0")
    old_login = "ursa:session:" + "ab" * 32
    old_visit = "ursa:session:7:123456789"
    r.hset(old_login, mapping={"user_id": "1"})
    r.set(old_visit, b"state")
    r.sadd("ursa:user-sessions:1", "ab" * 32)
    current = keys.WEB_SESSION + "cd" * 32
    r.hset(current, mapping={"user_id": "2"})

    assert drop_retired_keys(r) >= 3

    assert not r.exists(old_login, old_visit, "ursa:user-sessions:1")
    assert r.exists(current)
    assert r.xlen(stream) >= 1
    assert _has_group(r, stream)
    assert drop_retired_keys(r) == 0  # a second run finds nothing
    r.delete(stream, current)


def _has_group(r: redis.Redis, stream: str) -> bool:
    groups: Any = r.xinfo_groups(stream)
    return any(group["name"] == GROUP.encode() for group in groups)
