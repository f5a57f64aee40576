"""Faults a production instance meets after crashes: a frozen Redis, an unreachable ClickHouse,
a restarted web process. Every 202 is stored exactly once.

The processes are real, as in `test_zero_loss.py`: a redis-server, `ursa web`, and the
`crash_worker.py` flusher. Senders post events with their own `ursa.id` and, unlike the
zero-loss senders, resend an event until it is answered 202 (after a 503 or a failed
connection), as a client should. Each fault happens while they send:

- **Redis frozen** (SIGSTOP) for 20 s: every request still gets an answer, 202 or 503, within
  the web's Redis timeout (a client timeout well above it finds none hanging); resent events
  are stored once, although Redis runs the appends the web gave up on when it resumes.
- **ClickHouse unreachable** for 120 s: the worker reaches ClickHouse over HTTP (the internal
  port of `chdb_tool.py serve`) through a loopback proxy the test pauses; paused, it holds
  every byte (a partition: the TCP connections stay up, nothing arrives). Ingest keeps
  answering 202, the worker's `/readyz` fails and its lag gauges grow; after the pause, the
  buffer drains (the time it takes is printed; run with `-s`).
- **Web restarted**: `ursa web` stopped with SIGTERM (it finishes open requests) and started
  again; connections refused meanwhile are retried.

Once the buffer has settled, ClickHouse must hold every 202-answered id exactly once and no
other id (run with `-s` for the figures: sent, 202, 503, stored, duplicates).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from app.analytics.buffer.stream import GROUP
from app.analytics.ingest.ids import make_id
from app.store.clients import REDIS_TIMEOUT_SECONDS
from app.tasks.watchdog import PROBE_INTERVAL_SECONDS
from tests.conftest import free_port
from tests.integration.ingest_harness import (
    Child,
    Connection,
    Instance,
    RequestTimeout,
    start_instance,
    user_agent,
    wait_for,
    wait_healthy,
    wait_settled,
)

pytestmark = pytest.mark.slow

DOMAIN = "faults.example"
SENDERS = 4
VISITORS_PER_SENDER = 25
BATCH_SIZE = 500
WARMUP_EVENTS = 300  # accepted before the fault, and again after it
RETRY_SECONDS = 0.2
# Appends queue behind the one on its way (group commit): an answer may wait for two
# Redis timeouts. Far below the 20 s freeze, so a request that hangs through it times out.
CLIENT_TIMEOUT_SECONDS = 2 * REDIS_TIMEOUT_SECONDS + 3.0
REDIS_FREEZE_SECONDS = 20.0
CLICKHOUSE_OUTAGE_SECONDS = 120.0
WEB_DOWN_SECONDS = 1.0
SETTLE_TIMEOUT_SECONDS = 90.0
# The worker's watchdog stops it after this long without ClickHouse (Kubernetes would start a
# fresh one); kept above the outage here so that one process shows its health throughout.
WORKER_GRACE_SECONDS = 600


@dataclass
class Ledger:
    """What the senders saw. An event is resent until answered 202 (or anything but 503)."""

    sent: set[int] = field(default_factory=set)
    accepted: set[int] = field(default_factory=set)
    statuses: Counter[int] = field(default_factory=Counter)
    dropped: int = 0
    transport_errors: int = 0
    timeouts: int = 0
    slowest: float = 0.0  # seconds, the longest a request took to be answered


class Senders:
    """`SENDERS` senders, each posting page views of its visitors every `pace` seconds until
    `stop()`; the last event of each is answered before `run` returns."""

    def __init__(self, port: int, pace: float) -> None:
        self.port, self.pace = port, pace
        self.ledger = Ledger()
        self._stop = asyncio.Event()
        self._ids = iter(range(1, 1 << 20))

    def stop(self) -> None:
        self._stop.set()

    async def accepted_more(self, count: int, what: str) -> None:
        """Wait until `count` more events than now are accepted."""
        target = len(self.ledger.accepted) + count

        async def enough() -> bool:
            return len(self.ledger.accepted) >= target

        await wait_for(enough, what)

    async def run(self) -> None:
        await asyncio.gather(*(self._send(index) for index in range(SENDERS)))

    async def _send(self, index: int) -> None:
        connection = Connection(self.port, timeout=CLIENT_TIMEOUT_SECONDS)
        try:
            step = 0
            while not self._stop.is_set():
                visitor = index * VISITORS_PER_SENDER + step % VISITORS_PER_SENDER
                event = {
                    "n": "pageview",
                    "u": f"https://{DOMAIN}/page/{step % 7}",
                    "d": DOMAIN,
                }
                await self._deliver(connection, event, user_agent(visitor))
                step += 1
                await asyncio.sleep(self.pace)
        finally:
            connection.close()

    async def _deliver(self, connection: Connection, event: dict[str, Any], ua: str) -> None:
        ledger = self.ledger
        event_id = make_id(low=next(self._ids))
        ledger.sent.add(event_id)
        payload = json.dumps({**event, "ursa": {"id": f"{event_id:016x}"}}).encode()
        while True:
            started = time.monotonic()
            try:
                status, headers = await connection.post("/api/event", payload, ua)
            except RequestTimeout:
                ledger.timeouts += 1
            except ConnectionError:
                ledger.transport_errors += 1
            else:
                ledger.slowest = max(ledger.slowest, time.monotonic() - started)
                ledger.statuses[status] += 1
                if status != 503:
                    if "x-ursa-dropped" in headers:
                        ledger.dropped += 1
                    elif status == 202:
                        ledger.accepted.add(event_id)
                    return
            await asyncio.sleep(RETRY_SECONDS)


async def send_through(senders: Senders, fault: Callable[[], Awaitable[None]]) -> None:
    """Send before, during and after `fault`, then stop the senders."""
    sending = asyncio.ensure_future(senders.run())
    try:
        await senders.accepted_more(WARMUP_EVENTS, "events accepted before the fault")
        await fault()
        await senders.accepted_more(WARMUP_EVENTS, "events accepted after the fault")
    finally:
        senders.stop()
        await sending


def account(name: str, ledger: Ledger, stored: dict[int, int]) -> dict[str, Any]:
    """Print the figures of a run and assert that every 202 is stored once, nothing else."""
    figures = {
        "fault": name,
        "sent": len(ledger.sent),
        "accepted_202": len(ledger.accepted),
        "answered_503": ledger.statuses[503],
        "other_statuses": {k: v for k, v in ledger.statuses.items() if k not in (202, 503)},
        "transport_errors": ledger.transport_errors,
        "timeouts": ledger.timeouts,
        "slowest_answer_seconds": round(ledger.slowest, 2),
        "stored_rows": sum(stored.values()),
        "stored_ids": len(stored),
        "duplicates": sum(stored.values()) - len(stored),
        "lost": len(ledger.accepted - stored.keys()),
        "stored_though_not_accepted": len(stored.keys() - ledger.accepted),
    }
    print(f"\nfault figures: {json.dumps(figures)}")
    assert figures["other_statuses"] == {}, "the ingest endpoint answers 202 or 503, nothing else"
    assert ledger.dropped == 0
    assert ledger.accepted == ledger.sent, "every event was resent until accepted"
    assert figures["lost"] == 0, "accepted events are missing"
    assert figures["stored_though_not_accepted"] == 0, "ClickHouse holds ids never accepted"
    assert figures["duplicates"] == 0, "events were stored more than once"
    return figures


@contextlib.asynccontextmanager
async def running(instance: Instance, worker: Child, *argv: str) -> AsyncIterator[Child]:
    """Start `ursa web` and `worker` (with `argv`); yield the web process, stop both after."""
    web = instance.web()
    try:
        web.start()
        worker.start(*argv)
        await wait_healthy(instance.url)
        yield web
    finally:
        for child in (web, worker):
            child.stop(timeout=10)


@pytest.fixture
async def instance(tmp_path: Path, pycache: Path) -> AsyncIterator[Instance]:
    started = await start_instance(tmp_path, pycache, DOMAIN, BATCH_SIZE)
    yield started
    started.redis_server.kill()


async def settle(instance: Instance, worker: Child) -> None:
    """Wait for the buffer to settle, then stop the worker."""
    r = redis.Redis.from_url(instance.redis_server.url)
    try:
        await wait_settled(r, instance.settings.BUFFER_STREAM, worker, SETTLE_TIMEOUT_SECONDS)
    finally:
        r.close()
    assert worker.stop() == 0, worker.tail()  # one process per chDB directory


# --- Redis frozen ---------------------------------------------------------------------------


async def test_frozen_redis_answers_503_and_resent_events_are_stored_once(
    instance: Instance,
) -> None:
    worker = instance.worker()
    senders = Senders(instance.port, pace=0.02)
    during: Counter[int] = Counter()

    async def freeze() -> None:
        before = senders.ledger.statuses.copy()
        instance.redis_server.freeze()
        try:
            await asyncio.sleep(REDIS_FREEZE_SECONDS)
        finally:
            instance.redis_server.thaw()
        during.update(senders.ledger.statuses - before)

    async with running(instance, worker):
        await send_through(senders, freeze)
        await settle(instance, worker)
    stored = await asyncio.to_thread(instance.stored_ids)

    figures = account("redis frozen 20 s", senders.ledger, stored)
    print(f"answers during the freeze: {dict(during)}")
    assert senders.ledger.timeouts == 0, "a request hung on the frozen Redis"
    assert during[503] > 0, "the web answered 503 while Redis was frozen"
    assert figures["slowest_answer_seconds"] < CLIENT_TIMEOUT_SECONDS


# --- ClickHouse unreachable -----------------------------------------------------------------


class PausableProxy:
    """A loopback TCP proxy to `upstream_port`. Paused, it accepts connections and reads what
    arrives, but forwards nothing either way (a network partition: the connections stay up,
    nothing gets through); resumed, it delivers what it held."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.flowing = asyncio.Event()
        self.flowing.set()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    async def start(self) -> int:
        """Listen on a free loopback port; return it."""
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    def pause(self) -> None:
        self.flowing.clear()

    def resume(self) -> None:
        self.flowing.set()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self.flowing.wait()
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        except OSError:
            writer.close()
        finally:
            self._tasks.discard(task)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                await self.flowing.wait()
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()


@dataclass
class Health:
    """The worker's `/readyz` status and lag gauges at one moment."""

    ready: int
    oldest_pending_age: float
    stream_length: float


async def worker_health(http: httpx.AsyncClient, metrics_url: str) -> Health:
    ready = (await http.get(f"{metrics_url}/readyz")).status_code
    text = (await http.get(f"{metrics_url}/metrics")).text
    values = {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    return Health(
        ready,
        values["ursa_buffer_oldest_pending_age_seconds"],
        values["ursa_buffer_stream_length"],
    )


def _group(r: redis.Redis, stream: str) -> dict[str, Any]:
    return next(g for g in r.xinfo_groups(stream) if g["name"] == GROUP.encode())


def _stream_id(entry_id: bytes) -> tuple[int, int]:
    millis, sequence = entry_id.split(b"-")
    return int(millis), int(sequence)


def backlog(r: redis.Redis, stream: str) -> tuple[bytes, int]:
    """The id of the newest entry, and how many entries are not in ClickHouse yet: pending
    (read, not acknowledged) and not yet read."""
    group = _group(r, stream)
    unread: Any = r.xrange(stream, min=b"(" + group["last-delivered-id"])
    newest: Any = r.xinfo_stream(stream)["last-generated-id"]
    return newest, int(group["pending"]) + len(unread)


def flushed_through(r: redis.Redis, stream: str, mark: bytes) -> bool:
    """Every entry up to `mark` is in ClickHouse (read and acknowledged), whatever came since."""
    group = _group(r, stream)
    if _stream_id(group["last-delivered-id"]) < _stream_id(mark):
        return False
    pending: Any = r.xpending(stream, GROUP)
    return not pending["pending"] or _stream_id(pending["min"]) > _stream_id(mark)


@dataclass
class Outage:
    """What the test saw of the worker while ClickHouse was unreachable, and after."""

    early: Health  # the first reading with /readyz failing
    late: Health  # a reading near the end of the outage
    not_ready_after: float  # seconds from the pause to the early reading
    between: float  # seconds from the early reading to the late one
    statuses: Counter[int]  # what ingest answered meanwhile
    backlog: int  # entries not in ClickHouse when the outage ended
    drain_seconds: float  # from the end of the outage until those were in ClickHouse
    after: Health  # the first reading with /readyz passing again


async def reading(http: httpx.AsyncClient, url: str, status: int, what: str) -> Health:
    """Poll the worker's health until /readyz answers `status`; that reading."""
    readings: list[Health] = []

    async def answered() -> bool:
        readings.append(await worker_health(http, url))
        return readings[-1].ready == status

    await wait_for(answered, what, limit=2 * PROBE_INTERVAL_SECONDS + 5, interval=0.5)
    return readings[-1]


async def clickhouse_outage(
    proxy: PausableProxy,
    http: httpx.AsyncClient,
    url: str,
    instance: Instance,
    worker: Child,
    senders: Senders,
) -> Outage:
    stream = instance.settings.BUFFER_STREAM
    statuses = senders.ledger.statuses.copy()
    r = redis.Redis.from_url(instance.redis_server.url)
    try:
        proxy.pause()
        paused = time.monotonic()
        try:
            early = await reading(http, url, 503, "the worker's /readyz to fail")
            early_at = time.monotonic()
            await asyncio.sleep(CLICKHOUSE_OUTAGE_SECONDS - 5 - (early_at - paused))
            late, late_at = await worker_health(http, url), time.monotonic()
            await asyncio.sleep(CLICKHOUSE_OUTAGE_SECONDS - (time.monotonic() - paused))
            mark, left = backlog(r, stream)
        finally:
            proxy.resume()
        resumed = time.monotonic()

        async def drained() -> bool:
            assert worker.alive(), worker.tail()
            return flushed_through(r, stream, mark)

        await wait_for(drained, "the backlog to drain", SETTLE_TIMEOUT_SECONDS, interval=0.05)
        drain_seconds = time.monotonic() - resumed
    finally:
        r.close()
    after = await reading(http, url, 200, "the worker's /readyz to pass again")
    return Outage(
        early,
        late,
        early_at - paused,
        late_at - early_at,
        senders.ledger.statuses - statuses,
        left,
        drain_seconds,
        after,
    )


@pytest.mark.timeout(600)  # the outage alone takes 120 s of the default 300
async def test_clickhouse_unreachable_buffers_reports_and_drains(instance: Instance) -> None:
    clickhouse_port, worker_metrics_port = free_port(), free_port()
    clickhouse = Child(
        "clickhouse",
        [*instance.chdb_tool, "serve", str(instance.chdb_dir), str(clickhouse_port)],
        instance.env,
        instance.folder,
    )
    worker = instance.worker(
        METRICS_PORT=str(worker_metrics_port),
        WORKER_UNHEALTHY_EXIT_SECONDS=str(WORKER_GRACE_SECONDS),
    )
    url = f"http://127.0.0.1:{worker_metrics_port}"
    proxy = PausableProxy(clickhouse_port)
    proxy_port = await proxy.start()
    senders = Senders(instance.port, pace=0.1)
    seen: list[Outage] = []

    async def outage() -> None:
        seen.append(await clickhouse_outage(proxy, http, url, instance, worker, senders))

    try:
        async with httpx.AsyncClient(timeout=5) as http:
            clickhouse.start()
            await wait_healthy(f"http://127.0.0.1:{clickhouse_port}")
            async with running(
                instance, worker, "--clickhouse-url", f"http://127.0.0.1:{proxy_port}"
            ):
                await wait_healthy(url)
                await reading(http, url, 200, "the worker's /readyz")
                await send_through(senders, outage)
                await settle(instance, worker)
            assert clickhouse.stop() == 0, clickhouse.tail()
        stored = await asyncio.to_thread(instance.stored_ids)
    finally:
        await proxy.close()
        clickhouse.stop(timeout=10)

    account("clickhouse unreachable 120 s", senders.ledger, stored)
    (seen_outage,) = seen
    early, late = seen_outage.early, seen_outage.late
    print(
        f"worker not ready {seen_outage.not_ready_after:.1f} s into the outage; lag gauges "
        f"{early} → {late}; ingest answered {dict(seen_outage.statuses)} meanwhile"
    )
    print(f"drained {seen_outage.backlog} events in {seen_outage.drain_seconds:.1f} s")
    assert seen_outage.statuses[202] > 0, "ingest does not depend on ClickHouse"
    assert seen_outage.statuses[503] == 0, "ingest does not depend on ClickHouse"
    assert late.ready == 503, "the worker stayed not ready through the outage"
    # The oldest event pending at the early reading still waited at the late one.
    assert late.oldest_pending_age - early.oldest_pending_age >= seen_outage.between - 1
    assert late.stream_length > early.stream_length, "the buffer held the new events"
    assert seen_outage.backlog > 0
    assert seen_outage.after.oldest_pending_age < early.oldest_pending_age, "the lag is gone"


# --- web restarted --------------------------------------------------------------------------


async def test_web_restarted_mid_stream_stores_every_accepted_event_once(
    instance: Instance,
) -> None:
    worker = instance.worker()
    senders = Senders(instance.port, pace=0.01)
    restarts: list[int | None] = []

    async def restart_web(web: Child) -> None:
        restarts.append(await asyncio.to_thread(web.stop))  # SIGTERM: open requests finish
        await asyncio.sleep(WEB_DOWN_SECONDS)
        web.start()
        await wait_healthy(instance.url)

    async with running(instance, worker) as web:
        await send_through(senders, lambda: restart_web(web))
        await settle(instance, worker)
    stored = await asyncio.to_thread(instance.stored_ids)

    account("web restarted", senders.ledger, stored)
    assert restarts == [0], "the web process stopped cleanly on SIGTERM"
    assert senders.ledger.transport_errors > 0, "the senders met the web while it was down"
