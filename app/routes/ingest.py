"""`POST /api/event`: Plausible-compatible ingestion. Always credential-free and CORS-open.

202 accepted (also when dropped on purpose, with `x-ursa-dropped`), 400 malformed, 413 too
large, 415 wrong content type, 503 buffer unavailable (the only status worth a retry).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from litestar import Request, Response, post, route
from litestar.di import NamedDependency
from litestar.exceptions.http_exceptions import RequestEntityTooLarge

from app.analytics.client_ip import client_ip
from app.analytics.limits import MAX_BODY_BYTES, MAX_USER_AGENT_CHARS
from app.analytics.payload import InvalidEvent, parse_event
from app.analytics.pipeline import Ingest
from app.errors import Unavailable
from app.services import Services

CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
}
PREFLIGHT_HEADERS = {
    **CORS_HEADERS,
    "Access-Control-Allow-Methods": "POST, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type",
    "Access-Control-Max-Age": "86400",
}
ACCEPTED_TYPES = ("text/plain", "application/json")


def _answer(status: int, content: dict[str, str] | None = None, **headers: str) -> Response[object]:
    if content is None:
        return Response(
            b"", status_code=status, media_type="text/plain", headers={**CORS_HEADERS, **headers}
        )
    return Response(content=content, status_code=status, headers={**CORS_HEADERS, **headers})


def _error(status: int, field: str, message: str) -> Response[object]:
    return _answer(status, {"error": f"{field} {message}", "field": field})


@post("/api/event", request_max_body_size=MAX_BODY_BYTES, status_code=202)
async def ingest_event(
    request: Request[Any, Any, Any], services: NamedDependency[Services]
) -> Response[object]:
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type and media_type not in ACCEPTED_TYPES:
        return _error(415, "content-type", "must be text/plain or application/json")
    user_agent = request.headers.get("user-agent", "")
    if not user_agent.strip():
        return _error(400, "user-agent", "header is required")
    if len(user_agent) > MAX_USER_AGENT_CHARS:
        return _error(400, "user-agent", f"must be at most {MAX_USER_AGENT_CHARS} characters")
    try:
        event = parse_event(await request.body())
    except RequestEntityTooLarge:
        return _error(413, "body", f"must be at most {MAX_BODY_BYTES} bytes")
    except InvalidEvent as exc:
        return _error(exc.status, exc.field, exc.message)
    peer = request.client.host if request.client else None
    ingest = Ingest(
        event=event,
        user_agent=user_agent,
        ip=client_ip(
            peer, request.headers.get("x-forwarded-for"), services.settings.trusted_networks
        ),
        received=dt.datetime.now(dt.UTC),
    )
    try:
        dropped = await services.pipeline.run(ingest)
    except Unavailable:
        return _answer(
            503, {"error": "temporarily unavailable, retry later"}, **{"Retry-After": "1"}
        )
    if dropped is not None:
        return _answer(202, None, **{"x-ursa-dropped": dropped.value})
    return _answer(202)


@route("/api/event", http_method=["OPTIONS"], status_code=204)
async def ingest_preflight() -> Response[None]:
    return Response(content=None, status_code=204, headers=PREFLIGHT_HEADERS)
