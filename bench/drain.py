"""(b) Drain: how fast the worker's `Flusher` moves buffered events into ClickHouse.

Runs in its own process (`python -m bench.drain`), because one process can open one chDB
directory. The stream is filled first with pre-encoded entries (not timed); then `Flusher.drain`
runs in this process until the stream is empty, exactly as a worker would.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import redis

from app.analytics.buffer.flush import Flusher
from app.analytics.buffer.stream import FIELD, encoder
from app.analytics.clickhouse.gateway import ClickHouse
from app.analytics.clickhouse.schema import migrate
from app.settings import Settings
from bench.common import Figure, emit, redis_server, say, write_figures
from bench.traffic import buffered_events

STREAM = "bench:drain"
SITE_ID = 1
FILL_CHUNK = 20_000


def fill(client: redis.Redis, events: int) -> None:
    done = 0
    while done < events:
        chunk = buffered_events(min(FILL_CHUNK, events - done), SITE_ID, seed=done + 1)
        with client.pipeline(transaction=False) as pipe:
            for event in chunk:
                pipe.xadd(STREAM, {FIELD: encoder.encode(event)})
            pipe.execute()
        done += len(chunk)


class TimedInserts(ClickHouse):
    """The real gateway, timing its inserts (to split ClickHouse from Python/Redis work)."""

    insert_seconds = 0.0

    def insert(
        self,
        table: str,
        columns: Sequence[str],
        data: Sequence[Sequence[Any]],
        token: str | None = None,
    ) -> int:
        started = time.perf_counter()
        try:
            return super().insert(table, columns, data, token)
        finally:
            self.insert_seconds += time.perf_counter() - started


def measure(events: int, *, profile: bool = False) -> list[Figure]:
    figures: list[Figure] = []
    batch_size = Settings.model_fields["FLUSH_BATCH_SIZE"].default
    say(f"\n(b) drain: {events:,} buffered events → ClickHouse (chDB), batches of {batch_size:,}")
    with (
        tempfile.TemporaryDirectory(prefix="ursa-bench-drain-") as folder,
        redis_server(Path(folder) / "redis") as url,
    ):
        client = redis.Redis.from_url(url)
        started = time.perf_counter()
        fill(client, events)
        say(f"  (stream filled in {time.perf_counter() - started:.1f} s, not timed)")
        gateway = TimedInserts(f"chdb:///{Path(folder) / 'clickhouse'}")
        migrate(gateway)
        gateway.insert_seconds = 0.0
        flusher = Flusher(client, gateway, STREAM, batch_size=batch_size)
        profiler = cProfile.Profile() if profile else None
        redis_cpu = _redis_cpu_seconds(client)
        cpu = time.process_time()  # every thread of this process: Python and chDB's own
        started = time.perf_counter()
        if profiler is not None:
            profiler.enable()
        moved = 0
        while True:
            stats = flusher.drain(max_seconds=3600)
            moved += stats.events + stats.performance
            if stats.batches == 0:
                break
        if profiler is not None:
            profiler.disable()
        seconds = time.perf_counter() - started
        cpu = time.process_time() - cpu
        redis_cpu = _redis_cpu_seconds(client) - redis_cpu
        stored = gateway.query(
            "bench_drain_count",
            "SELECT (SELECT count() FROM events) AS events, "
            "(SELECT count() FROM performance) AS performance",
        )[0]
        gateway.close()
        client.close()
    rate = moved / seconds
    emit(
        figures,
        Figure(
            "drain",
            "drain rate",
            rate,
            "events/s",
            target=">= 50,000/s",
            met=rate >= 50_000,
            note=f"{moved:,} in {seconds:.1f} s: {stored['events']:,} events + "
            f"{stored['performance']:,} performance rows; ClickHouse inserts took "
            f"{gateway.insert_seconds / seconds:.0%} of the time",
        ),
    )
    emit(
        figures,
        Figure(
            "drain",
            "CPU time per event",
            (cpu + redis_cpu) / moved * 1e6,
            "µs",
            note=f"this process (Python and chDB) {cpu / moved * 1e6:.1f} µs, redis-server "
            f"{redis_cpu / moved * 1e6:.1f} µs; {(cpu + redis_cpu) / seconds:.2f} cores busy "
            "on average (less sensitive to other load on the machine than the rate)",
        ),
    )
    if profiler is not None:
        say("  profile (top functions by own time):")
        pstats.Stats(profiler).sort_stats("tottime").print_stats(20)
    return figures


def _redis_cpu_seconds(client: redis.Redis) -> float:
    info: Any = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--profile", action="store_true", help="print a cProfile summary")
    parser.add_argument("--json-out", required=True)
    args = parser.parse_args()
    write_figures(args.json_out, measure(args.events, profile=args.profile))


if __name__ == "__main__":
    main()
