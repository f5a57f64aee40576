"""Request logs and Prometheus metrics: what a request logs, what `/metrics` shows and where."""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import dramatiq
import httpx
import pytest
from dramatiq.brokers.stub import StubBroker
from dramatiq.errors import ActorNotFound
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from app.analytics.ingest.pipeline import Drop, Ingest
from app.analytics.ingest.sites import SiteDirectory
from app.observability.logging import configure_logging
from app.server.gauges import RedisCollector
from app.server.internal_app import create_internal_app
from app.server.metrics_server import MetricsServer
from app.services import Services
from app.store.keys import DRAMATIQ as DRAMATIQ_NAMESPACE
from app.tasks.actors import flush_buffer
from app.tasks.registry import job_queues
from app.tasks.watchdog import Watchdog
from tests.conftest import PEER_IP, free_port
from tests.integration.account_helpers import anonymous, sign_up
from tests.integration.helpers import post_event
from tests.integration.jobs import run_jobs

BOT_UA = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


@pytest.fixture
def log_lines(capsys: pytest.CaptureFixture[str]) -> Iterator[Any]:
    """Logs as a service process writes them (JSON on stdout); call it for the lines so far."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    configure_logging("INFO", "stdout", force=True)

    def read() -> list[dict[str, Any]]:
        out = capsys.readouterr().out
        return [json.loads(line) for line in out.splitlines() if line.startswith("{")]

    yield read
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
async def internal(services: Services) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_internal_app(services))  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://internal") as http:
        yield http


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def scrape(internal: httpx.AsyncClient) -> dict[tuple[str, tuple[str, ...]], float]:
    """`/metrics` of the internal app as {(sample name, label values): value}."""
    response = await internal.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {
        (s.name, tuple(s.labels.values())): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def requests_lines(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [line for line in lines if line.get("event") == "request"]


async def test_one_line_per_request_with_the_route_template_and_no_personal_data(client, log_lines):
    slug = secrets.token_urlsafe(16)
    response = await client.get(
        f"/share/{slug}",
        params={"auth": "query-secret", "email": "ada@example.com"},
        headers={
            "Cookie": "session=cookie-secret",
            "X-Forwarded-For": "203.0.113.9",
            "X-Request-ID": "req-42",
        },
    )
    assert response.headers["x-request-id"] == "req-42"

    (line,) = requests_lines(log_lines())
    assert {k: line[k] for k in ("request_id", "method", "route", "status", "level")} == {
        "request_id": "req-42",
        "method": "GET",
        "route": "/share/{slug}",
        "status": response.status_code,
        "level": "info",
    }
    assert isinstance(line["duration_ms"], float)
    text = json.dumps(line)
    for secret in (slug, "query-secret", "ada@example.com", "cookie-secret", "203.0.113.9"):
        assert secret not in text
    assert PEER_IP not in text


async def test_unmatched_paths_and_generated_request_ids(client, log_lines):
    response = await client.get("/no/such/page", headers={"X-Request-ID": "bad id <x>"})
    assert response.status_code == 404
    generated = response.headers["x-request-id"]
    assert len(generated) == 32
    (line,) = requests_lines(log_lines())
    assert (line["route"], line["status"], line["request_id"]) == ("unmatched", 404, generated)


async def test_request_lines_go_through_standard_logging_even_unconfigured(client, caplog):
    caplog.set_level(logging.INFO, logger="app.requests")
    await client.get("/healthz")
    (record,) = [r for r in caplog.records if r.name == "app.requests"]
    assert isinstance(record.msg, dict)
    assert (record.msg["event"], record.msg["route"]) == ("request", "/healthz")


async def test_http_requests_are_counted_by_route_template_and_status_class(client):
    labels = {"method": "GET", "route": "/healthz", "status": "2xx"}
    before = sample("ursa_http_request_duration_seconds_count", **labels)
    assert (await client.get("/healthz")).status_code == 200
    assert sample("ursa_http_request_duration_seconds_count", **labels) == before + 1

    odd = {"method": "other", "route": "unmatched", "status": "4xx"}  # 405 before routing
    before = sample("ursa_http_request_duration_seconds_count", **odd)
    assert (await client.request("BREW", "/healthz")).status_code == 405
    assert sample("ursa_http_request_duration_seconds_count", **odd) == before + 1


async def test_metrics_are_served_on_the_internal_app_only(client, owner_client, internal):
    anonymous = await client.get("/metrics")  # `/{domain}`, a dashboard: log in first
    assert anonymous.status_code == 302
    assert anonymous.headers["location"].startswith("/login")
    assert (await owner_client.get("/metrics")).status_code == 404  # no site named "metrics"
    metrics = await scrape(internal)
    assert metrics[("ursa_redis_scrape_success", ())] == 1
    assert ("ursa_buffer_stream_length", ()) in metrics
    assert all(("ursa_dead_letters", (queue,)) in metrics for queue in job_queues())


async def test_ingest_is_counted_but_not_logged(client, services, site_domain, internal, log_lines):
    services.flusher.drain()  # an empty buffer (other tests' events written before counting)
    received = sample("ursa_events_received_total")
    buffered = sample("ursa_events_buffered_total")
    written = sample("ursa_events_written_total", table="events")
    ingest = {"method": "POST", "route": "/api/event", "status": "2xx"}
    timed = sample("ursa_http_request_duration_seconds_count", **ingest)

    event = {"n": "pageview", "u": f"https://{site_domain}/", "d": site_domain}
    assert (await post_event(client, event)).status_code == 202
    assert sample("ursa_events_received_total") == received + 1
    assert sample("ursa_events_buffered_total") == buffered + 1
    assert sample("ursa_http_request_duration_seconds_count", **ingest) == timed + 1
    assert requests_lines(log_lines()) == []

    await asyncio.sleep(0.3)
    waiting = await scrape(internal)
    assert waiting[("ursa_buffer_stream_length", ())] >= 1
    assert waiting[("ursa_buffer_oldest_pending_age_seconds", ())] >= 0.25

    batches = sample("ursa_flush_batch_duration_seconds_count")
    services.flusher.drain()
    assert sample("ursa_events_written_total", table="events") == written + 1
    assert sample("ursa_flush_batch_duration_seconds_count") == batches + 1
    flushed = await scrape(internal)
    assert flushed[("ursa_buffer_oldest_pending_age_seconds", ())] == 0


async def test_drops_are_counted_by_reason(client, site_domain):
    bots = sample("ursa_events_dropped_total", reason="bot")
    unknown = sample("ursa_events_dropped_total", reason="unknown_site")
    event = {"n": "pageview", "u": f"https://{site_domain}/", "d": site_domain}
    response = await post_event(client, event, user_agent=BOT_UA)
    assert response.headers["x-ursa-dropped"] == "bot"
    assert sample("ursa_events_dropped_total", reason="bot") == bots + 1
    assert sample("ursa_events_dropped_total", reason="unknown_site") == unknown


async def test_a_fault_in_the_ingest_path_is_a_503_logged_with_its_traceback_and_counted(
    client, services, site_domain, log_lines
):
    """A server bug, not bad input: JSON with the CORS headers, a traceback but no body."""

    def broken_step(ingest: Ingest) -> Drop | None:
        raise RuntimeError("the visitor step broke")

    steps = services.pipeline.steps
    steps[steps.index(services.pipeline.hash_visitor)] = broken_step
    marker = secrets.token_hex(8)
    event = {"n": "pageview", "u": f"https://{site_domain}/{marker}", "d": site_domain}
    errors = sample("ursa_ingest_errors_total")
    before = await services.redis.xlen(services.settings.BUFFER_STREAM)

    response = await post_event(client, {**event, "p": {"note": marker}})
    assert response.status_code == 503
    assert response.json() == {"error": "internal error, event not stored; retry later"}
    assert response.headers["retry-after"] == "1"
    assert response.headers["access-control-allow-origin"] == "*"
    assert response.headers["cache-control"] == "no-store"
    assert sample("ursa_ingest_errors_total") == errors + 1
    assert await services.redis.xlen(services.settings.BUFFER_STREAM) == before

    (line,) = [line for line in log_lines() if line.get("event") == "ingest failed"]
    assert (line["level"], line["logger"], line["route"]) == ("error", "app.ingest", "/api/event")
    assert "RuntimeError: the visitor step broke" in line["exception"]
    assert "in broken_step" in line["exception"]
    assert marker not in json.dumps(line)


async def test_dead_letters_are_read_from_dramatiqs_redis_keys(services, internal):
    queue = job_queues()[0]
    key = f"{DRAMATIQ_NAMESPACE}:{queue}.XQ"
    members = {f"test-{secrets.token_hex(4)}": time.time() for _ in range(2)}
    before = (await scrape(internal))[("ursa_dead_letters", (queue,))]
    services.sync_redis.zadd(key, members)
    try:
        after = (await scrape(internal))[("ursa_dead_letters", (queue,))]
    finally:
        services.sync_redis.zrem(key, *members)
    assert after == before + 2


def test_an_unreachable_redis_fails_the_scrape_quickly():
    collector = RedisCollector("redis://127.0.0.1:9/0", "ursa:events", ["default"])
    started = time.monotonic()
    families = list(collector.collect())
    collector.close()
    assert time.monotonic() - started < 3
    assert [(f.name, [s.value for s in f.samples]) for f in families] == [
        ("ursa_redis_scrape_success", [0])
    ]


@dramatiq.actor(queue_name="test-observability", max_retries=0)
def failing_job() -> None:
    raise RuntimeError("this job always fails")


async def test_jobs_are_counted_and_timed_by_actor(services):
    name = flush_buffer.actor_name
    succeeded = sample("ursa_jobs_total", actor=name, outcome="succeeded")
    timed = sample("ursa_job_duration_seconds_count", actor=name)
    failed = sample("ursa_jobs_total", actor=failing_job.actor_name, outcome="failed")

    flush_buffer.send()
    run_jobs(services)
    assert sample("ursa_jobs_total", actor=name, outcome="succeeded") == succeeded + 1
    assert sample("ursa_job_duration_seconds_count", actor=name) == timed + 1

    failing_job.send()
    with pytest.raises(RuntimeError, match="always fails"):
        run_jobs(services)
    assert sample("ursa_jobs_total", actor=failing_job.actor_name, outcome="failed") == failed + 1


async def test_the_site_cache_counts_hits_and_misses(services, site_domain):
    hits = sample("ursa_cache_requests_total", cache="sites", result="hit")
    misses = sample("ursa_cache_requests_total", cache="sites", result="miss")
    directory = SiteDirectory(services.sessions, ttl_seconds=60)
    first, second = await directory.lookup(site_domain), await directory.lookup(site_domain)
    assert first == second is not None
    assert sample("ursa_cache_requests_total", cache="sites", result="miss") == misses + 1
    assert sample("ursa_cache_requests_total", cache="sites", result="hit") == hits + 1


async def test_the_site_cache_evicts_the_least_recently_used_domain(
    services, site_domain, monkeypatch
):
    monkeypatch.setattr(SiteDirectory, "MAX_ENTRIES", 2)
    directory = SiteDirectory(services.sessions, ttl_seconds=60)
    await directory.lookup(site_domain)
    await directory.lookup("unknown-1.example")
    await directory.lookup(site_domain)  # used again: now the most recent
    await directory.lookup("unknown-2.example")  # evicts unknown-1, not the site
    hits = sample("ursa_cache_requests_total", cache="sites", result="hit")
    misses = sample("ursa_cache_requests_total", cache="sites", result="miss")
    assert await directory.lookup(site_domain) is not None
    assert await directory.lookup("unknown-1.example") is None
    assert sample("ursa_cache_requests_total", cache="sites", result="hit") == hits + 1
    assert sample("ursa_cache_requests_total", cache="sites", result="miss") == misses + 1


def test_a_worker_process_serves_its_metrics_on_its_own_port(settings):
    port = free_port()
    health = Watchdog({}, grace_seconds=60)
    server = MetricsServer(settings.REDIS_URL, settings.BUFFER_STREAM, "127.0.0.1", port, health)
    try:
        response = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    finally:
        server.close()
    assert response.status_code == 200
    assert "ursa_redis_scrape_success 1.0" in response.text
    assert "# TYPE ursa_jobs_total counter" in response.text


async def test_an_unhandled_error_is_a_plain_500_with_its_traceback_in_the_log(services, caplog):
    caplog.set_level(logging.ERROR, logger="app.main")
    declared = dramatiq.get_broker()
    dramatiq.set_broker(StubBroker())  # a broker without the actors: signing up cannot enqueue
    try:
        async with anonymous(services) as http:
            email = f"u-{secrets.token_hex(4)}@example.com"
            response = await sign_up(http, email, "correct horse battery staple")
    finally:
        dramatiq.set_broker(declared)
    assert response.status_code == 500
    assert "ActorNotFound" not in response.text  # nothing of it reaches the client
    (record,) = [r for r in caplog.records if r.name == "app.main"]
    assert record.getMessage() == "unhandled error on /signup"
    assert record.exc_info is not None
    assert record.exc_info[0] is ActorNotFound
