"""One log line and one histogram sample per HTTP request, and the request id.

The line holds the request id, method, route template, status and duration: no IP, header,
cookie or query string. The request id is echoed in the response's `X-Request-ID` and bound to
every line logged while the request is handled.
"""

from __future__ import annotations

import functools
import re
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import structlog
from litestar.enums import ScopeType
from litestar.routes import ASGIRoute, BaseRoute, HTTPRoute, WebSocketRoute
from litestar.types import ASGIApp, HTTPScope, Message, Receive, Scope, Send
from prometheus_client import Histogram

from app.observability.logging import get_logger
from app.observability.metrics import HTTP_REQUEST_SECONDS

if TYPE_CHECKING:
    from litestar import Litestar
    from litestar.handlers import BaseRouteHandler

REQUEST_ID_HEADER = b"x-request-id"
UNMATCHED = "unmatched"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_SANE_ID = re.compile(rb"[A-Za-z0-9._:-]{1,128}")

log = get_logger("app.requests")

# A route's `opt` key: observed lean (timed, not logged, traced less). Ingest, the hot path, is
# timed and counted like every request (about 3 µs of CPU) but gets no log line and no request
# id: a line costs about 60 µs, half of what serving an ingest request costs (about 130 µs at
# 7,500 events/s on one core), so a line per event would cut ingest throughput by about a third.
LEAN = "lean_observation"


def lean_paths(app: Litestar) -> frozenset[str]:
    """The paths of `app` whose route handlers declare `opt={LEAN: True}`."""
    return frozenset(
        route.path
        for route in app.routes
        if any(handler.opt.get(LEAN) for handler in _handlers(route))
    )


def _handlers(route: BaseRoute) -> Iterable[BaseRouteHandler]:
    if isinstance(route, HTTPRoute):
        return route.route_handlers
    return [route.route_handler] if isinstance(route, ASGIRoute | WebSocketRoute) else []


def observe_requests(app: Litestar) -> Litestar:
    """`app`, its requests observed (wraps the handler that routes them).

    Wrapping the whole app (routing and its exception handlers included) sees 404s, 405s and
    errors too, with the route template (`/{domain}/cards/{card}`) as Litestar matched it;
    unmatched paths are `unmatched`, never the raw path."""
    app.asgi_handler = RequestObserver(app.asgi_handler, lean_paths(app))
    return app


def request_id(headers: Iterable[tuple[bytes, bytes]]) -> bytes:
    """The client's `X-Request-ID` if it is sane (letters, digits, `._:-`, at most 128
    characters), else a new random one."""
    for name, value in headers:
        if name == REQUEST_ID_HEADER and _SANE_ID.fullmatch(value):
            return value
    return secrets.token_hex(16).encode()


def status_class(status: int | None) -> str:
    """`2xx`…`5xx`; `none` when no response was sent (the client went away first)."""
    return f"{status // 100}xx" if status else "none"


@dataclass(slots=True)
class Outcome:
    """What became of one request."""

    route: str = UNMATCHED
    status: int | None = None
    seconds: float = 0.0


class RequestObserver:
    """ASGI middleware: times every HTTP request; logs and tags all but ingest."""

    def __init__(self, app: ASGIApp, lean: frozenset[str] = frozenset()) -> None:
        self.app = app
        self.lean = lean  # timed and counted, without a log line or a request id

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
        elif scope["path"] in self.lean:
            await self._observed(scope, receive, send, None)
        else:
            rid = request_id(scope["headers"])
            with structlog.contextvars.bound_contextvars(request_id=rid.decode()):
                outcome = await self._observed(scope, receive, send, rid)
                failed = outcome.status is not None and outcome.status >= 500
                (log.error if failed else log.info)(
                    "request",
                    method=scope["method"],
                    route=outcome.route,
                    status=outcome.status,
                    duration_ms=round(outcome.seconds * 1000, 2),
                )

    async def _observed(
        self, scope: HTTPScope, receive: Receive, send: Send, rid: bytes | None
    ) -> Outcome:
        """Serve the request, tagged with `rid` unless None; time it into the histogram."""
        started = time.perf_counter()
        outcome = Outcome()

        async def send_observed(message: Message) -> None:
            if message["type"] == "http.response.start":
                outcome.status = message["status"]
                if rid is not None:
                    message["headers"] = [*message.get("headers", ()), (REQUEST_ID_HEADER, rid)]
            await send(message)

        try:
            await self.app(scope, receive, send_observed)
        finally:
            outcome.seconds = time.perf_counter() - started
            outcome.route = scope.get("path_template") or UNMATCHED
            _histogram(scope["method"], outcome.route, outcome.status).observe(outcome.seconds)
        return outcome


@functools.lru_cache(maxsize=4096)
def _histogram(method: str, route: str, status: int | None) -> Histogram:
    """The histogram's child for these labels (a cached lookup: half the cost of a sample).

    Methods other than the standard ones are `other`: a client chooses the method, and every
    label value is a series kept for the life of the process.
    """
    known = method if method in METHODS else "other"
    return HTTP_REQUEST_SECONDS.labels(known, route, status_class(status))
