"""Moving buffered events from the Redis stream into ClickHouse, exactly once.

`Flusher` reads a batch, enriches it, records it, inserts it with its deduplication token, then
writes the visits and acknowledges it; docs/architecture.md ("Exactly once in storage") says
why a crash anywhere replays the same batch with the same token.
"""

from __future__ import annotations

import contextlib
import contextvars
import gc
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import redis

from app.analytics.buffer import engaged
from app.analytics.buffer.enrich import (
    ENGAGEMENT_COLUMNS,
    EVENT_COLUMNS,
    PERFORMANCE_COLUMNS,
    Enriched,
    enrich,
    stream_millis,
)
from app.analytics.buffer.lease import Lease
from app.analytics.buffer.stream import GROUP, BufferedEvent, decoder
from app.analytics.buffer.visits import (
    STATE_TTL_SECONDS,
    SessionState,
    Visitor,
    decode_states,
    encode_state,
    state_key,
    visitors_of,
)
from app.analytics.clickhouse.gateway import Gateway
from app.analytics.ingest.limits import ENGAGEMENT_EVENT, PERFORMANCE_EVENT
from app.observability.metrics import EVENTS_WRITTEN, FLUSH_BATCH_SECONDS
from app.store import keys

log = logging.getLogger(__name__)

# One flusher at a time (`Lease`) reads with this fixed consumer name, so a flusher that restarts
# after a crash finds its own pending entries again; no other consumer's entries need claiming.
CONSUMER = "flusher"
LOCK_TTL_MS = 15_000  # renewed every batch; a crashed flusher blocks others at most this long

Entries = tuple[list[bytes], list[bytes]]  # stream ids and their payloads, in stream order

# SET every key with the same TTL in one round trip (one reply instead of one per key).
_SET_MANY = """
local ttl = ARGV[#ARGV]
for i, key in ipairs(KEYS) do redis.call('SET', key, ARGV[i], 'EX', ttl) end
return #KEYS
"""


class LeaseLost(Exception):
    """The flusher's lease passed to another flusher before a batch could be recorded."""


@dataclass
class FlushStats:
    batches: int = 0
    events: int = 0
    performance: int = 0
    engagement: int = 0


@dataclass
class Prepared:
    """A batch read and enriched, ready to be written."""

    ids: list[bytes]
    enriched: Enriched
    states: dict[Visitor, SessionState]  # every state the batch read or changed, as it left them
    depths: engaged.Depths  # the same of its beacons' pairs of visitor and page
    started: float  # perf_counter when the batch was read


class Flusher:
    """Drain the stream into ClickHouse, one batch at a time, writing one while the next is read.

    Writing a batch (record, insert, visits, `XACK`: the writer thread) overlaps reading and
    enriching the next one: Redis and ClickHouse do their part without holding the GIL, so the
    overlap keeps a second core busy. At most one batch is being written while the next is
    prepared, and a batch is recorded only once the one before it is acknowledged, so there is
    never more than one recorded batch. The next batch takes the visit states the one being
    written left behind (they are not in Redis yet); Redis has the rest, written by earlier
    batches. The deepest scroll of each visitor's pages (`engaged`) is carried the same way. A
    replay after a crash sees exactly those states in Redis, so it computes what the first
    attempt did. The stream is trimmed only below the oldest pending entry, at the end of
    a drain.
    """

    def __init__(
        self,
        redis_client: redis.Redis,  # bytes responses (decode_responses=False)
        gateway: Gateway,
        stream: str,
        batch_size: int = 50_000,
        on_batch: Callable[[str], None] | None = None,
    ) -> None:
        self.redis = redis_client
        self.gateway = gateway
        self.stream = stream
        self.batch_size = batch_size
        self.on_batch = on_batch  # test hook: called with the stage name ("inserted", "acked")
        self._set_many = redis_client.register_script(_SET_MANY)
        # Stream reads go through a client on the same connections that keeps replies as sent:
        # redis-py's own parsing builds a dict per entry, a sixth of the flush time.
        self._unparsed = redis.Redis(connection_pool=redis_client.connection_pool)
        for command in ("XREADGROUP", "XRANGE"):
            self._unparsed.set_response_callback(command, _as_sent)

    def ensure_group(self) -> None:
        try:
            self.redis.xgroup_create(self.stream, GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def buffered(self) -> int:
        """How many entries wait in the stream: those not flushed yet and, until the next
        trim, flushed ones behind the oldest unacknowledged entry."""
        return int(self.redis.xlen(self.stream))

    def drain(self, max_seconds: float = 10.0) -> FlushStats:
        """Flush batches until the stream is empty or `max_seconds` pass (one flusher at once)."""
        lease = Lease(self.redis, keys.FLUSH_LOCK, LOCK_TTL_MS)
        if not lease.acquire():
            return FlushStats()
        stats = FlushStats()
        try:
            self.ensure_group()
            with _collector_paused():
                self._replay_recorded(stats)
            with ThreadPoolExecutor(1, thread_name_prefix="ursa-flush-writer") as writer:
                self._pipeline(writer, lease, time.monotonic() + max_seconds, stats)
            self._trim()
        except LeaseLost:
            log.warning("the flush lease passed to another flusher; this drain stops")
        finally:
            with contextlib.suppress(redis.RedisError):
                lease.release()
        return stats

    def _pipeline(
        self, writer: ThreadPoolExecutor, lease: Lease, deadline: float, stats: FlushStats
    ) -> None:
        """Prepare each batch while the one before it is written; return once none is."""
        writing: Future[None] | None = None
        carried: dict[Visitor, SessionState] = {}
        carried_depths: engaged.Depths = {}
        after: bytes | None = b"0"  # pending entries first (a crashed run's), then new ones (None)
        try:
            while time.monotonic() < deadline and lease.renew():
                with _collector_paused():
                    entries = self._read(after)
                    if not entries[0]:
                        if after is None:
                            break
                        after = None
                        continue
                    if after is not None:
                        after = entries[0][-1]  # pending ones after those (these are in flight)
                    batch = self._prepare(entries, carried, carried_depths)
                    if writing is not None:
                        writing.result()  # raises what the write raised: nothing more is written
                    token = uuid.uuid4().hex
                    run = contextvars.copy_context().run  # the writer's spans join this trace
                    writing = writer.submit(run, self._write, batch, token, stats, lease)
                    carried, carried_depths = batch.states, batch.depths
        finally:
            if writing is not None:
                writing.result()  # the lease is held until the last write has ended

    def _read(self, after: bytes | None) -> Entries:
        """This consumer's pending entries after id `after`, or new entries when it is None."""
        reply: Any = self._unparsed.xreadgroup(
            GROUP, CONSUMER, {self.stream: ">" if after is None else after}, count=self.batch_size
        )
        if not reply:
            return [], []
        # One stream was asked for: RESP3 answers {stream: entries}, RESP2 [[stream, entries]].
        ((_, entries),) = reply.items() if isinstance(reply, dict) else reply
        return _split(entries)

    def _replay_recorded(self, stats: FlushStats) -> None:
        record: Any = self.redis.hgetall(keys.FLUSH_BATCH)
        if not record:
            return
        first, last, token = record[b"first"], record[b"last"], record[b"token"].decode()
        reply: Any = self._unparsed.xrange(self.stream, first, last)
        entries = _split(reply)
        if not entries[0]:  # acknowledged and trimmed before the record was removed
            self.redis.delete(keys.FLUSH_BATCH)
            return
        log.warning("replaying batch %s..%s (%d entries)", first, last, len(entries[0]))
        self._write(self._prepare(entries, {}, {}), token, stats)

    def _prepare(
        self,
        entries: Entries,
        carried: dict[Visitor, SessionState],
        carried_depths: engaged.Depths,
    ) -> Prepared:
        """Decode and enrich a batch; `carried` and `carried_depths` are states newer than
        Redis's (see the class doc)."""
        started = time.perf_counter()
        ids, payloads = entries
        millis = [stream_millis(entry_id) for entry_id in ids]
        events = [decoder.decode(payload) for payload in payloads]
        states = self._load_states(events, carried)
        pairs = [
            (e.site_id, e.visitor_id, e.pathname) for e in events if e.name == ENGAGEMENT_EVENT
        ]
        depths = engaged.load(self.redis, pairs, carried_depths) if pairs else {}
        return Prepared(ids, enrich(millis, events, states, depths), states, depths, started)

    def _write(
        self, batch: Prepared, token: str, stats: FlushStats, record: Lease | None = None
    ) -> None:
        """Write a batch; a new one is first recorded under the lease (`record`), a replayed
        one already is. Recording checks the lease in the same step: two flushers never record
        and insert the same pending entries under different tokens."""
        ids, enriched = batch.ids, batch.enriched
        if record is not None:
            entry: dict[str, str | bytes] = {"first": ids[0], "last": ids[-1], "token": token}
            if not record.hset_if_held(keys.FLUSH_BATCH, entry):
                raise LeaseLost
        self._insert(enriched, token)
        self._hook("inserted")
        self._save_states(batch.states)
        engaged.save(self.redis, batch.depths)
        self.redis.xack(self.stream, GROUP, *ids)
        self._hook("acked")
        self.redis.delete(keys.FLUSH_BATCH)
        stats.batches += 1
        stats.events += enriched.event_rows
        stats.performance += enriched.performance_rows
        stats.engagement += enriched.engagement_rows
        EVENTS_WRITTEN.labels(table="events").inc(enriched.event_rows)
        EVENTS_WRITTEN.labels(table="performance").inc(enriched.performance_rows)
        EVENTS_WRITTEN.labels(table="engagement").inc(enriched.engagement_rows)
        FLUSH_BATCH_SECONDS.observe(time.perf_counter() - batch.started)

    def _insert(self, enriched: Enriched, token: str) -> None:
        if enriched.event_rows:
            self.gateway.insert("events", EVENT_COLUMNS, enriched.events, token=token)
        if enriched.performance_rows:
            self.gateway.insert(
                "performance",
                PERFORMANCE_COLUMNS,
                enriched.performance,
                token=f"{token}:performance",
            )
        if enriched.engagement_rows:
            self.gateway.insert(
                "engagement", ENGAGEMENT_COLUMNS, enriched.engagement, token=f"{token}:engagement"
            )

    def _load_states(
        self, events: list[BufferedEvent], carried: dict[Visitor, SessionState]
    ) -> dict[Visitor, SessionState]:
        """The states of the visitors whose events take part in sessions (not performance
        beacons), and of those whose engagement beacons read their session."""
        visitors = visitors_of(
            (e.site_id, e.visitor_id, e.previous_visitor_id)
            for e in events
            if e.name != PERFORMANCE_EVENT
        )
        stored = [visitor for visitor in visitors if visitor not in carried]
        raw: Any = self.redis.mget([state_key(v) for v in stored]) if stored else []
        states = decode_states(stored, raw)
        states.update((v, carried[v]) for v in visitors if v in carried)
        return states

    def _save_states(self, states: dict[Visitor, SessionState]) -> None:
        if states:
            keys = [state_key(visitor) for visitor in states]
            values = [encode_state(state) for state in states.values()]
            self._set_many(keys=keys, args=[*values, STATE_TTL_SECONDS])

    def _trim(self) -> None:
        """Delete entries below the oldest pending one (or all delivered ones when none is)."""
        summary: Any = self.redis.xpending(self.stream, GROUP)
        if summary["pending"]:
            floor = summary["min"]
        else:
            groups: Any = self.redis.xinfo_groups(self.stream)
            floor = next(g["last-delivered-id"] for g in groups if g["name"] == GROUP.encode())
        self.redis.xtrim(self.stream, minid=floor, approximate=False)

    def _hook(self, stage: str) -> None:
        if self.on_batch is not None:
            self.on_batch(stage)


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while a batch is read and flushed.

    A batch allocates a few objects per event that live until its end and are then freed by
    reference counting (they form no cycles). Meanwhile the collector, triggered by the count of
    allocations, walks all of them again and again in full collections: a third of the flush
    time at 20,000 events per batch. The switch is process-wide, so other threads skip
    collections for the length of one batch (well under a second); then it is on again.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _as_sent(response: Any, **_options: Any) -> Any:
    return response


def _split(entries: list[list[Any]]) -> Entries:
    """Stream entries as Redis sends them ([id, [field, value]]) → (ids, payloads).

    The buffer writes one field per entry (`buffer.FIELD`), so the value is at index 1. The
    entries' lists are dropped here, so a batch keeps no object per entry but its event.
    """
    return [entry[0] for entry in entries], [entry[1][1] for entry in entries]
