"""The one module that talks to Stripe: customers, Checkout Sessions, Billing Portal sessions.

Everything that touches a card happens on Stripe's hosted pages; Ursa only creates the sessions
and redirects. The client (`stripe.StripeClient`, async calls over httpx) is built from
`STRIPE_SECRET_KEY` and `STRIPE_API_BASE`, so tests point it at a local fake server; nothing
else imports `stripe` except the webhook's signature check. A failed call (Stripe unreachable,
a refused request) is `Unavailable` (503: try again later), with Stripe's message in the log.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TypeVar

import stripe
from stripe.params import CustomerCreateParams
from stripe.params.billing_portal import SessionCreateParams as PortalSessionParams
from stripe.params.checkout import SessionCreateParams as CheckoutSessionParams

from app.errors import Unavailable

log = logging.getLogger(__name__)
T = TypeVar("T")
TIMEOUT_SECONDS = 20  # a person waits on the redirect; Stripe answers in well under a second
UNREACHABLE = "Stripe could not be reached just now. Nothing was charged; try again in a minute."


@dataclass(frozen=True)
class Checkout:
    """What a Checkout Session is created for: one organization, one recurring price."""

    organization_id: int
    customer_id: str
    price_id: str
    success_url: str
    cancel_url: str


class StripeGateway:
    def __init__(self, secret_key: str, api_base: str) -> None:
        self._http = stripe.HTTPXClient(timeout=TIMEOUT_SECONDS)
        self._client = stripe.StripeClient(
            secret_key,
            base_addresses={"api": api_base},
            http_client=self._http,
            max_network_retries=2,
        )

    async def aclose(self) -> None:
        await self._http.close_async()  # type: ignore[no-untyped-call]

    async def create_customer(self, organization_id: int, name: str, email: str) -> str:
        """A new Stripe customer for the organization; its id.

        The idempotency key makes two concurrent first visits create one customer (Stripe
        keeps keys 24 hours)."""
        params: CustomerCreateParams = {
            "name": name,
            "email": email,
            "metadata": {"organization_id": str(organization_id)},
        }
        options: stripe.RequestOptions = {"idempotency_key": f"ursa-customer-{organization_id}"}
        customer = await _call(self._client.v1.customers.create_async(params, options))
        return customer.id

    async def checkout_url(self, checkout: Checkout) -> str:
        """A subscription-mode Checkout Session; the URL of its hosted page."""
        reference = str(checkout.organization_id)
        params: CheckoutSessionParams = {
            "mode": "subscription",
            "customer": checkout.customer_id,
            "line_items": [{"price": checkout.price_id, "quantity": 1}],
            "success_url": checkout.success_url,
            "cancel_url": checkout.cancel_url,
            "client_reference_id": reference,
            "metadata": {"organization_id": reference},
            "subscription_data": {"metadata": {"organization_id": reference}},
        }
        session = await _call(self._client.v1.checkout.sessions.create_async(params))
        if not session.url:
            raise Unavailable(UNREACHABLE)
        return session.url

    async def portal_url(self, customer_id: str, return_url: str) -> str:
        """A Billing Portal session (card, invoices, plan changes, cancelling); its URL."""
        params: PortalSessionParams = {
            "customer": customer_id,
            "return_url": return_url,
        }
        session = await _call(self._client.v1.billing_portal.sessions.create_async(params))
        return session.url


async def _call(request: Awaitable[T]) -> T:
    try:
        return await request
    except stripe.StripeError as exc:
        log.warning("stripe request failed: %s", exc.user_message or type(exc).__name__)
        raise Unavailable(UNREACHABLE) from exc
