"""Client spans for Redis, the app database and ClickHouse (see `app.observability.tracing`).

A client span is only ever a child: it starts when the current span is recording (a sampled
request or job) and costs one check otherwise, so background loops such as the flusher's
polling never start traces of their own. Spans name the command, the statement kind or the
named query; they never hold Redis keys (session keys carry secrets) or bound values.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import redis
import redis.asyncio
import redis.asyncio.client
import redis.client
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.util.types import AttributeValue
from sqlalchemy import event
from sqlalchemy.engine import Engine

T = TypeVar("T")
Attributes = Mapping[str, AttributeValue]

MAX_STATEMENT_CHARS = 2000
_SPAN_KEY = "_ursa_span"  # where a statement's span waits on SQLAlchemy's execution context
tracer = trace.get_tracer("ursa")  # the global provider's, once `setup_telemetry` has set it
_instrumented: set[str] = set()


def _child_span(name: str, attributes: Attributes) -> Span | None:
    """A CLIENT span under the current span, or None when that one is not recording."""
    if not trace.get_current_span().is_recording():
        return None
    return tracer.start_span(name, kind=SpanKind.CLIENT, attributes=attributes)


def mark_failed(span: Span, exc: BaseException) -> None:
    """Record a failure by its type: messages may quote URLs, keys, statements or addresses."""
    span.set_attribute("error.type", type(exc).__qualname__)
    span.set_status(Status(StatusCode.ERROR, type(exc).__qualname__))


def _end(span: Span, exc: BaseException | None = None) -> None:
    if exc is not None:
        mark_failed(span, exc)
    span.end()


@contextmanager
def client_span(name: str, attributes: Attributes) -> Iterator[None]:
    """Run the block inside a child CLIENT span `name` (if the current span is recording)."""
    span = _child_span(name, attributes)
    if span is None:
        yield
        return
    with trace.use_span(span, record_exception=False, set_status_on_exception=False):
        try:
            yield
        except BaseException as exc:
            _end(span, exc)
            raise
    _end(span)


# --- Redis ------------------------------------------------------------------------------------


Describe = Callable[[Any, Sequence[Any]], tuple[str, Attributes]]


def _redis_command(client: Any, args: Sequence[Any]) -> tuple[str, Attributes]:
    name = (args[0].decode() if isinstance(args[0], bytes) else str(args[0])).upper()
    return f"redis {name}", {"db.system.name": "redis", "db.operation.name": name}


def _redis_pipeline(pipeline: Any, args: Sequence[Any]) -> tuple[str, Attributes]:
    return "redis PIPELINE", {
        "db.system.name": "redis",
        "db.operation.name": "PIPELINE",
        "db.operation.batch.size": len(pipeline.command_stack),
    }


def _traced(method: Callable[..., T], describe: Describe) -> Callable[..., T]:
    @functools.wraps(method)
    def traced(self: Any, *args: Any, **kwargs: Any) -> T:
        with client_span(*describe(self, args)):
            return method(self, *args, **kwargs)

    return traced


def _traced_async(
    method: Callable[..., Awaitable[T]], describe: Describe
) -> Callable[..., Awaitable[T]]:
    @functools.wraps(method)
    async def traced(self: Any, *args: Any, **kwargs: Any) -> T:
        with client_span(*describe(self, args)):
            return await method(self, *args, **kwargs)

    return traced


def instrument_redis() -> None:
    """Span every Redis command and pipeline of redis-py's sync and asyncio clients (once)."""
    if "redis" in _instrumented:
        return
    _instrumented.add("redis")
    redis.Redis.execute_command = _traced(redis.Redis.execute_command, _redis_command)  # type: ignore[method-assign]
    redis.client.Pipeline.execute = _traced(redis.client.Pipeline.execute, _redis_pipeline)  # type: ignore[method-assign]
    redis.asyncio.Redis.execute_command = _traced_async(  # type: ignore[method-assign,assignment]
        redis.asyncio.Redis.execute_command, _redis_command
    )
    redis.asyncio.client.Pipeline.execute = _traced_async(  # type: ignore[method-assign,assignment]
        redis.asyncio.client.Pipeline.execute, _redis_pipeline
    )


# --- the app database (SQLAlchemy) --------------------------------------------------------------


def instrument_sqlalchemy() -> None:
    """Span every statement of every SQLAlchemy engine, async ones included (once)."""
    if "sqlalchemy" in _instrumented:
        return
    _instrumented.add("sqlalchemy")
    event.listen(Engine, "before_cursor_execute", _before_statement)
    event.listen(Engine, "after_cursor_execute", _after_statement)
    event.listen(Engine, "handle_error", _statement_failed)


def _before_statement(
    conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
) -> None:
    operation = statement.lstrip().split(None, 1)[0].upper() if statement.strip() else "SQL"
    span = _child_span(
        f"db {operation}",
        {
            "db.system.name": conn.dialect.name,
            "db.operation.name": operation,
            # Bound values travel apart from the statement, so the text holds no user data.
            "db.query.text": statement[:MAX_STATEMENT_CHARS],
        },
    )
    if span is not None and context is not None:
        setattr(context, _SPAN_KEY, span)


def _after_statement(
    conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
) -> None:
    span = getattr(context, _SPAN_KEY, None)
    if span is not None:
        delattr(context, _SPAN_KEY)
        _end(span)


def _statement_failed(exception_context: Any) -> None:
    context = exception_context.execution_context
    span = getattr(context, _SPAN_KEY, None)
    if span is not None:
        delattr(context, _SPAN_KEY)
        _end(span, exception_context.original_exception)
