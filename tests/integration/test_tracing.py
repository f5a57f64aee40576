"""Tracing on the real app, Redis, SQLite/Postgres, chDB and Dramatiq's stub broker.

The process's tracer provider is the one `setup_telemetry` installs (it can be set once per
process), exporting over OTLP/HTTP to a loopback receiver; an in-memory exporter added to it
serves the checks that do not need the wire. Sampling is 100 % here and tested on its own.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import dramatiq
import httpx
import pytest
from dramatiq.brokers.stub import StubBroker
from litestar import Litestar
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags

from app.analytics.clickhouse.gateway import ClickHouse, aquery
from app.analytics.clickhouse.traced import TracedGateway
from app.main import create_app
from app.observability.tracing import (
    INGEST_SHARE,
    TraceContextMiddleware,
    TracingMiddleware,
    build_tracer_provider,
    setup_telemetry,
    trace_requests,
)
from app.services import Services
from app.settings import Settings
from app.tasks.actors import send_email
from tests.conftest import PEER_IP, csrf_token, new_user, random_peer
from tests.integration.helpers import post_event
from tests.integration.jobs import run_jobs
from tests.integration.otlp_receiver import OtlpReceiver, ReceivedSpan

pytestmark = pytest.mark.db

SERVICE = "ursa-test"
RELEASE = "v-test-1"


@dataclass(frozen=True)
class Tracing:
    settings: Settings  # OTLP export to `receiver`, every request sampled
    provider: TracerProvider
    memory: InMemorySpanExporter
    receiver: OtlpReceiver

    def finished(self) -> list[ReadableSpan]:
        return list(self.memory.get_finished_spans())


@pytest.fixture(scope="session")
def tracing(settings: Settings) -> Iterator[Tracing]:
    with OtlpReceiver().running() as receiver:
        configured = settings.model_copy(
            update={
                "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
                "OTEL_TRACES_SAMPLER_ARG": 1.0,
                "RELEASE": RELEASE,
            }
        )
        telemetry = setup_telemetry(configured, SERVICE)
        assert telemetry is not None
        provider = telemetry.tracer_provider
        assert trace.get_tracer_provider() is provider, "another tracer provider was set first"
        memory = InMemorySpanExporter()
        provider.add_span_processor(SimpleSpanProcessor(memory))
        yield Tracing(configured, provider, memory, receiver)
        provider.force_flush()
        telemetry.metrics.close()  # its last export while the receiver listens


@pytest.fixture
def spans(tracing: Tracing) -> Tracing:
    tracing.memory.clear()
    return tracing


@pytest.fixture
def traced_jobs() -> Iterator[TraceContextMiddleware]:
    """The test broker with the trace-carrying middleware, for this test only."""
    broker = send_email.broker
    middleware = TraceContextMiddleware()
    broker.add_middleware(middleware)
    yield middleware
    broker.middleware.remove(middleware)


@asynccontextmanager
async def traced_client(
    services: Services, peer: str, configured: Settings
) -> AsyncIterator[httpx.AsyncClient]:
    """An https client of the public app, its requests traced as `configured` says."""
    async with client_of(
        trace_requests(create_app(services.settings, services), configured), peer
    ) as http:
        yield http


@asynccontextmanager
async def client_of(app: Litestar, peer: str) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=(peer, 40000))  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as http:
        yield http


def named(spans: list[ReadableSpan], name: str) -> ReadableSpan:
    found = [span for span in spans if span.name == name]
    assert len(found) == 1, f"{name!r} in {[span.name for span in spans]}"
    return found[0]


def attribute_text(spans: list[ReadableSpan] | list[ReceivedSpan]) -> str:
    return repr([(span.name, dict(span.attributes or {})) for span in spans])


async def test_request_span_is_named_by_route_with_redacted_path(spans, services):
    token = secrets.token_urlsafe(24)
    async with traced_client(services, PEER_IP, spans.settings) as http:
        page = await http.get(f"/password/reset/{token}")
    assert page.status_code == 400

    finished = spans.finished()
    request = named(finished, "GET /password/reset/{token}")
    assert request.kind is SpanKind.SERVER
    assert request.parent is None
    assert dict(request.attributes or {}) == {
        "http.route": "/password/reset/{token}",
        "http.request.method": "GET",
        "url.scheme": "https",
        "url.path": "/password/reset/[redacted]",
        "http.response.status_code": 400,
    }
    queries = [span for span in finished if span.name.startswith("db ")]
    assert queries, "no app-database span"
    for query in queries:
        assert query.parent is not None
        assert query.parent.span_id == request.context.span_id
        assert query.attributes is not None
        assert query.attributes["db.system.name"] in ("sqlite", "postgresql")
    assert token not in attribute_text(finished)


async def test_unrouted_request_span_is_named_by_method(spans, services):
    async with traced_client(services, PEER_IP, spans.settings) as http:
        missing = await http.get("/no/such/page")
    assert missing.status_code == 404
    [request] = spans.finished()
    assert request.name == "GET"
    assert request.attributes is not None
    assert request.attributes["http.response.status_code"] == 404
    assert "http.route" not in request.attributes


async def test_ingest_spans_name_redis_commands_and_hold_no_ip(spans, services, site_domain):
    app = create_app(services.settings, services)
    app.asgi_handler = TracingMiddleware(app.asgi_handler, 1.0)  # ingest not leaner: always
    async with client_of(app, PEER_IP) as http:
        body = {"n": "pageview", "u": f"https://{site_domain}/", "d": site_domain}
        accepted = await post_event(http, body)
    assert accepted.status_code == 202

    finished = spans.finished()
    request = named(finished, "POST /api/event")
    redis_spans = [span for span in finished if span.name.startswith("redis ")]
    assert redis_spans, "no Redis span"
    for span in redis_spans:
        assert span.kind is SpanKind.CLIENT
        assert span.context.trace_id == request.context.trace_id
        assert span.attributes is not None
        assert span.attributes["db.system.name"] == "redis"
    text = attribute_text(finished)
    assert PEER_IP not in text
    assert site_domain not in text  # no Redis keys, no payload


async def test_client_spans_only_under_a_recording_span(spans, services):
    await services.redis.ping()
    async with services.sessions() as session:
        await session.connection()
    assert spans.finished() == []

    tracer = spans.provider.get_tracer("test")
    with tracer.start_as_current_span("parent") as parent:
        key = f"test:secret-key-{secrets.token_hex(4)}"
        await services.redis.set(key, "value", ex=5)
        async with services.redis.pipeline(transaction=False) as pipeline:
            await pipeline.get(key).ttl(key).execute()
    finished = spans.finished()
    named(finished, "redis SET")
    pipeline_span = named(finished, "redis PIPELINE")
    assert pipeline_span.attributes is not None
    assert pipeline_span.attributes["db.operation.batch.size"] == 2
    for span in finished:
        if span.name != "parent":
            assert span.parent is not None
            assert span.parent.span_id == parent.get_span_context().span_id
    assert "secret-key" not in attribute_text(finished)


async def test_clickhouse_spans_carry_the_query_name(spans, clickhouse: ClickHouse):
    gateway = TracedGateway(clickhouse)
    tracer = spans.provider.get_tracer("test")
    with tracer.start_as_current_span("parent"):
        rows = await aquery(gateway, "one_plus_one", "SELECT 1 + 1 AS two")
        with pytest.raises(Exception, match="broken_query"):
            gateway.query("broken_query", "SELECT no_such_column")
    assert rows == [{"two": 2}]

    finished = spans.finished()
    parent = named(finished, "parent")
    good = named(finished, "clickhouse.query one_plus_one")
    bad = named(finished, "clickhouse.query broken_query")
    for span in (good, bad):
        assert span.parent is not None
        assert span.parent.span_id == parent.context.span_id  # across the worker thread too
        assert span.attributes is not None
        assert span.attributes["db.system.name"] == "clickhouse"
    assert bad.attributes is not None
    assert bad.attributes["error.type"] == "ClickHouseError"
    assert not bad.status.is_ok


async def test_job_span_continues_the_request_trace_over_otlp(
    spans, services, traced_jobs: TraceContextMiddleware
):
    user = await new_user(services)
    peer = random_peer()
    async with traced_client(services, peer, spans.settings) as http:
        form = {"email": user.email, "csrf_token": await csrf_token(http, "/password/forgot")}
        asked = await http.post("/password/forgot", data=form)
    assert asked.status_code == 303
    run_jobs(services)
    assert spans.provider.force_flush()

    received = spans.receiver.spans()
    request = _one(received, "POST /password/forgot")
    job = _one(received, "dramatiq send_password_reset")
    assert job.span.trace_id == request.span.trace_id
    assert job.span.parent_span_id == request.span.span_id
    assert job.span.kind == job.span.SPAN_KIND_CONSUMER
    assert job.attributes["messaging.system"] == "dramatiq"
    assert request.resource["service.name"] == SERVICE
    assert request.resource["service.version"] == RELEASE

    this_trace = [span for span in received if span.span.trace_id == request.span.trace_id]
    text = attribute_text(this_trace)
    for secret in (user.email, peer, "csrf_token", form["csrf_token"]):
        assert secret not in text


def _one(received: list[ReceivedSpan], name: str) -> ReceivedSpan:
    found = [span for span in received if span.name == name]
    assert found, f"{name!r} not exported; got {sorted({span.name for span in received})}"
    return found[-1]


async def test_requests_are_sampled_at_the_configured_ratio(spans, services):
    default = spans.settings.model_copy(update={"OTEL_TRACES_SAMPLER_ARG": 0.1})
    async with traced_client(services, PEER_IP, default) as http:
        for _ in range(1000):
            assert (await http.get("/healthz")).status_code == 200
    sampled = [span for span in spans.finished() if span.name == "GET /healthz"]
    assert 40 <= len(sampled) <= 160  # 10 % of 1000, give or take 6 standard deviations


async def test_ingest_is_sampled_at_its_share_of_the_ratio(spans, services, site_domain):
    body = {"n": "pageview", "u": f"https://{site_domain}/", "d": site_domain}
    async with traced_client(services, PEER_IP, spans.settings) as http:  # ratio 100 %
        for _ in range(1000):
            assert (await post_event(http, body)).status_code == 202
    finished = spans.finished()
    requests = {span.context.trace_id for span in finished if span.name == "POST /api/event"}
    assert 40 <= len(requests) <= 160  # INGEST_SHARE (10 %) of 1000, give or take 6 sigma
    assert INGEST_SHARE == 0.1
    assert {span.context.trace_id for span in finished} == requests  # no orphan Redis spans


def test_new_traces_are_sampled_at_the_ratio_and_children_follow_the_parent(settings):
    provider = build_tracer_provider(settings, SERVICE)  # OTEL_TRACES_SAMPLER_ARG default 0.1
    tracer = provider.get_tracer("test")
    roots = [tracer.start_span("root") for _ in range(2000)]
    sampled = sum(span.get_span_context().trace_flags.sampled for span in roots)
    assert 80 <= sampled <= 320  # 10 % of 2000, give or take 7 standard deviations

    def child_of(flags: TraceFlags) -> bool:
        parent = SpanContext(random_trace_id(), 0x1234, is_remote=True, trace_flags=flags)
        context = trace.set_span_in_context(NonRecordingSpan(parent))
        return tracer.start_span("child", context=context).get_span_context().trace_flags.sampled

    assert all(child_of(TraceFlags(TraceFlags.SAMPLED)) for _ in range(50)), "sampled: all"
    assert not any(child_of(TraceFlags(TraceFlags.DEFAULT)) for _ in range(50)), "not: none"


def random_trace_id() -> int:
    return secrets.randbits(128) or 1


async def test_unsampled_request_records_nothing_and_its_jobs_follow(
    spans, services, traced_jobs: TraceContextMiddleware
):
    never = spans.settings.model_copy(update={"OTEL_TRACES_SAMPLER_ARG": 0.0})
    user = await new_user(services)
    async with traced_client(services, random_peer(), never) as http:
        form = {"email": user.email, "csrf_token": await csrf_token(http, "/password/forgot")}
        asked = await http.post("/password/forgot", data=form)
    assert asked.status_code == 303
    run_jobs(services)
    assert spans.finished() == []  # no request span, no child spans, no job span


def process_queue(broker: StubBroker, queue_name: str) -> None:
    """Run a worker on `broker` until `queue_name` is empty (failed jobs included)."""
    worker = dramatiq.Worker(broker, worker_threads=1, worker_timeout=50)
    worker.start()
    try:
        broker.join(queue_name, fail_fast=False)
        worker.join()
    finally:
        worker.stop()


def test_failed_job_span_is_a_root_marked_with_the_error_type(spans):
    broker = StubBroker()
    broker.add_middleware(TraceContextMiddleware())

    @dramatiq.actor(broker=broker, max_retries=0)
    def fails_with_a_secret() -> None:
        raise ValueError("ada@example.com")

    fails_with_a_secret.send()  # outside any span: no context travels
    process_queue(broker, fails_with_a_secret.queue_name)

    [job] = spans.finished()
    assert job.name == "dramatiq fails_with_a_secret"
    assert job.parent is None
    assert job.attributes is not None
    assert job.attributes["error.type"] == "ValueError"
    assert not job.status.is_ok
    assert "ada@example.com" not in attribute_text([job]) + str(job.status.description)


def test_tracing_off_leaves_the_app_untouched(settings):
    assert not settings.OTEL_EXPORTER_OTLP_ENDPOINT
    app = create_app(settings)
    handler = app.asgi_handler
    assert trace_requests(app, settings).asgi_handler is handler
