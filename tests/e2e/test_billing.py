"""Upgrading in Chromium: the billing page sends the owner to (the local stand-in of) Stripe
Checkout, Stripe's signed webhooks follow, and the billing page shows the new plan and limits."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
from playwright.sync_api import BrowserContext, expect

from tests.e2e.support import UrsaInstance
from tests.integration.billing_helpers import event, signature_header
from tests.integration.fake_stripe import FakeStripe

DAY = 86_400


def _webhook(ursa: UrsaInstance, kind: str, data: dict[str, object]) -> None:
    body = event(kind, data, created=int(time.time()))
    answer = httpx.post(
        f"{ursa.url}/billing/webhook",
        content=body,
        headers={"Stripe-Signature": signature_header(body), "Content-Type": "application/json"},
    )
    assert answer.status_code == 200, answer.text


def test_upgrade_goes_to_checkout_and_the_webhooks_bring_the_new_plan(
    owner_context: BrowserContext, ursa: UrsaInstance, fake_stripe: FakeStripe, artifacts: Path
) -> None:
    page = owner_context.new_page()
    page.goto(f"{ursa.url}/orgs")
    organization = page.locator("table a[href^='/orgs/']").first.get_attribute("href")
    billing = f"{ursa.url}{organization}/billing"
    page.goto(billing)
    expect(page.get_by_role("heading", name="Plan: Free")).to_be_visible()

    page.get_by_role("button", name="Upgrade to Premium").click()
    page.wait_for_url(f"{fake_stripe.url}/checkout/**")
    [checkout] = fake_stripe.recorded("/v1/checkout/sessions")
    assert checkout.form["mode"] == "subscription"
    assert checkout.form["line_items[0][price]"] == "price_premium_monthly"
    customer, org_id = checkout.form["customer"], checkout.form["client_reference_id"]
    assert organization == f"/orgs/{org_id}"

    # What Stripe sends once the card is accepted.
    _webhook(
        ursa,
        "checkout.session.completed",
        {"object": "checkout.session", "mode": "subscription", "customer": customer,
         "subscription": "sub_e2e", "client_reference_id": org_id},
    )  # fmt: skip
    now = int(time.time())
    item = {"price": {"id": "price_premium_monthly"}, "current_period_start": now,
            "current_period_end": now + 30 * DAY}  # fmt: skip
    _webhook(
        ursa,
        "customer.subscription.created",
        {"id": "sub_e2e", "object": "subscription", "customer": customer, "status": "active",
         "cancel_at_period_end": False, "items": {"data": [item]}},
    )  # fmt: skip

    page.goto(f"{billing}?checkout=success")
    expect(page.get_by_role("heading", name="Plan: Premium")).to_be_visible()
    rows = page.locator("section[aria-labelledby='billing-plan'] tr")
    expect(rows.filter(has_text="Status")).to_contain_text("Active")
    expect(rows.filter(has_text="Sites")).to_contain_text("of 50")
    expect(rows.filter(has_text="Events a month")).to_contain_text("1,000,000")
    expect(page.get_by_role("button", name="Manage billing")).to_be_visible()
    page.screenshot(path=str(artifacts / "billing-upgraded.png"), full_page=True)
