"""A flusher process for crash tests: drains the buffer in a loop, like `ursa worker` does.

    python tests/integration/crash_worker.py [--crash-at inserted|acked --crash-batch N]
                                             [--clickhouse-url URL]

Settings come from the environment, as for `ursa worker` (URSA_DATA_DIR, REDIS_URL, ...; the
repository on PYTHONPATH). With
`--crash-at`, the process SIGKILLs itself when its N-th batch reaches that stage of
`Flusher._flush_batch` ("inserted": after the ClickHouse insert, before the XACK). Redis or
ClickHouse errors are logged and the next tick retries, as the Dramatiq actor does. SIGTERM or
SIGINT stops it after the current drain, closing chDB cleanly.

With `--clickhouse-url`, ClickHouse is not opened here but reached over HTTP through the
internal port at URL (`chdb_tool.py serve`, or a proxy in front of it), and the process serves
`/metrics`, `/healthz` and `/readyz` on `METRICS_PORT` from the watchdog `ursa worker` runs
(probing Redis and ClickHouse), so that a test can watch what an operator sees while
ClickHouse is unreachable.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading

from redis.exceptions import RedisError

from app.analytics.clickhouse.gateway import ClickHouseError
from app.analytics.clickhouse.remote import RemoteClickHouse
from app.server.metrics_server import MetricsServer
from app.server.startup import configure_logging
from app.services import Services
from app.settings import Settings
from app.tasks.watchdog import Watchdog, supervise

log = logging.getLogger("crash_worker")

DRAIN_SECONDS = 10.0
IDLE_SECONDS = 0.2
RETRY_SECONDS = 0.2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--crash-at", choices=("inserted", "acked"), default=None)
    parser.add_argument("--crash-batch", type=int, default=1)
    parser.add_argument("--clickhouse-url", default=None)
    args = parser.parse_args(argv)

    settings = Settings().with_secrets()
    configure_logging(settings.LOG_LEVEL)
    remote = args.clickhouse_url
    services = Services(
        settings, RemoteClickHouse(remote, settings.INTERNAL_TOKEN) if remote else None
    )
    flusher = services.flusher
    reached = 0

    def crash_hook(stage: str) -> None:
        nonlocal reached
        if stage != args.crash_at:
            return
        reached += 1
        if reached == args.crash_batch:
            log.warning("SIGKILL at stage %r of batch %d", stage, reached)
            logging.shutdown()
            os.kill(os.getpid(), signal.SIGKILL)

    if args.crash_at:
        flusher.on_batch = crash_hook

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())

    services.clickhouse.query("warmup", "SELECT 1")  # open chDB before the first batch
    health = _serve_health(settings, services, stop) if remote else None
    log.info("flusher ready (pid %d)", os.getpid())
    try:
        while not stop.is_set():
            try:
                stats = flusher.drain(max_seconds=DRAIN_SECONDS)
            except (RedisError, ClickHouseError) as exc:
                log.warning("flush failed, retrying: %s", exc)
                stop.wait(RETRY_SECONDS)
                continue
            if stats.batches:
                log.info("flushed %d events in %d batches", stats.events, stats.batches)
            else:
                stop.wait(IDLE_SECONDS)
    finally:
        if health is not None:
            health.close()
        services.close_sync()
    log.info("flusher stopped")
    return 0


def _serve_health(settings: Settings, services: Services, stop: threading.Event) -> MetricsServer:
    """The health checks and metrics of `ursa worker`, its watchdog probing in a thread (the
    main thread flushes). A dependency down past the grace is logged; the flusher keeps on."""
    watchdog = Watchdog(
        {
            "redis": services.sync_redis.ping,
            "clickhouse": lambda: services.clickhouse.query("watchdog", "SELECT 1"),
        },
        settings.WORKER_UNHEALTHY_EXIT_SECONDS,
    )
    threading.Thread(target=supervise, args=(stop, watchdog), daemon=True).start()
    return MetricsServer(
        settings.REDIS_URL,
        settings.BUFFER_STREAM,
        settings.METRICS_HOST,
        settings.METRICS_PORT,
        watchdog,
    )


if __name__ == "__main__":
    sys.exit(main())
