"""`POST /api/event`: Plausible-compatible ingestion. Always credential-free and CORS-open.

202 accepted (also when dropped on purpose, with `x-ursa-dropped`), 400 malformed, 413 too
large, 415 wrong content type, 503 buffer unavailable (the only status worth a retry). Nothing a
client sends gets a 500: one is a fault of ours, answered in JSON with the CORS headers, logged
with its traceback (never the body) and counted in `ursa_ingest_errors_total`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import msgspec
from litestar import asgi
from litestar.enums import ScopeType
from litestar.exceptions import MethodNotAllowedException
from litestar.handlers import ASGIRouteHandler
from litestar.types import HTTPScope, Receive, Scope, Send

from app.analytics.ingest.client_ip import request_client_ip
from app.analytics.ingest.limits import MAX_BODY_BYTES, MAX_USER_AGENT_CHARS
from app.analytics.ingest.payload import InvalidEvent, parse_event
from app.analytics.ingest.pipeline import Drop, Ingest
from app.errors import Unavailable
from app.observability.logging import get_logger
from app.observability.metrics import INGEST_ERRORS
from app.observability.requests import LEAN
from app.services import Services

PATH = "/api/event"
ACCEPTED_TYPES = ("text/plain", "application/json")

RawHeaders = tuple[tuple[bytes, bytes], ...]

CORS_HEADERS: RawHeaders = (
    (b"access-control-allow-origin", b"*"),
    (b"cache-control", b"no-store"),
    (b"x-content-type-options", b"nosniff"),
)
_NO_CONTENT: RawHeaders = (
    *CORS_HEADERS,
    (b"content-type", b"text/plain; charset=utf-8"),
    (b"content-length", b"0"),
)
# The request headers the endpoint reads itself, the first of repeated ones (ASGI servers send
# names in lower case); `request_client_ip` reads every X-Forwarded-For line.
_READ_HEADERS = frozenset((b"content-type", b"user-agent"))

log = get_logger("app.ingest")


@dataclass(frozen=True, slots=True)
class Answer:
    """A whole response: status, headers and body, sent as the two ASGI messages."""

    status: int
    headers: RawHeaders
    body: bytes = b""

    async def send(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status, "headers": self.headers})
        await send({"type": "http.response.body", "body": self.body, "more_body": False})


def _json(status: int, content: dict[str, str], *headers: tuple[bytes, bytes]) -> Answer:
    body = msgspec.json.encode(content)
    return Answer(
        status,
        (
            *CORS_HEADERS,
            *headers,
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ),
        body,
    )


def _error(status: int, field: str, message: str) -> Answer:
    return _json(status, {"error": f"{field} {message}", "field": field})


ACCEPTED = Answer(202, _NO_CONTENT)
DROPPED = {
    reason: Answer(202, (*_NO_CONTENT, (b"x-ursa-dropped", reason.value.encode())))
    for reason in Drop
}
# A fault of ours: not stored, so "not acknowledged" like a buffer outage (the only 5xx ingest
# answers is 503, which a sender may retry).
INTERNAL_ERROR = _json(
    503, {"error": "internal error, event not stored; retry later"}, (b"retry-after", b"1")
)
UNAVAILABLE = _json(503, {"error": "temporarily unavailable, retry later"}, (b"retry-after", b"1"))
PREFLIGHT = Answer(
    204,
    (
        *CORS_HEADERS,
        (b"access-control-allow-methods", b"POST, OPTIONS"),
        (b"access-control-allow-headers", b"Content-Type"),
        (b"access-control-max-age", b"86400"),
    ),
)


def route(services: Services) -> ASGIRouteHandler:
    """The `/api/event` handler of the app that uses `services`.

    The web process's hot path, so a raw ASGI handler rather than a `@post` route: Litestar's
    per-request machinery (a `Request`, dependency injection, a `Response` built from merged
    header dicts) cost about as much CPU as checking and buffering the event
    (docs/benchmarks.md). The answers that name no field are built once, at import. Other
    methods get Litestar's own 405 (the exception goes through the app's handlers).
    """

    @asgi(PATH, copy_scope=False, opt={LEAN: True})
    async def api_event(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP or scope["method"] not in ("POST", "OPTIONS"):
            raise MethodNotAllowedException
        if scope["method"] == "OPTIONS":
            await PREFLIGHT.send(send)
            return
        try:
            answer = await _ingest(services, scope, receive)
        except Exception:
            INGEST_ERRORS.inc()
            log.exception("ingest failed", route=PATH)  # with the traceback, never the body
            answer = INTERNAL_ERROR
        if answer is not None:  # None: the client went away before its body arrived
            await answer.send(send)

    return api_event


async def _ingest(services: Services, scope: HTTPScope, receive: Receive) -> Answer | None:
    headers: dict[bytes, str] = {}
    for name, value in scope["headers"]:
        if name in _READ_HEADERS and name not in headers:
            headers[name] = value.decode("latin-1")  # as Litestar decodes header values
    media_type = headers.get(b"content-type", "").split(";", 1)[0].strip().lower()
    if media_type and media_type not in ACCEPTED_TYPES:
        return _error(415, "content-type", "must be text/plain or application/json")
    user_agent = headers.get(b"user-agent", "")
    if not user_agent.strip():
        return _error(400, "user-agent", "header is required")
    if len(user_agent) > MAX_USER_AGENT_CHARS:
        return _error(400, "user-agent", f"must be at most {MAX_USER_AGENT_CHARS} characters")
    body = await _read_body(receive)
    if body is None:
        return None
    try:
        event = parse_event(body)
    except InvalidEvent as exc:
        return _error(exc.status, exc.field, exc.message)
    trusted = services.settings.trusted_networks
    ingest = Ingest(
        event=event,
        user_agent=user_agent,
        ip=request_client_ip(scope.get("client"), scope["headers"], trusted),
        received=dt.datetime.now(dt.UTC),
    )
    try:
        dropped = await services.pipeline.run(ingest)
    except Unavailable:
        return UNAVAILABLE
    return ACCEPTED if dropped is None else DROPPED[dropped]


async def _read_body(receive: Receive) -> bytes | None:
    """The body, read no further than one chunk past `MAX_BODY_BYTES` (for `parse_event` to
    reject with a 413); None if the client disconnected first."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        size += len(chunks[-1])
        if size > MAX_BODY_BYTES or not message.get("more_body", False):
            return b"".join(chunks)
