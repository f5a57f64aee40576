"""Nothing lost, nothing doubled: 20,000 events over HTTP while the worker and Redis are killed.

Web (`ursa web`) and worker (`crash_worker.py`, the flusher loop) run as separate processes;
only the worker opens chDB. Several senders post events with their own `ursa.id` for many
visitors (distinct User-Agents, several events each, so sessions form). While they send:

1. the worker SIGKILLs itself between the ClickHouse insert and the XACK of its third batch;
2. the test SIGKILLs the worker while a batch is recorded but not acknowledged (mid-batch);
3. the test SIGKILLs Redis and restarts it from its AOF (`appendfsync always`) once a 503 shows
   that the web noticed; only 202-answered ids count as accepted, and nothing is resent.

A flusher killed mid-drain (or whose drain lost Redis) leaves its flush lease behind; the
restarted worker must take it over by itself (the test never touches it). Once settled (nothing pending or undelivered in the stream, no batch record), every accepted
id must be in `events` exactly once, and the dashboard's `queries.overview` (read from the
`totals_hourly` rollup) and top pages (`breakdowns_daily`) must equal the same figures computed
from raw events, sessions grouped by session id, before and after OPTIMIZE. The `dedup_window=False` case runs the same scenario against an events table without
the deduplication window and must find duplicates: proof that the check can fail.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import signal
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis

from app.analytics.ingest.ids import make_id
from app.store.keys import FLUSH_BATCH as BATCH_KEY
from tests.conftest import RedisProcess
from tests.integration.ingest_harness import (
    RAW_IDS,
    Child,
    Connection,
    inspect_store,
    settled,
    start_instance,
    user_agent,
    wait_for,
    wait_healthy,
    wait_settled,
)

pytestmark = pytest.mark.slow

TOTAL_EVENTS = 20_000
VISITORS = 800
BOUNCE_SHARE = 0.2  # visitors with one page view (some add a non-interactive event)
SENDERS = 8
WORKER_BATCH_SIZE = 1_000
CRASH_BATCH = 3  # the worker's batch that dies between insert and ack
MID_BATCH_AT = 0.35  # share of events sent before the mid-batch kill
REDIS_KILL_AT = 0.6  # share of events sent before Redis is killed
HOLD_AT = 0.9  # senders wait here until Redis is back, so every fault happens mid-traffic
PAUSE_AFTER_503_SECONDS = 0.1
REDIS_MIN_DOWN_SECONDS = 3.0
REDIS_MAX_DOWN_SECONDS = 20.0
SETTLE_TIMEOUT_SECONDS = 90.0
DOMAIN = "zero-loss.example"

RAW_TOTALS = """
SELECT count() AS rows, uniqExact(event_id) AS ids, uniqExact(visitor_id) AS visitors,
       uniqCombined(18)(visitor_id) AS sketched_visitors, countIf(name = 'pageview') AS pageviews
FROM events WHERE site_id = {site_id:UInt32}
"""
RAW_SESSIONS = """
SELECT count() AS visits, countIf(interactions <= 1) AS bounces,
       sum(ended - started) AS total_duration
FROM (
    SELECT session_id, min(timestamp) AS started, max(timestamp) AS ended,
           countIf(interactive) AS interactions
    FROM events WHERE site_id = {site_id:UInt32} GROUP BY session_id
)
"""
RAW_PAGES = """
SELECT pathname AS value, uniqCombined(18)(visitor_id) AS visitors, count() AS pageviews
FROM events WHERE site_id = {site_id:UInt32} AND name = 'pageview'
GROUP BY pathname ORDER BY visitors DESC, value
"""
SPLIT_VISITORS = """
SELECT count() AS visitors FROM (
    SELECT visitor_id FROM events WHERE site_id = {site_id:UInt32}
    GROUP BY visitor_id HAVING uniqExact(session_id) > 1
)
"""
OPTIMIZE = [
    f"OPTIMIZE TABLE {table} FINAL" for table in ("events", "totals_hourly", "breakdowns_daily")
]


# --- traffic -------------------------------------------------------------------------------


def visitor_events(rng: random.Random, length: int, bounce: bool) -> list[dict[str, Any]]:
    base = f"https://{DOMAIN}"
    first: dict[str, Any] = {
        "n": "pageview",
        "u": f"{base}/{rng.choice(['', 'pricing', 'docs', 'blog/post-1'])}",
        "d": DOMAIN,
        "r": rng.choice(["", "https://www.google.com/", "https://news.ycombinator.com/"]),
    }
    events = [first]
    for step in range(1, length):
        roll = rng.random()
        if bounce or roll < 0.05:
            events.append({"n": "Scroll", "u": first["u"], "d": DOMAIN, "i": False})
        elif roll < 0.12:
            events.append(
                {
                    "n": "Signup",
                    "u": f"{base}/signup",
                    "d": DOMAIN,
                    "p": {"plan": rng.choice(["free", "pro"])},
                }
            )
        else:
            events.append({"n": "pageview", "u": f"{base}/page/{step}", "d": DOMAIN})
    return events


def make_traffic(seed: int) -> list[list[tuple[str, dict[str, Any]]]]:
    """Per sender, (User-Agent, body) in sending order; each visitor's events stay in order."""
    rng = random.Random(seed)
    bounce = [rng.random() < BOUNCE_SHARE for _ in range(VISITORS)]
    lengths = [rng.choice([1, 2]) if b else rng.randint(2, 45) for b in bounce]
    busy = [i for i, b in enumerate(bounce) if not b]
    while sum(lengths) != TOTAL_EVENTS:
        i = rng.choice(busy)
        if sum(lengths) < TOTAL_EVENTS:
            lengths[i] += 1
        elif lengths[i] > 2:
            lengths[i] -= 1
    queues: list[list[tuple[float, str, dict[str, Any]]]] = [[] for _ in range(SENDERS)]
    for index in range(VISITORS):
        ua = user_agent(index)
        events = visitor_events(rng, lengths[index], bounce[index])
        keys = sorted(rng.random() for _ in events)
        queues[index % SENDERS].extend((k, ua, body) for k, body in zip(keys, events, strict=True))
    return [[(ua, body) for _, ua, body in sorted(q, key=lambda item: item[0])] for q in queues]


@dataclass
class Tally:
    """What the senders saw. Only 202-answered ids (without a drop header) are accepted."""

    total: int
    attempted: int = 0
    sent: set[int] = field(default_factory=set)
    accepted: set[int] = field(default_factory=set)
    statuses: Counter[int] = field(default_factory=Counter)
    dropped: int = 0
    transport_errors: int = 0
    first_503: asyncio.Event = field(default_factory=asyncio.Event)
    faults_done: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def progress(self) -> float:
        return self.attempted / self.total


async def send(
    port: int, queue: list[tuple[str, dict[str, Any]]], tally: Tally, sequence: Iterator[int]
) -> None:
    connection = Connection(port)
    try:
        for ua, body in queue:
            if tally.progress >= HOLD_AT:  # the last events go out after every fault
                await tally.faults_done.wait()
            event_id = make_id(low=next(sequence))  # unique: the low 20 bits count up
            tally.sent.add(event_id)
            payload = json.dumps({**body, "ursa": {"id": f"{event_id:016x}"}}).encode()
            try:
                status, headers = await connection.post("/api/event", payload, ua)
            except ConnectionError:
                tally.transport_errors += 1  # not accepted, and never resent
                continue
            finally:
                tally.attempted += 1
            tally.statuses[status] += 1
            if status == 202:
                if "x-ursa-dropped" in headers:
                    tally.dropped += 1
                else:
                    tally.accepted.add(event_id)
            elif status == 503:
                tally.first_503.set()
                await asyncio.sleep(PAUSE_AFTER_503_SECONDS)  # Retry-After, for the next one
    finally:
        connection.close()


# --- the scenario ------------------------------------------------------------------------


@dataclass
class Chaos:
    """Kills the worker twice and Redis once while events are being sent."""

    worker: Child
    redis_server: RedisProcess
    tally: Tally
    timeline: list[str] = field(default_factory=list)
    idle_kills: int = 0

    def note(self, what: str) -> None:
        self.timeline.append(f"{self.tally.progress:6.1%} sent: {what}")

    def client(self) -> aioredis.Redis:
        return aioredis.Redis.from_url(self.redis_server.url)

    async def restart_worker(self, r: aioredis.Redis) -> None:
        self.worker.start()

    async def run(self) -> None:
        r = self.client()
        try:
            crashed = await self.crash_between_insert_and_ack(r)
            await self.kill_mid_batch(r, crashed)
        finally:
            await r.aclose()
        await self.kill_redis()
        self.tally.faults_done.set()

    async def crash_between_insert_and_ack(self, r: aioredis.Redis) -> bytes:
        """Return the token of the batch left behind."""

        async def worker_died() -> bool:
            return not self.worker.alive()

        await wait_for(worker_died, "the worker to SIGKILL itself after an insert")
        assert self.worker.process is not None
        assert self.worker.process.returncode == -signal.SIGKILL, self.worker.tail()
        token: Any = await r.hget(BATCH_KEY, "token")
        assert token, "an inserted, unacknowledged batch is recorded"
        self.note(f"worker SIGKILLed itself between insert and ack of batch {CRASH_BATCH}")
        await self.restart_worker(r)
        return token  # type: ignore[no-any-return]

    async def kill_mid_batch(self, r: aioredis.Redis, crashed: bytes) -> None:
        recorded: list[bytes] = []

        async def far_enough() -> bool:
            return self.tally.progress >= MID_BATCH_AT

        async def batch_in_flight() -> bool:  # a new batch, not the one left by the crash
            token: Any = await r.hget(BATCH_KEY, "token")
            recorded[:] = [token] if token and token != crashed else []
            return bool(recorded)

        await wait_for(far_enough, "the senders")
        while True:
            await wait_for(batch_in_flight, "a recorded batch", interval=0.002)
            self.worker.sigkill()
            if await r.hget(BATCH_KEY, "token") == recorded[0]:
                break
            self.idle_kills += 1  # the batch finished first: try again on the next one
            assert self.idle_kills < 20, "never killed the worker mid-batch"
            await self.restart_worker(r)
        self.note("test SIGKILLed the worker mid-batch (batch recorded, not acked)")
        await self.restart_worker(r)

    async def kill_redis(self) -> None:
        async def far_enough() -> bool:
            return self.tally.progress >= REDIS_KILL_AT

        await wait_for(far_enough, "the senders")
        await asyncio.to_thread(self.redis_server.kill)
        self.note("test SIGKILLed Redis")
        started = time.monotonic()
        # Stay down until the web has answered 503 at least once.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.tally.first_503.wait(), REDIS_MAX_DOWN_SECONDS)
        await asyncio.sleep(max(0.0, REDIS_MIN_DOWN_SECONDS - (time.monotonic() - started)))
        await asyncio.to_thread(self.redis_server.start)
        self.note(f"Redis restarted from its AOF after {time.monotonic() - started:.1f} s")


def dashboard_from_raw(snapshot: dict[str, Any]) -> dict[str, int]:
    """The overview's figures, computed from raw events (sessions grouped by session_id).

    Visitors use the rollups' sketch over the raw visitor ids: merging the hourly sketches must
    give exactly that (and the sketch is exact at this size: checked against `uniqExact`).
    """
    totals, sessions = snapshot["totals"][0], snapshot["sessions"][0]
    visits = int(sessions["visits"])
    return {
        "visitors": int(totals["sketched_visitors"]),
        "visits": visits,
        "pageviews": int(totals["pageviews"]),
        "bounce_rate": round(100 * int(sessions["bounces"]) / visits) if visits else 0,
        "visit_duration": round(int(sessions["total_duration"]) / visits) if visits else 0,
        "events": int(totals["rows"]),
    }


@pytest.mark.parametrize("dedup_window", [True, False], ids=["dedup-window", "no-dedup-window"])
async def test_no_event_lost_or_duplicated_through_crashes(
    tmp_path: Path, pycache: Path, dedup_window: bool
) -> None:
    began = time.monotonic()
    instance = await start_instance(
        tmp_path, pycache, DOMAIN, WORKER_BATCH_SIZE, dedup_window=dedup_window
    )
    redis_server, settings, port = instance.redis_server, instance.settings, instance.port
    web, worker = instance.web(), instance.worker()
    sync_redis = redis.Redis.from_url(redis_server.url)
    tally = Tally(total=TOTAL_EVENTS)
    chaos = Chaos(worker, redis_server, tally)
    try:
        web.start()
        await wait_healthy(instance.url)
        worker.start("--crash-at", "inserted", "--crash-batch", str(CRASH_BATCH))

        queues = make_traffic(seed=20_000)
        sequence = iter(range(1, 1 << 20))
        send_started = time.monotonic()

        async def send_all() -> float:
            await asyncio.gather(*(send(port, queue, tally, sequence) for queue in queues))
            chaos.note("all events sent")
            return time.monotonic() - send_started

        sending = asyncio.ensure_future(send_all())
        faults = asyncio.ensure_future(chaos.run())
        try:
            await asyncio.gather(sending, faults)
        except BaseException:
            sending.cancel()
            faults.cancel()
            raise
        sending_seconds = sending.result()
        # Every fault happened while events were still being sent.
        assert len(chaos.timeline) == 5, chaos.timeline
        assert "Redis restarted" in chaos.timeline[3], chaos.timeline

        if not worker.alive():
            worker.start()
        settle_seconds = await wait_settled(
            sync_redis, settings.BUFFER_STREAM, worker, SETTLE_TIMEOUT_SECONDS
        )
        assert worker.stop() == 0, worker.tail()  # one process per chDB directory
        assert settled(sync_redis, settings.BUFFER_STREAM)
        web.stop()

        snapshot = await asyncio.to_thread(
            inspect_store,
            instance,
            {
                "totals": RAW_TOTALS,
                "sessions": RAW_SESSIONS,
                "raw_pages": RAW_PAGES,
                "ids": RAW_IDS,
                "split_visitors": SPLIT_VISITORS,
            },
            OPTIMIZE,
            time.time() - (time.monotonic() - began),
        )
    finally:
        for child in (web, worker):
            child.stop(timeout=10)
        sync_redis.close()
        redis_server.kill()

    before, after = snapshot["before"], snapshot["after"]
    stored = {int(row["id"]): int(row["n"]) for row in before["ids"]}
    totals = before["totals"][0]
    lost = tally.accepted - stored.keys()
    unknown = stored.keys() - tally.sent
    stored_unaccepted = stored.keys() - tally.accepted - unknown
    duplicated = int(totals["rows"]) - int(totals["ids"])
    replays = worker.log.read_text().count("replaying batch")
    figures = {
        "dedup_window": dedup_window,
        "sent": len(tally.sent),
        "accepted": len(tally.accepted),
        "answered_503": tally.statuses[503],
        "other_statuses": {k: v for k, v in tally.statuses.items() if k not in (202, 503)},
        "transport_errors": tally.transport_errors,
        "stored_ids": len(stored),
        "lost": len(lost),
        "duplicated": duplicated,
        "unknown": len(unknown),
        "stored_though_not_accepted": len(stored_unaccepted),
        "replayed_batches": replays,
        "idle_worker_kills": chaos.idle_kills,
        "send_seconds": round(sending_seconds, 1),
        "events_per_second": round(len(tally.sent) / sending_seconds),
        "settle_seconds": round(settle_seconds, 1),
        "elapsed_seconds": round(time.monotonic() - began, 1),
    }
    print(f"\nzero-loss figures: {json.dumps(figures)}")
    print("timeline:\n  " + "\n  ".join(chaos.timeline))
    for label, part in (("before", before), ("after OPTIMIZE", after)):
        print(f"overview {label}: {part['overview']}\nraw      {label}: {dashboard_from_raw(part)}")

    assert len(tally.sent) == TOTAL_EVENTS
    assert tally.statuses[503] > 0, "Redis went down while the senders were sending"
    assert figures["other_statuses"] == {}, "the only 5xx the ingest endpoint may answer is 503"
    assert tally.dropped == 0
    assert replays >= 2, "both worker kills left a recorded batch to replay"
    assert not lost, f"{len(lost)} accepted events are missing"
    assert not unknown, "ClickHouse holds ids nobody sent"
    if not dedup_window:
        assert duplicated > 0, "without the dedup window, the replayed batch must double"
        return
    assert duplicated == 0
    assert all(n == 1 for n in stored.values())
    assert int(before["split_visitors"][0]["visitors"]) == 0, "a visit was split by a crash"
    for part in (before, after):
        assert part["overview"] == dashboard_from_raw(part)
        assert part["pages"] == part["raw_pages"], "the daily page rollup differs from raw events"
    assert after["overview"] == before["overview"]
    exact, sketched = (int(before["totals"][0][k]) for k in ("visitors", "sketched_visitors"))
    assert sketched == exact, f"{VISITORS} visitors are within the sketch's exact range"
