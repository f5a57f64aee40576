"""The flusher's replay rules, in process: a batch interrupted at any stage is stored once."""

from __future__ import annotations

import gc

import pytest
import redis

from app.analytics.buffer.flush import Flusher
from app.sites.registry import get_site
from app.store.keys import FLUSH_BATCH as BATCH_KEY
from app.store.keys import FLUSH_LOCK
from tests.integration.helpers import post_event, stored

pytestmark = pytest.mark.db
STOLEN = "test:flush:lease-passed-on"


class Crash(Exception):
    pass


def _crashing_at(stage: str, services) -> Flusher:
    def hook(reached: str) -> None:
        if reached == stage:
            raise Crash(stage)

    return Flusher(
        services.sync_redis, services.clickhouse, services.settings.BUFFER_STREAM, on_batch=hook
    )


@pytest.mark.parametrize("stage", ["inserted", "acked"])
async def test_interrupted_batch_is_stored_exactly_once(client, services, site_domain, stage):
    services.flusher.drain()  # start from an empty buffer
    for path in ("/a", "/b", "/c"):
        body = {"n": "pageview", "u": f"https://{site_domain}{path}", "d": site_domain}
        assert (await post_event(client, body)).status_code == 202
    with pytest.raises(Crash):
        _crashing_at(stage, services).drain()
    assert services.sync_redis.exists(BATCH_KEY)  # the batch record survives the crash
    assert gc.isenabled()  # paused during the batch only
    stats = services.flusher.drain()
    assert not services.sync_redis.exists(BATCH_KEY)
    assert stats.batches >= 1
    site = await get_site(services.sessions, site_domain)
    assert site.id is not None
    rows = stored(services.clickhouse, site.id)
    assert sorted(row["pathname"] for row in rows) == ["/a", "/b", "/c"]


async def test_record_of_a_trimmed_batch_is_dropped(services):
    services.flusher.drain()
    services.sync_redis.hset(BATCH_KEY, mapping={"first": "1-0", "last": "2-0", "token": "t"})
    services.flusher.drain()
    assert not services.sync_redis.exists(BATCH_KEY)


async def test_stream_replies_of_either_protocol_are_read(client, services, site_domain):
    services.flusher.drain()
    body = {"n": "pageview", "u": f"https://{site_domain}/resp2", "d": site_domain}
    assert (await post_event(client, body)).status_code == 202
    with redis.Redis.from_url(services.settings.REDIS_URL, protocol=2) as resp2:
        stats = Flusher(resp2, services.clickhouse, services.settings.BUFFER_STREAM).drain()
    assert (stats.batches, stats.events) == (1, 1)
    site = await get_site(services.sessions, site_domain)
    assert site.id is not None
    assert [row["pathname"] for row in stored(services.clickhouse, site.id)] == ["/resp2"]


def _small_batches(services, hook=None) -> Flusher:
    """A flusher with batches of two, so a visit spans batches that overlap in the pipeline."""
    return Flusher(
        services.sync_redis,
        services.clickhouse,
        services.settings.BUFFER_STREAM,
        batch_size=2,
        on_batch=hook,
    )


async def _one_visit(client, site_domain: str, pages: int) -> None:
    for page in range(pages):
        body = {"n": "pageview", "u": f"https://{site_domain}/p{page}", "d": site_domain}
        assert (await post_event(client, body)).status_code == 202


async def _session_totals(services, site_domain: str) -> tuple[set[int], int, int]:
    site = await get_site(services.sessions, site_domain)
    assert site.id is not None
    rows = stored(services.clickhouse, site.id)
    return (
        {row["session_id"] for row in rows},
        sum(row["session_start"] for row in rows),
        sum(row["session_bounce"] for row in rows),
    )


async def test_a_visit_across_pipelined_batches_is_one_session(client, services, site_domain):
    services.flusher.drain()
    await _one_visit(client, site_domain, 7)
    stats = _small_batches(services).drain()
    assert (stats.batches, stats.events) == (4, 7)
    sessions, starts, bounces = await _session_totals(services, site_domain)
    # Each batch was enriched while the one before it was still being written: the states it
    # left behind (not yet in Redis) carried over, so the seven page views are one visit.
    assert (len(sessions), starts, bounces) == (1, 1, 0)


async def test_a_crash_while_the_next_batch_is_prepared_stores_one_visit_once(
    client, services, site_domain
):
    services.flusher.drain()
    await _one_visit(client, site_domain, 7)
    inserted = 0

    def crash_on_second(stage: str) -> None:
        nonlocal inserted
        if stage == "inserted":
            inserted += 1
            if inserted == 2:
                raise Crash(stage)

    with pytest.raises(Crash):
        _small_batches(services, crash_on_second).drain()
    assert services.sync_redis.exists(BATCH_KEY)
    # Batch 3 was read and enriched, never recorded: it is pending and read again.
    stats = _small_batches(services).drain()
    assert stats.events == 5  # the recorded batch replayed (deduplicated: 2 rows) + 3 more
    site = await get_site(services.sessions, site_domain)
    assert site.id is not None
    paths = [row["pathname"] for row in stored(services.clickhouse, site.id)]
    assert sorted(paths) == [f"/p{page}" for page in range(7)]
    sessions, starts, bounces = await _session_totals(services, site_domain)
    assert (len(sessions), starts, bounces) == (1, 1, 0)


async def test_a_flusher_that_lost_its_lease_records_and_inserts_nothing_more(
    client, services, site_domain
):
    services.flusher.drain()
    await _one_visit(client, site_domain, 7)

    def lease_passes_on(stage: str) -> None:
        # The first batch took longer than the lease: another flusher holds it now.
        if stage == "inserted" and not services.sync_redis.exists(STOLEN):
            services.sync_redis.set(FLUSH_LOCK, "elsewhere:1:successor")
            services.sync_redis.set(STOLEN, 1)

    stats = _small_batches(services, lease_passes_on).drain()
    assert stats.batches == 1  # the batch prepared meanwhile was neither recorded nor written
    assert not services.sync_redis.exists(BATCH_KEY)
    site = await get_site(services.sessions, site_domain)
    assert site.id is not None
    assert len(stored(services.clickhouse, site.id)) == 2
    services.sync_redis.delete(FLUSH_LOCK, STOLEN)  # the successor ends its drain
    assert services.flusher.drain().events == 5  # the pending entries, read again, once
    paths = [row["pathname"] for row in stored(services.clickhouse, site.id)]
    assert sorted(paths) == [f"/p{page}" for page in range(7)]
