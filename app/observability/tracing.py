"""Tracing and metrics with OpenTelemetry (OTLP/HTTP export) and error reports to Sentry, all
optional.

`setup_telemetry` runs once per process; the rest is wired where the app and the broker are
made: `trace_requests` (a span per sampled request), `TraceContextMiddleware` (jobs continue
the trace that enqueued them), `app.analytics.clickhouse.traced` (query spans). Both exports
flush at exit. What spans hold and never hold: docs/operations.md ("Traces and errors").
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Mapping, Sequence
from contextvars import Token
from dataclasses import dataclass
from typing import Any

import dramatiq
from dramatiq.broker import Broker, MessageProxy
from litestar import Litestar
from litestar.enums import ScopeType
from litestar.types import ASGIApp, HTTPScope, Message, Receive, Scope, Send
from opentelemetry import context, propagate, trace
from opentelemetry.context import Context, create_key, set_value
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import (
    Decision,
    ParentBased,
    SamplingResult,
    TraceIdRatioBased,
)
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    Span,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceState,
)
from opentelemetry.util.types import Attributes
from prometheus_client.registry import Collector

from app.observability.client_spans import (
    instrument_redis,
    instrument_sqlalchemy,
    mark_failed,
    tracer,
)
from app.observability.metrics import process_registry
from app.observability.otlp import MetricsExport
from app.observability.redaction import redact
from app.observability.requests import lean_paths
from app.observability.sentry import setup_sentry
from app.settings import Settings

__all__ = [
    "RootSampler",
    "Telemetry",
    "TraceContextMiddleware",
    "TracingMiddleware",
    "build_tracer_provider",
    "export_metrics",
    "setup_telemetry",
    "trace_requests",
]

TRACE_CONTEXT_OPTION = "trace_context"  # the key of the W3C trace context in message.options
TRACES_PATH = "/v1/traces"
DRAWN = create_key("ursa.sampling-drawn")  # in a new trace's context: the starter sampled it
_DRAWN_CONTEXT = set_value(DRAWN, True, Context())
# Ingest requests are sampled at this share of the ratio: at the default 10 %, one in a hundred
# (dozens of traces a second at full load) keeps their tracing to a few per cent of their CPU.
INGEST_SHARE = 0.1
# This process among those of one service name (web replicas, the HTTP processes of `ursa
# serve`): without it, a backend merges their cumulative metrics into one series.
INSTANCE_ID = uuid.uuid4().hex


@dataclass(frozen=True)
class Telemetry:
    """What `setup_telemetry` started. Both export their last data at exit."""

    tracer_provider: TracerProvider
    metrics: MetricsExport


def setup_telemetry(settings: Settings, service_name: str, *gauges: Collector) -> Telemetry | None:
    """Start Sentry, tracing and the metrics export as configured; return the OpenTelemetry
    part, if an OTLP endpoint is set.

    Call once per process (`web`, `worker`, `scheduler`, `serve`), before the Litestar app and
    the broker are created: Sentry's integrations hook into both as they are built. `REDIS_URL`
    must be set (`serve` calls this once its embedded Redis runs): the export reads gauges there.
    `gauges` are collected into every export (the caller's Redis gauges). With an OTLP endpoint
    it installs the global tracer provider (`build_tracer_provider`), the client spans of
    `app.observability.client_spans` (Redis, the app database) and the periodic export of the
    process's Prometheus metrics (`app.observability.otlp`).
    """
    setup_sentry(settings)
    if not settings.OTEL_EXPORTER_OTLP_ENDPOINT:
        return None
    provider = build_tracer_provider(settings, service_name)
    trace.set_tracer_provider(provider)
    instrument_redis()
    instrument_sqlalchemy()
    return Telemetry(provider, export_metrics(settings, service_name, *gauges))


def _resource(settings: Settings, service_name: str) -> Resource:
    return Resource.create(
        {
            "service.name": service_name,
            "service.version": settings.RELEASE,
            "service.instance.id": INSTANCE_ID,
        }
    )


def build_tracer_provider(settings: Settings, service_name: str) -> TracerProvider:
    """A tracer provider: parent-based ratio sampling, OTLP/HTTP export when configured."""
    sampler = ParentBased(RootSampler(settings.OTEL_TRACES_SAMPLER_ARG))
    provider = TracerProvider(sampler=sampler, resource=_resource(settings, service_name))
    endpoint = settings.OTEL_EXPORTER_OTLP_ENDPOINT
    if endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(endpoint=endpoint.rstrip("/") + TRACES_PATH)
        provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def export_metrics(settings: Settings, service_name: str, *gauges: Collector) -> MetricsExport:
    """Push what this process's `/metrics` shows to the OTLP endpoint, every interval.

    `gauges` are the export's own collectors, as each `/metrics` has its own.
    """
    return MetricsExport(
        settings.OTEL_EXPORTER_OTLP_ENDPOINT,
        process_registry(*gauges),
        _resource(settings, service_name),
    )


def trace_requests(app: Litestar, settings: Settings) -> Litestar:
    """`app` with a span per sampled request when tracing is on (an OTLP endpoint is set).

    Otherwise `app` is returned as it is: tracing off costs the request path nothing. Ingest
    requests are sampled at `INGEST_SHARE` of the ratio (see `TracingMiddleware`).
    """
    if settings.OTEL_EXPORTER_OTLP_ENDPOINT:
        ratio = settings.OTEL_TRACES_SAMPLER_ARG
        app.asgi_handler = TracingMiddleware(
            app.asgi_handler, ratio, lean_paths=dict.fromkeys(lean_paths(app), ratio * INGEST_SHARE)
        )
    return app


class RootSampler(TraceIdRatioBased):
    """The ratio sampler for new traces, except those whose starter already drew them.

    `TracingMiddleware` draws each request itself (see there); the spans it then starts carry
    `DRAWN` in their context and are sampled here without a second draw.
    """

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        if parent_context is not None and parent_context.get(DRAWN):
            return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes, trace_state)
        return super().should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )


class TracingMiddleware:
    """ASGI middleware: a SERVER span per sampled HTTP request, current while it is handled.

    Every request starts a new trace (trace context sent by clients is ignored, so nobody
    outside can force sampling), sampled with probability `ratio`. The draw happens here, before
    the SDK is involved: an unsampled request gets a non-recording span with fresh ids, so that
    jobs it enqueues stay unsampled too, at a tenth of what the SDK takes to reach the same
    decision.

    `lean_paths` maps paths answered in a tenth of a millisecond, thousands of times a second
    (ingest), to their own ratio. A recorded request costs about as much CPU as such a request
    itself (the span, and its OTLP encoding and export), and one of these enqueues no job and
    logs no line, so an unsampled one runs with no trace context at all.

    A sampled request's span is named `METHOD route-template` once Litestar has routed it
    (`METHOD` alone for unrouted ones, such as 404s) and records `http.response.status_code`.
    """

    def __init__(
        self,
        app: ASGIApp,
        ratio: float,
        *,
        lean_paths: Mapping[str, float] | None = None,
    ) -> None:
        self.app = app
        self.ratio = ratio
        self.lean_paths = dict(lean_paths or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        lean_ratio = self.lean_paths.get(scope["path"])
        if random.random() < (self.ratio if lean_ratio is None else lean_ratio):
            await self._recorded(scope, receive, send)
        elif lean_ratio is not None:
            await self.app(scope, receive, send)
        else:
            unsampled = SpanContext(random.getrandbits(128), random.getrandbits(64), False)
            token = context.attach(trace.set_span_in_context(NonRecordingSpan(unsampled)))
            try:
                await self.app(scope, receive, send)
            finally:
                context.detach(token)

    async def _recorded(self, scope: HTTPScope, receive: Receive, send: Send) -> None:
        span = tracer.start_span(
            scope["method"],
            context=_DRAWN_CONTEXT,
            kind=SpanKind.SERVER,
            attributes={
                "http.request.method": scope["method"],
                "url.scheme": scope.get("scheme", "http"),
                "url.path": redact(scope["path"]),
            },
        )
        token = context.attach(trace.set_span_in_context(span))
        try:
            await self.app(scope, receive, _recording_send(scope, span, send))
        except BaseException as exc:
            mark_failed(span, exc)
            raise
        finally:
            context.detach(token)
            span.end()


def _recording_send(scope: HTTPScope, span: Span, send: Send) -> Send:
    """`send` that names `span` after the route and records the status at response start."""

    async def traced_send(message: Message) -> None:
        if message["type"] == "http.response.start":
            _describe_response(scope, span, message["status"])
        await send(message)

    return traced_send


def _describe_response(scope: HTTPScope, span: Span, status: int) -> None:
    template = scope.get("path_template")
    if template:
        span.update_name(f"{scope['method']} {template}")
        span.set_attribute("http.route", template)
    span.set_attribute("http.response.status_code", status)
    if status >= 500:
        span.set_status(Status(StatusCode.ERROR))


class TraceContextMiddleware(dramatiq.Middleware):
    """Carries the trace context from the code that enqueues a job into the job's own span.

    At enqueue, the current W3C context (if any) goes into `message.options`; in the worker,
    each message runs inside a CONSUMER span `dramatiq <actor>` that continues that trace (or
    starts a new one, sampled like a request). Retries reuse the options, hence the trace.
    """

    def __init__(self) -> None:
        super().__init__()
        self._active: dict[str, tuple[Span, Token[Context]]] = {}  # message id → span, token

    def before_enqueue(self, broker: Broker, message: dramatiq.Message[Any], delay: int) -> None:
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        if carrier:
            message.options[TRACE_CONTEXT_OPTION] = carrier

    def before_process_message(self, broker: Broker, message: MessageProxy) -> None:
        parent = propagate.extract(message.options.get(TRACE_CONTEXT_OPTION) or {})
        span = tracer.start_span(
            f"dramatiq {message.actor_name}",
            context=parent,
            kind=SpanKind.CONSUMER,
            attributes={
                "messaging.system": "dramatiq",
                "messaging.destination.name": message.queue_name,
                "messaging.message.id": message.message_id,
            },
        )
        token = context.attach(trace.set_span_in_context(span))
        self._active[message.message_id] = (span, token)

    def after_process_message(
        self,
        broker: Broker,
        message: MessageProxy,
        *,
        result: object = None,
        exception: BaseException | None = None,
    ) -> None:
        active = self._active.pop(message.message_id, None)
        if active is None:
            return
        span, token = active
        if exception is not None and span.is_recording():
            mark_failed(span, exception)
        context.detach(token)
        span.end()

    def after_skip_message(self, broker: Broker, message: MessageProxy) -> None:
        self.after_process_message(broker, message)
