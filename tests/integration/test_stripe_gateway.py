"""The Stripe gateway and checkout flows against the fake Stripe server: a customer per
organization created on first need, Checkout Sessions in subscription mode, portal sessions."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from sqlmodel import select

from app.billing.checkout import customer_of, portal_url, start_checkout
from app.billing.stripe_gateway import StripeGateway
from app.errors import Conflict, InvalidInput, NotFound, Unavailable
from app.models import BillingProfile
from app.services import Services
from tests.conftest import free_port, new_user
from tests.integration.billing_helpers import billing_settings
from tests.integration.org_helpers import own_organization

pytestmark = pytest.mark.db
KEY = "Bearer sk_test_" + "x" * 24


async def _org(services: Services) -> tuple[int, str]:
    user = await new_user(services)
    return await own_organization(services, user), user.email


async def _profile(services: Services, org_id: int) -> BillingProfile:
    async with services.sessions() as session:
        query = select(BillingProfile).where(BillingProfile.organization_id == org_id)
        return (await session.exec(query)).one()


def _stripe(services: Services) -> StripeGateway:
    assert services.stripe is not None
    return services.stripe


async def _checkout(services: Services, org_id: int, plan: str, interval: str, email: str) -> str:
    return await start_checkout(
        services.sessions, _stripe(services), services.settings, org_id, plan, interval, email
    )


async def _customer(fake_stripe, customer_id: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=fake_stripe.url, headers={"Authorization": KEY}) as http:
        answer = await http.get(f"/v1/customers/{customer_id}")
    assert answer.status_code == 200, answer.text
    customer: dict[str, Any] = answer.json()
    return customer


async def test_one_customer_per_organization_created_on_first_need(billing_services, fake_stripe):
    org_id, email = await _org(billing_services)
    assert (await _profile(billing_services, org_id)).stripe_customer_id is None
    gateway = _stripe(billing_services)
    first, second = await asyncio.gather(
        customer_of(billing_services.sessions, gateway, org_id, email),
        customer_of(billing_services.sessions, gateway, org_id, email),
    )
    assert first == second == (await _profile(billing_services, org_id)).stripe_customer_id
    assert await customer_of(billing_services.sessions, gateway, org_id, email) == first
    customer = await _customer(fake_stripe, first)
    assert (customer["email"], customer["metadata"]) == (email, {"organization_id": str(org_id)})


async def test_checkout_is_a_subscription_session_for_the_plans_price(
    billing_services, fake_stripe
):
    org_id, email = await _org(billing_services)
    url = await _checkout(billing_services, org_id, "premium", "year", email)
    [request] = [
        r
        for r in fake_stripe.recorded("/v1/checkout/sessions")
        if r.form["client_reference_id"] == str(org_id)
    ]
    assert url == f"{fake_stripe.url}/checkout/" + url.rsplit("/", 1)[1]
    billing = f"https://ursa.example/orgs/{org_id}/billing"
    assert request.authorization == KEY
    assert request.form == {
        "mode": "subscription",
        "customer": (await _profile(billing_services, org_id)).stripe_customer_id,
        "line_items[0][price]": "price_premium_yearly",
        "line_items[0][quantity]": "1",
        "success_url": f"{billing}?checkout=success",
        "cancel_url": f"{billing}?checkout=cancelled",
        "client_reference_id": str(org_id),
        "metadata[organization_id]": str(org_id),
        "subscription_data[metadata][organization_id]": str(org_id),
    }


@pytest.mark.parametrize(
    ("plan", "interval", "error", "message"),
    [
        ("free", "month", InvalidInput, "Choose one of the plans: basic, premium."),
        ("enterprise", "month", InvalidInput, "Choose one of the plans: basic, premium."),
        ("basic", "week", InvalidInput, "Choose monthly or yearly billing."),
    ],
)
async def test_checkout_refuses_what_is_not_on_sale(
    billing_services, plan, interval, error, message
):
    org_id, email = await _org(billing_services)
    with pytest.raises(error, match=message):
        await _checkout(billing_services, org_id, plan, interval, email)
    assert (await _profile(billing_services, org_id)).stripe_customer_id is None


async def test_a_plan_without_a_configured_price_is_not_on_sale(settings, clickhouse, fake_stripe):
    unpriced = billing_settings(settings, fake_stripe.url, STRIPE_PRICE_BASIC_YEARLY="")
    services = Services(unpriced, gateway=clickhouse)
    org_id, email = await _org(services)
    assert services.stripe is not None
    with pytest.raises(NotFound, match="The Basic plan is not on sale"):
        await start_checkout(
            services.sessions, services.stripe, unpriced, org_id, "basic", "year", email
        )
    await services.aclose()


async def test_a_paying_organization_changes_plan_in_the_portal(billing_services):
    org_id, email = await _org(billing_services)
    async with billing_services.sessions() as session:
        profile = await _profile(billing_services, org_id)
        profile.stripe_subscription_id, profile.subscription_status = "sub_1", "active"
        session.add(profile)
        await session.commit()
    with pytest.raises(Conflict, match="Manage billing"):
        await _checkout(billing_services, org_id, "basic", "month", email)


async def test_the_portal_session_returns_to_the_billing_page(billing_services, fake_stripe):
    org_id, email = await _org(billing_services)
    url = await portal_url(
        billing_services.sessions,
        _stripe(billing_services),
        billing_services.settings,
        org_id,
        email,
    )
    customer = (await _profile(billing_services, org_id)).stripe_customer_id
    [request] = [
        r
        for r in fake_stripe.recorded("/v1/billing_portal/sessions")
        if r.form["customer"] == customer
    ]
    assert request.form == {
        "customer": customer,
        "return_url": f"https://ursa.example/orgs/{org_id}/billing",
    }
    assert url.startswith(f"{fake_stripe.url}/portal/bps_")


async def test_stripe_unreachable_or_refusing_is_unavailable(billing_services, fake_stripe):
    down = StripeGateway("sk_test_" + "x" * 24, f"http://127.0.0.1:{free_port()}")
    with pytest.raises(Unavailable, match="Stripe could not be reached"):
        await down.create_customer(1, "Acme", "owner@example.com")
    await down.aclose()
    with pytest.raises(Unavailable):  # a customer Stripe does not know: its 404, answered 503
        await _stripe(billing_services).portal_url("cus_missing", "https://ursa.example/")
