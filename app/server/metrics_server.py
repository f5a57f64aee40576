"""`MetricsServer`: `/metrics` and the health checks of a process without an internal app."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterable
from typing import Any, Protocol
from wsgiref.simple_server import WSGIRequestHandler, make_server
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer

from app.observability.metrics import process_registry
from app.server.gauges import RedisCollector
from app.tasks.registry import job_queues


class Health(Protocol):
    """The answers of a process's health checks (`app.tasks.watchdog.Watchdog` gives them)."""

    def live(self) -> bool: ...

    def ready(self) -> bool: ...


class MetricsServer:
    """`/metrics`, `/healthz` (liveness) and `/readyz` (readiness) on `METRICS_HOST:METRICS_PORT`,
    served from a thread, for processes without an internal app (`ursa worker`, `ursa
    scheduler`): 200 or 503 as `health` says, 404 for other paths. `close()` stops it and
    releases its Redis client."""

    def __init__(self, redis_url: str, stream: str, host: str, port: int, health: Health) -> None:
        self.collector = RedisCollector(redis_url, stream, job_queues())
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        server: type[ThreadingWSGIServer] = type(
            "MetricsWSGIServer", (ThreadingWSGIServer,), {"address_family": family}
        )  # of the host's address family (IPv4 or IPv6)
        app = _routes(process_registry(self.collector), health)
        self.server = make_server(host, port, app, server, handler_class=_QuietHandler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.collector.close()


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """No access log: probes come every few seconds and scrapes every few more."""


def _routes(registry: CollectorRegistry, health: Health) -> WSGIApplication:
    exposition = make_wsgi_app(registry)
    checks = {"/healthz": health.live, "/readyz": health.ready}

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            return exposition(environ, start_response)  # type: ignore[no-any-return]
        check = checks.get(path)
        if check is None:
            status, body = "404 Not Found", b"not found\n"
        elif check():
            status, body = "200 OK", b"ok\n"
        else:
            status, body = "503 Service Unavailable", b"unhealthy\n"
        headers = [
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Length", str(len(body))),
        ]
        start_response(status, headers)
        return [body]

    return app
