"""Running the HTTP servers and the in-process worker/scheduler.

Both log JSON lines to stdout (uvicorn's loggers included) and serve the internal app, with the
process's `/metrics`, on loopback `METRICS_PORT`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import dramatiq
import uvicorn
import uvloop

from app.analytics.clickhouse.gateway import Gateway
from app.main import create_app
from app.server.embedded_redis import start_embedded_redis
from app.server.http_helpers import HttpHelpers, bind_listeners
from app.server.instance import forget_instance, record_instance, running_instance_url
from app.server.internal_app import create_internal_app
from app.server.migrate import migrate_all
from app.server.startup import ConfigurationError, configure_logging
from app.server.telemetry import setup_telemetry
from app.services import Services
from app.settings import Settings
from app.tasks import context
from app.tasks.registry import setup_broker
from app.tasks.schedule import make_scheduler

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
    settings: Settings,
    services: Services,
    *,
    listener: socket.socket | None = None,
    internal: bool = True,
    watch: Callable[[], str | None] | None = None,
    on_stop: Callable[[], None] | None = None,
) -> int:
    """Serve the public app (on `listener`, else on HOST:PORT) and, with `internal`, the internal
    app, until a signal (0) or until `watch` names a reason to stop (1). `on_stop` runs when a
    signal arrives."""
    configure_logging(settings.LOG_LEVEL, "stdout")
    public = _QuietServer(
        _uvicorn_config(create_app(settings, services), settings.HOST, settings.PORT)
    )
    servers = [public]
    if internal:
        app = create_internal_app(services)
        servers.append(
            _QuietServer(_uvicorn_config(app, settings.METRICS_HOST, settings.METRICS_PORT))
        )
    exit_code = 0

    async def watch_dependencies() -> None:
        nonlocal exit_code
        while not public.should_exit:
            reason = watch() if watch is not None else None
            if reason is not None:
                log.error(reason)
                print(f"error: {reason}", file=sys.stderr)  # the reason for the exit code
                exit_code = 1
                public.should_exit = True
            await asyncio.sleep(WATCH_INTERVAL_SECONDS)
        for server in servers:
            server.should_exit = True

    first_signal: list[float] = []

    def stop() -> None:
        now = time.monotonic()
        # A second Ctrl-C (not the same one delivered twice, e.g. by a wrapper) stops waiting
        # for open connections.
        if first_signal and now - first_signal[0] > SIGNAL_DEBOUNCE_SECONDS:
            for server in servers:
                server.force_exit = True
        if not first_signal:
            log.info("stopping: no new requests, finishing the open ones…")
        first_signal.append(now)
        public.should_exit = True
        if on_stop is not None:
            on_stop()

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # SIGHUP: its terminal closed
        loop.add_signal_handler(sig, stop)
    log.info(
        "Ursa is listening on http://%s:%s (pid %d)", settings.HOST, settings.PORT, os.getpid()
    )
    sockets = [listener] if listener is not None else None
    await asyncio.gather(
        public.serve(sockets), *(server.serve() for server in servers[1:]), watch_dependencies()
    )
    return exit_code


def web_services(settings: Settings, gateway: Gateway | None, service_name: str) -> Services:
    """The services of a process that answers HTTP and runs no worker, with its telemetry and
    the job broker its requests enqueue to (emails)."""
    setup_telemetry(settings, service_name)
    setup_broker(settings.REDIS_URL)
    return Services(settings, gateway)


def serve(settings: Settings) -> int:
    """Embedded mode: the worker, the scheduler, chDB and HTTP in this process, HTTP also in
    `HTTP_PROCESSES - 1` helpers (`app.server.http_helpers`).

    Ctrl-C stops everything in order: stop accepting requests (helpers too), stop the scheduler
    and the worker, flush the buffer into ClickHouse, and stop the redis-server child last. If
    that child or a helper dies, `serve()` says so and exits non-zero.
    """
    configure_logging(settings.LOG_LEVEL, "stdout")
    settings = settings.with_secrets()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if settings.embedded and running_instance_url(settings):
        raise ConfigurationError(f"Ursa is already running on {settings.data_dir}")
    listeners = bind_listeners(settings.HOST, settings.PORT, settings.HTTP_PROCESSES)
    settings, redis_child = start_embedded_redis(settings)
    telemetry = setup_telemetry(settings, "ursa")  # REDIS_URL now set
    services = Services(settings)
    helpers = HttpHelpers(settings, listeners[1:])

    def failure() -> str | None:
        if redis_child is not None and not redis_child.alive():
            return (
                f"the embedded redis-server died; stopping (see {redis_child.folder / 'redis.log'})"
            )
        reason = helpers.failure()
        return None if reason is None else f"{reason}; stopping"

    try:
        migrate_all(settings, services.clickhouse)
        broker = setup_broker(settings.REDIS_URL)
        context.bind(services)
        log.info("starting the worker (%d threads) and the scheduler…", settings.WORKER_THREADS)
        worker = dramatiq.Worker(broker, worker_threads=settings.WORKER_THREADS)
        worker.start()
        scheduler = make_scheduler(settings.FLUSH_INTERVAL_SECONDS)
        scheduler.start()
        record_instance(settings)
        try:
            helpers.start()
            exit_code = run_event_loop(
                run_http(
                    settings,
                    services,
                    listener=listeners[0],
                    watch=failure,
                    on_stop=helpers.terminate,
                )
            )
        finally:
            helpers.stop()  # their accepted events are in Redis before the last flush
            forget_instance(settings)
            scheduler.shutdown(wait=True)
            worker.stop()
            broker.close()
            if redis_child is None or redis_child.alive():
                log.info(
                    "flushing %d buffered events into ClickHouse…", services.flusher.buffered()
                )
                flushed = drain_all(services)
                log.info("flushed %d buffered events into ClickHouse", flushed)
    finally:
        services.close_sync()
        if telemetry is not None:  # the last export, while Redis still answers its gauges
            telemetry.metrics.close()
        if redis_child is not None:
            redis_child.stop()
    log.info("Ursa stopped")
    return exit_code


def drain_all(services: Services) -> int:
    """Flush until the buffer is empty (used at shutdown, after the worker stopped)."""
    total = 0
    while True:
        stats = services.flusher.drain(max_seconds=FINAL_DRAIN_SECONDS)
        total += stats.events + stats.performance
        if stats.batches == 0:
            return total
