"""The pricing page and an organization's billing page: Upgrade to Stripe Checkout, the
webhook's change seen on the page, Manage billing to the portal, and an installation without
Stripe."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import html5lib
import httpx
import pytest
from sqlmodel import select

from app.models import BillingProfile, Role, User
from app.models.columns import utcnow
from app.services import Services
from tests.conftest import csrf_token, join, logged_in, make_client, new_user
from tests.integration.billing_helpers import event, signature_header
from tests.integration.org_helpers import own_organization, set_plan

pytestmark = pytest.mark.db
HTML = {"Accept": "text/html"}


def _text(html: str) -> str:
    body = html5lib.parse(html, namespaceHTMLElements=False).find("body")
    assert body is not None
    return " ".join(" ".join(body.itertext()).split())


async def _post(http: httpx.AsyncClient, path: str, **form: str) -> httpx.Response:
    token = await csrf_token(http, "/orgs")
    return await http.post(path, data={**form, "csrf_token": token})


@pytest.fixture
async def billing_owner(
    billing_services: Services,
) -> AsyncIterator[tuple[httpx.AsyncClient, User, int]]:
    user = await new_user(billing_services)
    async with logged_in(billing_services, user) as http:
        yield http, user, await own_organization(billing_services, user)


async def test_pricing_lists_the_plans_monthly_or_yearly(client):
    monthly = await client.get("/pricing", headers=HTML)
    assert monthly.status_code == 200
    text = _text(monthly.text)
    for shown in (
        "Free €0 / month",
        "Basic €9 / month",
        "Premium €29 / month",
        "Enterprise Custom",
    ):
        assert shown in text
    assert "10,000 events a month 3 sites 3 team members 1 traffic alert 12 months of data" in text
    assert "Stats API (not included)" in text  # on Free and Basic
    yearly = _text((await client.get("/pricing?interval=year", headers=HTML)).text)
    assert "Basic €90 / year" in yearly
    assert "Premium €290 / year" in yearly
    bad = await client.get("/pricing?interval=week", headers=HTML)
    assert bad.status_code == 400
    assert "The billing interval is month or year." in bad.text


async def test_upgrade_checkout_webhook_and_portal(billing_services, fake_stripe, billing_owner):
    http, _, org_id = billing_owner
    page = await http.get(f"/orgs/{org_id}/billing", headers=HTML)
    assert page.status_code == 200
    assert f"form-action 'self' {fake_stripe.url};" in page.headers["content-security-policy"]
    text = _text(page.text)
    assert "Plan: Free" in text
    assert "Status No subscription" in text
    assert "Sites 0 of 3 Members and open invitations 1 of 3" in text
    assert "Upgrade to Basic" in text
    assert "Upgrade to Premium" in text
    assert "Manage billing" not in text  # no Stripe customer yet

    started = await _post(http, f"/orgs/{org_id}/billing/checkout", plan="basic", interval="year")
    assert started.status_code == 303
    assert started.headers["location"].startswith(f"{fake_stripe.url}/checkout/cs_test_")
    [request] = [
        r
        for r in fake_stripe.recorded("/v1/checkout/sessions")
        if r.form["client_reference_id"] == str(org_id)
    ]
    assert request.form["line_items[0][price]"] == "price_basic_yearly"
    customer = request.form["customer"]

    # Stripe confirms: the session is completed, the subscription created.
    now = int(time.time())
    period = {"current_period_start": now, "current_period_end": now + 365 * 86400}
    item = {"id": "si_1", "price": {"id": "price_basic_yearly"}, "quantity": 1, **period}
    subscription = {
        "id": "sub_page",
        "object": "subscription",
        "customer": customer,
        "status": "active",
        "cancel_at_period_end": False,
        "items": {"data": [item]},
    }
    completed = {"mode": "subscription", "customer": customer, "subscription": "sub_page"}
    for kind, data in (
        ("checkout.session.completed", completed),
        ("customer.subscription.created", subscription),
    ):
        body = event(kind, data, now)
        headers = {"Stripe-Signature": signature_header(body)}
        async with make_client(billing_services, scheme="https") as stripe:
            assert (
                await stripe.post("/billing/webhook", content=body, headers=headers)
            ).status_code == 200

    back = await http.get(f"/orgs/{org_id}/billing?checkout=success", headers=HTML)
    text = _text(back.text)
    assert "Thank you! Your subscription starts" in text
    assert "Plan: Basic" in text
    assert "Status Active" in text
    assert "Sites 0 of 10 Members and open invitations 1 of 5" in text
    assert "Renews automatically." in text
    assert "Upgrade to Premium" not in text  # plan changes go through the portal now
    assert "Manage billing" in text

    portal = await _post(http, f"/orgs/{org_id}/billing/portal")
    assert portal.status_code == 303
    assert portal.headers["location"].startswith(f"{fake_stripe.url}/portal/bps_")
    again = await _post(http, f"/orgs/{org_id}/billing/checkout", plan="premium", interval="month")
    assert again.status_code == 409  # a second subscription would charge twice


async def test_a_failed_payment_and_a_cancelled_checkout_are_said(billing_services, billing_owner):
    http, _, org_id = billing_owner
    cancelled = _text(
        (await http.get(f"/orgs/{org_id}/billing?checkout=cancelled", headers=HTML)).text
    )
    assert "Checkout was cancelled; nothing was charged." in cancelled
    await set_plan(billing_services, org_id, "premium")
    async with billing_services.sessions() as session:
        profile = (
            await session.exec(
                select(BillingProfile).where(BillingProfile.organization_id == org_id)
            )
        ).one()
        profile.payment_failed_at = utcnow()
        profile.subscription_status = "past_due"
        session.add(profile)
        await session.commit()
    text = _text((await http.get(f"/orgs/{org_id}/billing", headers=HTML)).text)
    assert "The last payment failed on" in text
    assert "Status Past due" in text


async def test_without_stripe_billing_is_not_configured(services, owner, owner_client):
    org_id = await own_organization(services, owner)
    page = await owner_client.get(f"/orgs/{org_id}/billing", headers=HTML)
    assert page.status_code == 200
    text = _text(page.text)
    assert "Billing is not configured" in text
    assert "Upgrade to" not in text
    refused = await _post(owner_client, f"/orgs/{org_id}/billing/checkout", plan="basic")
    assert refused.status_code == 409
    assert refused.json() == {"error": "Billing is not configured on this installation."}


async def test_only_owners_and_admins_see_billing(services, owner, site_domain):
    org_id = await own_organization(services, owner)
    admin, viewer = await new_user(services), await new_user(services)
    await join(services, admin, site_domain, Role.ADMIN)
    await join(services, viewer, site_domain, Role.VIEWER)
    link = f'<a href="/orgs/{org_id}/billing">Billing and plan</a>'
    async with logged_in(services, admin) as http:
        assert (await http.get(f"/orgs/{org_id}/billing")).status_code == 200
        assert link in (await http.get(f"/orgs/{org_id}")).text
    async with logged_in(services, viewer) as http:
        assert (await http.get(f"/orgs/{org_id}/billing")).status_code == 403
        assert link not in (await http.get(f"/orgs/{org_id}")).text
