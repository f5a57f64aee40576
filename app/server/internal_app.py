"""The internal app, on its own loopback port (`METRICS_PORT`): machine endpoints for CLI
commands and the Prometheus `/metrics` of this process.

Never routed by the public app. Every call but `/healthz` and `/metrics` needs the instance's
`INTERNAL_TOKEN` (the metrics hold counts and timings only).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from decimal import Decimal
from typing import Any, TypeVar

import anyio.to_thread
import msgspec
from litestar import Litestar, Request, Response, get, post
from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.exceptions import ClientException, NotAuthorizedException
from litestar.handlers.base import BaseRouteHandler
from prometheus_client import generate_latest

from app.analytics.clickhouse.gateway import ClickHouseError
from app.observability.metrics import process_registry
from app.server.gauges import redis_gauges
from app.services import Services

T = TypeVar("T")
DECIMAL_COLUMNS = frozenset({"revenue"})
MAX_INSERT_BYTES = 256 * 1024 * 1024
METRICS_MEDIA_TYPE = "text/plain; version=0.0.4"  # Prometheus text format (charset added)


class QueryCall(msgspec.Struct):
    name: str
    sql: str
    params: dict[str, Any] = {}


class InsertCall(msgspec.Struct):
    table: str
    columns: list[str]
    data: list[list[Any]]
    token: str | None = None


class CommandCall(msgspec.Struct):
    sql: str
    params: dict[str, Any] = {}


def create_internal_app(services: Services) -> Litestar:
    settings = services.settings
    collector = redis_gauges(settings)
    return Litestar(
        route_handlers=[internal_health, metrics, run_query, run_insert, run_command],
        dependencies={"services": Provide(lambda: services, use_cache=True, sync_to_thread=False)},
        state=State(
            {"internal_token": settings.INTERNAL_TOKEN, "metrics": process_registry(collector)}
        ),
        on_shutdown=[collector.close],
        openapi_config=None,
        logging_config=None,
    )


def require_token(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    expected: str = connection.app.state.internal_token
    given = connection.headers.get("authorization", "").removeprefix("Bearer ")
    if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
        raise NotAuthorizedException("a valid internal token is required")


def _packed(value: Any, status: int = 200) -> Response[bytes]:
    return Response(
        msgspec.msgpack.encode(value), status_code=status, media_type="application/msgpack"
    )


@get("/healthz")
async def internal_health() -> dict[str, str]:
    return {"status": "ok"}


@get("/metrics", media_type=METRICS_MEDIA_TYPE)
async def metrics(state: State) -> bytes:
    """Prometheus text exposition (rendered in a thread: it reads Redis, with a timeout)."""
    return await anyio.to_thread.run_sync(generate_latest, state.metrics)


async def _decode(request: Request[Any, Any, Any], kind: type[T]) -> T:
    try:
        return msgspec.msgpack.decode(await request.body(), type=kind)
    except msgspec.DecodeError as exc:
        raise ClientException(f"malformed call: {exc}") from None


async def _through_gateway(call: Callable[..., Any], *args: Any) -> Response[bytes]:
    """Run a blocking gateway call in a thread; ClickHouse failures answer 502."""
    try:
        return _packed(await anyio.to_thread.run_sync(call, *args))
    except ClickHouseError as exc:
        return _packed(str(exc), 502)


@post("/internal/clickhouse/query", guards=[require_token])
async def run_query(
    request: Request[Any, Any, Any], services: NamedDependency[Services]
) -> Response[bytes]:
    call = await _decode(request, QueryCall)
    return await _through_gateway(services.clickhouse.query, call.name, call.sql, call.params)


@post(
    "/internal/clickhouse/insert",
    guards=[require_token],
    request_max_body_size=MAX_INSERT_BYTES,
)
async def run_insert(
    request: Request[Any, Any, Any], services: NamedDependency[Services]
) -> Response[bytes]:
    call = await _decode(request, InsertCall)
    data = [
        [Decimal(value) for value in column] if name in DECIMAL_COLUMNS else column
        for name, column in zip(call.columns, call.data, strict=True)
    ]
    return await _through_gateway(
        services.clickhouse.insert, call.table, call.columns, data, call.token
    )


@post("/internal/clickhouse/command", guards=[require_token])
async def run_command(
    request: Request[Any, Any, Any], services: NamedDependency[Services]
) -> Response[bytes]:
    call = await _decode(request, CommandCall)
    return await _through_gateway(services.clickhouse.command, call.sql, call.params)
