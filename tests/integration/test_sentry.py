"""Errors reach Sentry (a loopback HTTP server acting as the DSN host) without secrets or PII."""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator, Iterator
from typing import Any

import dramatiq
import httpx
import pytest
import sentry_sdk
from dramatiq.brokers.stub import StubBroker
from pydantic import SecretStr

from app.main import create_app
from app.observability.sentry import EMAIL_MASK, scrub, setup_sentry
from app.services import Services
from app.settings import Settings
from tests.conftest import PEER_IP
from tests.integration.otlp_receiver import HttpSink
from tests.integration.test_tracing import process_queue

pytestmark = pytest.mark.db

RELEASE = "v-sentry-test"
ENVELOPE_PATH = "/api/1/envelope/"


@pytest.fixture
def sentry_host() -> Iterator[HttpSink]:
    with HttpSink().running() as sink:
        yield sink


@pytest.fixture
def sentry_settings(settings: Settings, sentry_host: HttpSink, tmp_path) -> Iterator[Settings]:
    """Sentry started for this test; the app database is an empty file, so queries fail."""
    configured = settings.model_copy(
        update={
            "SENTRY_DSN": SecretStr(f"http://public@127.0.0.1:{sentry_host.port}/1"),
            "RELEASE": RELEASE,
            "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'unmigrated.db'}",
        }
    )
    assert setup_sentry(configured)
    yield configured
    sentry_sdk.get_client().close()
    sentry_sdk.get_global_scope().set_client(None)  # later apps in this process get no Sentry


@pytest.fixture
async def failing_client(sentry_settings: Settings, clickhouse) -> AsyncIterator[httpx.AsyncClient]:
    services = Services(sentry_settings, gateway=clickhouse)
    app = create_app(sentry_settings, services)  # after setup_sentry: its middleware is in
    transport = httpx.ASGITransport(app=app, client=(PEER_IP, 40000))  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as http:
        yield http
    await services.aclose()


def envelope_items(body: bytes) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """The (item header, payload) pairs of a Sentry envelope (JSON payloads only)."""
    lines = body.split(b"\n")
    items = []
    index = 1  # line 0 is the envelope header
    while index + 1 < len(lines):
        header = json.loads(lines[index])
        items.append((header, json.loads(lines[index + 1])))
        index += 2
    return items


def received_events(sink: HttpSink) -> list[dict[str, Any]]:
    return [
        payload
        for body in sink.bodies(ENVELOPE_PATH)
        for header, payload in envelope_items(body)
        if header.get("type") == "event"
    ]


async def test_error_reaches_sentry_without_token_cookie_or_signature(failing_client, sentry_host):
    token = secrets.token_urlsafe(24)
    cookie = f"__Host-session={secrets.token_urlsafe(16)}"
    signature = f"t=1,v1={secrets.token_hex(16)}"
    headers = {
        "Cookie": cookie,
        "Authorization": "Bearer a-bearer-secret",
        "Stripe-Signature": signature,
        "X-Forwarded-For": "203.0.113.9",
    }
    answer = await failing_client.get(f"/password/reset/{token}", headers=headers)
    assert answer.status_code == 500
    assert sentry_sdk.flush(timeout=10) is None

    [event] = received_events(sentry_host)
    raised = event["exception"]["values"][-1]  # the chain, the exception raised last
    assert raised["type"] == "OperationalError"
    assert raised["module"] == "sqlalchemy.exc"
    assert event["release"] == RELEASE
    assert {"litestar", "redis", "sqlalchemy", "dramatiq"} <= set(event["sdk"]["integrations"])
    assert event["request"]["url"] == "https://testserver/password/reset/[redacted]"
    sent_headers = {name.lower() for name in event["request"]["headers"]}
    assert not sent_headers & {"cookie", "authorization", "stripe-signature", "x-forwarded-for"}
    assert "cookies" not in event["request"]
    assert "user" not in event

    raw = b"".join(sentry_host.bodies(ENVELOPE_PATH)).decode()
    for secret in (token, cookie.split("=", 1)[1], "a-bearer-secret", signature, PEER_IP):
        assert secret not in raw


def test_failed_job_reaches_sentry_without_its_arguments(sentry_settings, sentry_host):
    broker = StubBroker()  # made after Sentry started: its Dramatiq middleware is in
    secret_link = f"https://ursa.example/password/reset/{secrets.token_urlsafe(24)}"

    @dramatiq.actor(broker=broker, max_retries=0)
    def deliver(to: str, link: str) -> None:
        raise ConnectionRefusedError("the SMTP server refused the connection")

    deliver.send("ada@example.com", secret_link)
    process_queue(broker, deliver.queue_name)
    sentry_sdk.flush(timeout=10)

    [event] = received_events(sentry_host)
    assert event["exception"]["values"][-1]["type"] == "ConnectionRefusedError"
    assert "data" not in event["contexts"].get("dramatiq", {})  # the message, arguments and all
    raw = b"".join(sentry_host.bodies(ENVELOPE_PATH)).decode()
    assert "ada@example.com" not in raw
    assert secret_link.rsplit("/", 1)[1] not in raw


def test_scrub_masks_tokens_and_emails_everywhere():
    event: Any = {
        "message": "no user ada@example.com for /invitations/abc123?x=1",
        "breadcrumbs": {"values": [{"data": {"url": "https://host/share/s3cr3t/cards"}}]},
        "request": {
            "headers": {"Cookie": "a=b", "stripe-signature": "t=1", "Accept": "text/html"},
            "cookies": {"a": "b"},
            "data": {"email": "ada@example.com"},
        },
        "user": {"ip_address": "203.0.113.9"},
    }
    assert scrub(event) == {
        "message": f"no user {EMAIL_MASK} for /invitations/[redacted]?x=1",
        "breadcrumbs": {"values": [{"data": {"url": "https://host/share/[redacted]/cards"}}]},
        "request": {"headers": {"Accept": "text/html"}},
    }
