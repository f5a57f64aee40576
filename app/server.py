"""Running the HTTP servers and the in-process worker/scheduler.

`serve()` is embedded mode: one process, with Ctrl-C stopping everything in order — stop
accepting requests, stop the scheduler and the worker, flush the buffer into ClickHouse, and
stop the redis-server child last. If that child dies, `serve()` says so and exits non-zero.

Both log JSON lines to stdout (uvicorn's loggers included) and serve the internal app, with the
process's `/metrics`, on loopback `METRICS_PORT`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
import time
from collections.abc import Coroutine, Iterator
from typing import Any

import dramatiq
import uvicorn
import uvloop

from app.instance import forget_instance, record_instance, running_instance_url
from app.internal import create_internal_app
from app.main import create_app
from app.redis_server import EmbeddedRedis
from app.runtime import (
    ConfigurationError,
    configure_logging,
    migrate_all,
    start_embedded_redis,
)
from app.services import Services
from app.settings import Settings
from app.tasks import context
from app.tasks.broker import setup_broker
from app.tasks.schedule import make_scheduler
from app.telemetry import setup_telemetry

log = logging.getLogger(__name__)

WATCH_INTERVAL_SECONDS = 0.5
FINAL_DRAIN_SECONDS = 120.0
SIGNAL_DEBOUNCE_SECONDS = 1.0


def run_event_loop(main: Coroutine[Any, Any, int]) -> int:
    """Run `main` on uvloop, the loop uvicorn itself picks when it is installed (it is, with
    `uvicorn[standard]`); the standard loop costs ~15% more CPU per request."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


class _QuietServer(uvicorn.Server):
    """A uvicorn server that leaves signal handling to `run_http` (two servers share them)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _uvicorn_config(app: object, host: str, port: int) -> uvicorn.Config:
    return uvicorn.Config(
        app,  # type: ignore[arg-type]
        host=host,
        port=port,
        proxy_headers=False,  # client IPs come from our own trusted-proxy rule
        server_header=False,
        access_log=False,  # access logs would hold client IPs; app.observability logs requests
        log_config=None,  # uvicorn's loggers go through ours (JSON, redacted)
        log_level="warning",
        lifespan="on",
    )


async def run_http(
    settings: Settings, services: Services, redis_child: EmbeddedRedis | None
) -> int:
    """Serve the public and internal apps until a signal (0) or the redis child dies (1)."""
    configure_logging(settings.LOG_LEVEL, "stdout")
    public = _QuietServer(
        _uvicorn_config(create_app(settings, services), settings.HOST, settings.PORT)
    )
    internal = _QuietServer(
        _uvicorn_config(create_internal_app(services), settings.METRICS_HOST, settings.METRICS_PORT)
    )
    exit_code = 0

    async def watch_redis() -> None:
        nonlocal exit_code
        while not public.should_exit:
            if redis_child is not None and not redis_child.alive():
                log_file = redis_child.folder / "redis.log"
                reason = f"the embedded redis-server died; stopping (see {log_file})"
                log.error(reason)
                print(f"error: {reason}", file=sys.stderr)  # the reason for the exit code
                exit_code = 1
                public.should_exit = True
            await asyncio.sleep(WATCH_INTERVAL_SECONDS)
        internal.should_exit = True

    first_signal: list[float] = []

    def stop() -> None:
        now = time.monotonic()
        # A second Ctrl-C (not the same one delivered twice, e.g. by a wrapper) stops waiting
        # for open connections.
        if first_signal and now - first_signal[0] > SIGNAL_DEBOUNCE_SECONDS:
            public.force_exit = internal.force_exit = True
        first_signal.append(now)
        public.should_exit = True

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop)
    log.info("Ursa is listening on http://%s:%s", settings.HOST, settings.PORT)
    await asyncio.gather(public.serve(), internal.serve(), watch_redis())
    return exit_code


def serve(settings: Settings) -> int:
    """Embedded mode: everything in this process."""
    configure_logging(settings.LOG_LEVEL, "stdout")
    settings = settings.with_secrets()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if settings.embedded and running_instance_url(settings):
        raise ConfigurationError(f"Ursa is already running on {settings.data_dir}")
    settings, redis_child = start_embedded_redis(settings)
    telemetry = setup_telemetry(settings, "ursa")  # with REDIS_URL set: the export reads it
    services = Services(settings)
    try:
        migrate_all(settings, services.clickhouse)
        broker = setup_broker(settings.REDIS_URL)
        context.bind(services)
        worker = dramatiq.Worker(broker, worker_threads=settings.WORKER_THREADS)
        worker.start()
        scheduler = make_scheduler(settings.FLUSH_INTERVAL_SECONDS)
        scheduler.start()
        record_instance(settings)
        try:
            exit_code = run_event_loop(run_http(settings, services, redis_child))
        finally:
            forget_instance(settings)
            scheduler.shutdown(wait=True)
            worker.stop()
            broker.close()
            if redis_child is None or redis_child.alive():
                flushed = drain_all(services)
                log.info("flushed %d buffered events into ClickHouse", flushed)
    finally:
        services.close_sync()
        if telemetry is not None:  # the last export, while Redis still answers its gauges
            telemetry.metrics.close()
        if redis_child is not None:
            redis_child.stop()
    return exit_code


def drain_all(services: Services) -> int:
    """Flush until the buffer is empty (used at shutdown, after the worker stopped)."""
    total = 0
    while True:
        stats = services.flusher.drain(max_seconds=FINAL_DRAIN_SECONDS)
        total += stats.events + stats.performance
        if stats.batches == 0:
            return total
