"""Fixtures and helpers of the billing tests: the fake Stripe server, services that use it,
and webhook payloads signed exactly as Stripe signs them."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from app.analytics.clickhouse.gateway import ClickHouse
from app.services import Services
from app.settings import Settings
from tests.integration.fake_stripe import FakeStripe

WEBHOOK_SECRET = "whsec_" + "test" * 8
PRICES = {
    "STRIPE_PRICE_BASIC_MONTHLY": "price_basic_monthly",
    "STRIPE_PRICE_BASIC_YEARLY": "price_basic_yearly",
    "STRIPE_PRICE_PREMIUM_MONTHLY": "price_premium_monthly",
    "STRIPE_PRICE_PREMIUM_YEARLY": "price_premium_yearly",
}


@pytest.fixture(scope="session")
def fake_stripe() -> Iterator[FakeStripe]:
    server = FakeStripe()
    server.start()
    yield server
    server.stop()


def billing_settings(settings: Settings, api_base: str, **changes: Any) -> Settings:
    values = {
        **settings.model_dump(),
        "STRIPE_SECRET_KEY": "sk_test_" + "x" * 24,
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "STRIPE_API_BASE": api_base,
        "BASE_URL": "https://ursa.example",
        **PRICES,
        **changes,
    }
    return Settings(_env_file=None, **values)


@pytest.fixture
async def billing_services(
    settings: Settings, clickhouse: ClickHouse, fake_stripe: FakeStripe
) -> AsyncIterator[Services]:
    """`services` with Stripe configured against the fake server."""
    instance = Services(billing_settings(settings, fake_stripe.url), gateway=clickhouse)
    yield instance
    await instance.aclose()


def signature_header(body: bytes, secret: str = WEBHOOK_SECRET, at: int | None = None) -> str:
    """`Stripe-Signature` as Stripe writes it: t=<unix time>,v1=HMAC-SHA256(secret, "t.body")."""
    timestamp = int(time.time()) if at is None else at
    signed = f"{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def event(kind: str, data: dict[str, Any], created: int, event_id: str | None = None) -> bytes:
    """A webhook payload in the shape of Stripe's Event object."""
    body = {
        "id": event_id or f"evt_{secrets.token_hex(12)}",
        "object": "event",
        "api_version": "2025-11-17.clover",
        "created": created,
        "type": kind,
        "livemode": False,
        "pending_webhooks": 1,
        "data": {"object": data},
    }
    return json.dumps(body).encode()
