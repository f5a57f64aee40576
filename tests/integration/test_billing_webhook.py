"""`POST /billing/webhook`: payloads signed exactly as Stripe signs them; signature, replay,
duplicate and out-of-order cases; what each event type changes on the billing profile."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlmodel import col, select

from app.analytics.ingest.sites import SiteRef
from app.models import BillingProfile, Membership, Role, StripeEvent, User
from app.services import Services
from app.sites.registry import get_site, register_site
from tests.conftest import make_client, new_user
from tests.integration.billing_helpers import event, signature_header
from tests.integration.jobs import emails_to, link_in, run_jobs, text_of
from tests.integration.org_helpers import own_organization

pytestmark = pytest.mark.db
PATH = "/billing/webhook"
T0 = int(time.time()) - 3600  # event creation times: Stripe's clock, not the delivery's


@pytest.fixture
async def stripe_client(billing_services: Services) -> AsyncIterator[httpx.AsyncClient]:
    async with make_client(billing_services, scheme="https") as http:
        yield http


@pytest.fixture
async def customer(billing_services: Services) -> tuple[int, str]:
    """(organization id, Stripe customer id) of a new organization that went to Checkout."""
    org_id = await own_organization(billing_services, await new_user(billing_services))
    customer_id = f"cus_{secrets.token_hex(8)}"
    async with billing_services.sessions() as session:
        profile = await _profile_in(session, org_id)
        profile.stripe_customer_id = customer_id
        session.add(profile)
        await session.commit()
    return org_id, customer_id


async def _profile_in(session: Any, org_id: int) -> BillingProfile:
    query = select(BillingProfile).where(BillingProfile.organization_id == org_id)
    profile: BillingProfile = (await session.exec(query)).one()
    return profile


async def _profile(services: Services, org_id: int) -> BillingProfile:
    async with services.sessions() as session:
        return await _profile_in(session, org_id)


async def _send(http: httpx.AsyncClient, body: bytes, signature: str | None = "") -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["Stripe-Signature"] = signature or signature_header(body)
    return await http.post(PATH, content=body, headers=headers)


async def _fields(services: Services, org_id: int, *names: str) -> tuple[Any, ...]:
    profile = await _profile(services, org_id)
    return tuple(getattr(profile, name) for name in names)


async def _outcome(http: httpx.AsyncClient, body: bytes) -> str:
    answer = await _send(http, body)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["outcome"])


def subscription(
    customer_id: str,
    *,
    price: str = "price_premium_monthly",
    status: str = "active",
    sub_id: str = "sub_1",
    cancel: bool = False,
    start: int = T0,
) -> dict[str, Any]:
    """A subscription object of API version 2025-03-31 and later (the period on its items)."""
    item = {
        "id": "si_1",
        "object": "subscription_item",
        "price": {"id": price, "object": "price", "recurring": {"interval": "month"}},
        "quantity": 1,
        "current_period_start": start,
        "current_period_end": start + 30 * 86400,
    }
    return {
        "id": sub_id,
        "object": "subscription",
        "customer": customer_id,
        "status": status,
        "cancel_at_period_end": cancel,
        "items": {"object": "list", "data": [item]},
        "metadata": {},
    }


def invoice(customer_id: str) -> dict[str, Any]:
    return {"id": f"in_{secrets.token_hex(6)}", "object": "invoice", "customer": customer_id}


def moment(seconds: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, dt.UTC)


async def test_a_subscription_from_checkout_to_cancellation(
    billing_services, stripe_client, customer, caplog
):
    org_id, cus = customer
    completed = {
        "id": "cs_test_1",
        "object": "checkout.session",
        "mode": "subscription",
        "customer": cus,
        "subscription": "sub_1",
        "client_reference_id": str(org_id),
    }
    assert (
        await _outcome(stripe_client, event("checkout.session.completed", completed, T0))
        == "applied"
    )
    assert (await _profile(billing_services, org_id)).stripe_subscription_id == "sub_1"
    assert (await _profile(billing_services, org_id)).plan_code == "free"  # the plan comes next

    with caplog.at_level(logging.INFO, logger="app.billing.webhook"):
        created = event("customer.subscription.created", subscription(cus), T0 + 1)
        assert await _outcome(stripe_client, created) == "applied"
    changes = [r.getMessage() for r in caplog.records if "plan changed" in r.getMessage()]
    assert len(changes) == 1
    assert str(org_id) in changes[0]
    assert await _fields(
        billing_services,
        org_id,
        "plan_code",
        "subscription_status",
        "current_period_start",
        "current_period_end",
        "cancel_at_period_end",
        "last_subscription_event_at",
    ) == ("premium", "active", moment(T0), moment(T0 + 30 * 86400), False, moment(T0 + 1))

    failed = event("invoice.payment_failed", invoice(cus), T0 + 10)
    assert await _outcome(stripe_client, failed) == "applied"
    assert (await _profile(billing_services, org_id)).payment_failed_at == moment(T0 + 10)
    past_due = subscription(cus, status="past_due")
    assert (
        await _outcome(stripe_client, event("customer.subscription.updated", past_due, T0 + 11))
        == "applied"
    )
    assert (await _profile(billing_services, org_id)).plan_code == "premium"  # still paying
    paid = event("invoice.paid", invoice(cus), T0 + 20)
    assert await _outcome(stripe_client, paid) == "applied"
    assert (await _profile(billing_services, org_id)).payment_failed_at is None

    downgrade = subscription(cus, price="price_basic_yearly", cancel=True)
    assert (
        await _outcome(stripe_client, event("customer.subscription.updated", downgrade, T0 + 30))
        == "applied"
    )
    profile = await _profile(billing_services, org_id)
    assert (profile.plan_code, profile.cancel_at_period_end) == ("basic", True)

    ended = subscription(cus, price="price_basic_yearly", status="canceled")
    assert (
        await _outcome(stripe_client, event("customer.subscription.deleted", ended, T0 + 40))
        == "applied"
    )
    ended_fields = ("plan_code", "subscription_status", "stripe_subscription_id")
    assert await _fields(billing_services, org_id, *ended_fields, "current_period_end") == (
        "free",
        "canceled",
        None,
        None,
    )
    assert (await _profile(billing_services, org_id)).stripe_customer_id == cus


async def test_a_cancelled_organization_keeps_its_sites(billing_services, stripe_client, customer):
    org_id, cus = customer
    domain = f"kept-{secrets.token_hex(6)}.example"
    await register_site(billing_services.sessions, domain, "UTC", org_id)
    await _outcome(stripe_client, event("customer.subscription.created", subscription(cus), T0))
    deleted = subscription(cus, status="canceled")
    assert (
        await _outcome(stripe_client, event("customer.subscription.deleted", deleted, T0 + 5))
        == "applied"
    )
    assert (await get_site(billing_services.sessions, domain)).organization_id == org_id


async def test_each_event_is_applied_once(billing_services, stripe_client, customer):
    org_id, cus = customer
    created = event("customer.subscription.created", subscription(cus), T0, event_id="evt_created")
    assert await _outcome(stripe_client, created) == "applied"
    basic = subscription(cus, price="price_basic_monthly")
    assert (
        await _outcome(stripe_client, event("customer.subscription.updated", basic, T0 + 5))
        == "applied"
    )
    # Stripe's redelivery, or a replay inside the tolerance: the signature passes, nothing changes.
    assert await _outcome(stripe_client, created) == "duplicate"
    assert (await _profile(billing_services, org_id)).plan_code == "basic"
    async with billing_services.sessions() as session:
        stored = await session.get(StripeEvent, "evt_created")
    assert stored is not None
    assert stored.type == "customer.subscription.created"


async def test_an_older_event_never_overwrites_a_newer_state(
    billing_services, stripe_client, customer
):
    org_id, cus = customer
    newer = event(
        "customer.subscription.updated", subscription(cus, price="price_basic_monthly"), T0 + 100
    )
    older = event("customer.subscription.created", subscription(cus), T0)
    assert await _outcome(stripe_client, newer) == "applied"
    assert await _outcome(stripe_client, older) == "stale"
    profile = await _profile(billing_services, org_id)
    assert (profile.plan_code, profile.last_subscription_event_at) == ("basic", moment(T0 + 100))
    # The same second: the later delivery is applied (Stripe's clock has no finer grain).
    tie = event("customer.subscription.updated", subscription(cus, cancel=True), T0 + 100)
    assert await _outcome(stripe_client, tie) == "applied"
    assert (await _profile(billing_services, org_id)).cancel_at_period_end is True

    paid = event("invoice.paid", invoice(cus), T0 + 200)
    late_failure = event("invoice.payment_failed", invoice(cus), T0 + 150)
    assert await _outcome(stripe_client, paid) == "applied"
    assert await _outcome(stripe_client, late_failure) == "stale"
    assert (await _profile(billing_services, org_id)).payment_failed_at is None


async def test_the_end_of_an_older_subscription_leaves_the_current_one(
    billing_services, stripe_client, customer
):
    org_id, cus = customer
    await _outcome(
        stripe_client,
        event("customer.subscription.created", subscription(cus, sub_id="sub_new"), T0),
    )
    old = subscription(cus, sub_id="sub_old", status="canceled")
    assert (
        await _outcome(stripe_client, event("customer.subscription.deleted", old, T0 + 5))
        == "ignored"
    )
    profile = await _profile(billing_services, org_id)
    assert (profile.plan_code, profile.stripe_subscription_id) == ("premium", "sub_new")


@pytest.mark.parametrize(
    ("status", "plan"),
    [("trialing", "premium"), ("incomplete", "free"), ("unpaid", "free"), ("paused", "free")],
)
async def test_only_a_paying_status_gives_the_plan(
    billing_services, stripe_client, customer, status, plan
):
    org_id, cus = customer
    body = event("customer.subscription.updated", subscription(cus, status=status), T0)
    assert await _outcome(stripe_client, body) == "applied"
    profile = await _profile(billing_services, org_id)
    assert (profile.plan_code, profile.subscription_status) == (plan, status)


async def test_a_checkout_of_an_unstored_customer_is_found_by_its_organization(
    billing_services, stripe_client
):
    org_id = await own_organization(billing_services, await new_user(billing_services))
    completed = {
        "id": "cs_test_2",
        "object": "checkout.session",
        "mode": "subscription",
        "customer": "cus_new",
        "subscription": "sub_2",
        "client_reference_id": str(org_id),
    }
    assert (
        await _outcome(stripe_client, event("checkout.session.completed", completed, T0))
        == "applied"
    )
    profile = await _profile(billing_services, org_id)
    assert (profile.stripe_customer_id, profile.stripe_subscription_id) == ("cus_new", "sub_2")


async def test_events_of_no_organization_of_ours_or_of_other_types_are_ignored(
    billing_services, stripe_client, customer
):
    stranger = event("customer.subscription.created", subscription("cus_unknown"), T0)
    assert await _outcome(stripe_client, stranger) == "ignored"
    other_type = event("charge.refunded", {"id": "ch_1", "customer": customer[1]}, T0)
    assert await _outcome(stripe_client, other_type) == "ignored"


def _bad_signatures(body: bytes) -> dict[str, str | None]:
    now = int(time.time())
    return {
        "missing": None,
        "empty": " ",
        "garbage": "not a signature",
        "other secret": signature_header(body, secret="whsec_someone_else"),
        "stale": signature_header(body, at=now - 301),
        "no v1": signature_header(body).replace("v1=", "v0="),
        "other body": signature_header(body + b" "),
    }


async def test_a_missing_bad_or_stale_signature_is_400_and_changes_nothing(
    billing_services, stripe_client, customer
):
    org_id, cus = customer
    before = await _profile(billing_services, org_id)
    body = event("customer.subscription.created", subscription(cus), T0, event_id="evt_unsigned")
    for name, signature in _bad_signatures(body).items():
        answer = await _send(stripe_client, body, signature)
        assert answer.status_code == 400, name
        assert answer.json() == {
            "error": "the Stripe-Signature header is missing, wrong or too old"
        }
    assert await _profile(billing_services, org_id) == before
    async with billing_services.sessions() as session:
        assert await session.get(StripeEvent, "evt_unsigned") is None
    # Inside the tolerance, the same body goes through (the clock of the signature, not of the
    # event, is what is checked).
    recent = signature_header(body, at=int(time.time()) - 290)
    assert (await _send(stripe_client, body, recent)).status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"id": "evt_1"}',
        b'{"id": "evt_1", "type": "x", "created": "soon", "data": {}}',
        b"\xff\xfe",
    ],
)
async def test_a_signed_body_that_is_no_event_is_400(stripe_client, body):
    answer = await _send(stripe_client, body)
    assert answer.status_code == 400
    assert answer.json() == {"error": "the body is not a Stripe event"}


async def test_without_a_webhook_secret_every_webhook_is_refused(services, customer):
    body = event("customer.subscription.created", subscription(customer[1]), T0)
    async with make_client(services, scheme="https") as http:  # STRIPE_WEBHOOK_SECRET unset
        answer = await _send(http, body)
    assert answer.status_code == 400
    assert (await _profile(services, customer[0])).plan_code == "free"


async def test_the_webhook_needs_no_session_and_sets_no_cookie(stripe_client, customer):
    body = event("invoice.paid", invoice(customer[1]), T0)
    answer = await _send(stripe_client, body)
    assert answer.status_code == 200  # no CSRF token, no login
    assert "set-cookie" not in answer.headers
    assert answer.json()["received"] == body.decode().split('"id": "')[1].split('"')[0]


async def test_concurrent_deliveries_apply_once_and_in_order(
    billing_services, stripe_client, customer
):
    org_id, cus = customer
    twice = event("customer.subscription.created", subscription(cus), T0, event_id="evt_twice")
    outcomes = await asyncio.gather(_outcome(stripe_client, twice), _outcome(stripe_client, twice))
    assert sorted(outcomes) == ["applied", "duplicate"]

    newer = event(
        "customer.subscription.updated", subscription(cus, price="price_basic_monthly"), T0 + 50
    )
    older = event("customer.subscription.updated", subscription(cus, cancel=True), T0 + 40)
    outcomes = await asyncio.gather(_outcome(stripe_client, older), _outcome(stripe_client, newer))
    assert set(outcomes) <= {"applied", "stale"}
    assert await _fields(
        billing_services, org_id, "plan_code", "cancel_at_period_end", "last_subscription_event_at"
    ) == ("basic", False, moment(T0 + 50))


async def test_an_upgrade_restores_collection_at_once(billing_services, stripe_client, customer):
    """An organization whose events were refused collects again from the next event on: the
    capacity rule restarts and the ingest path's cached answer is dropped."""
    org_id, cus = customer
    site = SiteRef(1, "upgraded.example", organization_id=org_id)
    async with billing_services.sessions() as session:
        profile = await _profile_in(session, org_id)
        profile.dropping_since = profile.grace_ends_at = moment(T0)
        session.add(profile)
        await session.commit()
    assert await billing_services.capacity.has_enough_capacity(site) is False
    body = event("customer.subscription.created", subscription(cus), T0)
    assert await _outcome(stripe_client, body) == "applied"
    assert billing_services.capacity.cached(site) is None  # forgotten here and in Redis
    assert await billing_services.capacity.has_enough_capacity(site) is True
    assert await _fields(billing_services, org_id, "plan_code", "dropping_since") == (
        "premium",
        None,
    )


async def test_a_failed_payment_emails_the_owners_once(billing_services, stripe_client, customer):
    org_id, cus = customer
    owners = (
        select(User.email)
        .join(Membership, col(Membership.user_id) == col(User.id))
        .where(Membership.organization_id == org_id, Membership.role == Role.OWNER)
    )
    async with billing_services.sessions() as session:
        [owner] = (await session.exec(owners)).all()
    failed = event("invoice.payment_failed", invoice(cus), T0 + 10)
    assert await _outcome(stripe_client, failed) == "applied"
    assert await _outcome(stripe_client, failed) == "duplicate"  # Stripe delivered it twice
    paid = event("invoice.paid", invoice(cus), T0 + 20)
    assert await _outcome(stripe_client, paid) == "applied"  # no email for a payment
    run_jobs(billing_services)
    [email] = emails_to(billing_services, owner)
    assert str(email["Subject"]).startswith("The payment for ")
    assert str(email["Subject"]).endswith(" failed")
    assert link_in(email, "/orgs/") == f"/orgs/{org_id}/billing"
    assert "Manage billing" in text_of(email)
