"""Upgrading and managing a subscription: a Stripe customer per organization, created on first
need, then a Checkout Session (subscription mode) or a Billing Portal session to redirect to.

What a subscription changes arrives later by webhook (`app.billing.webhook`); nothing here
writes a plan. Routes check the role (Owner or Admin) before calling in.
"""

from __future__ import annotations

import enum
from urllib.parse import urlsplit

from sqlalchemy import update
from sqlmodel import col, select

from app.billing.entitlements import billing_url
from app.billing.plans import Interval, priced_plans
from app.billing.stripe_gateway import Checkout, StripeGateway
from app.db import SessionMaker
from app.errors import Conflict, InvalidInput, NotFound
from app.models import BillingProfile, Organization
from app.settings import Settings

# Subscription states in which the organization already pays (or is being asked to): a second
# Checkout would charge twice, so plan changes go through the portal.
LIVE_STATUSES = frozenset({"active", "trialing", "past_due", "unpaid", "incomplete"})
NOT_CONFIGURED = "Billing is not configured on this installation."
STRIPE_API = "https://api.stripe.com"
# Where Stripe's hosted Checkout and Billing Portal pages live.
STRIPE_HOSTED_ORIGINS = ("https://checkout.stripe.com", "https://billing.stripe.com")


class Return(enum.StrEnum):
    """Where Stripe's hosted pages send the customer back to (`?checkout=` on the billing page)."""

    SUCCESS = "success"
    CANCELLED = "cancelled"


def hosted_page_origins(settings: Settings) -> tuple[str, ...]:
    """The origins a checkout or portal redirect may lead to (the billing page's forms must be
    allowed to go there): Stripe's, or a stand-in's serving its API at `STRIPE_API_BASE`."""
    base = urlsplit(settings.STRIPE_API_BASE)
    origin = f"{base.scheme}://{base.netloc}"
    return STRIPE_HOSTED_ORIGINS if origin == STRIPE_API else (origin,)


def return_url(settings: Settings, organization_id: int, outcome: Return | None = None) -> str:
    page = settings.BASE_URL.rstrip("/") + billing_url(organization_id)
    return f"{page}?checkout={outcome.value}" if outcome else page


async def _profile(sessions: SessionMaker, organization_id: int) -> BillingProfile:
    async with sessions() as session:
        query = select(BillingProfile).where(BillingProfile.organization_id == organization_id)
        profile = (await session.exec(query)).first()
    if profile is None:
        raise NotFound("no such organization")
    return profile


async def customer_of(
    sessions: SessionMaker, gateway: StripeGateway, organization_id: int, email: str
) -> str:
    """The organization's Stripe customer id, creating the customer (billed to `email`, the
    person who first asks) the first time. Of two concurrent first requests, the one that
    stores second finds the first one's id and uses it."""
    profile = await _profile(sessions, organization_id)
    if profile.stripe_customer_id:
        return profile.stripe_customer_id
    async with sessions() as session:
        organization = await session.get(Organization, organization_id)
    name = organization.name if organization is not None else f"Organization {organization_id}"
    customer_id = await gateway.create_customer(organization_id, name, email)
    async with sessions() as session, session.begin():
        await session.exec(
            update(BillingProfile)
            .where(
                col(BillingProfile.organization_id) == organization_id,
                col(BillingProfile.stripe_customer_id).is_(None),
            )
            .values(stripe_customer_id=customer_id)
        )
    stored = (await _profile(sessions, organization_id)).stripe_customer_id
    assert stored is not None
    return stored


async def start_checkout(
    sessions: SessionMaker,
    gateway: StripeGateway,
    settings: Settings,
    organization_id: int,
    plan_code: str,
    interval: str,
    email: str,
) -> str:
    """The URL of a Checkout Session for `plan_code` billed each `interval` (month, year)."""
    price_id = _price(settings, plan_code, interval)
    profile = await _profile(sessions, organization_id)
    if profile.stripe_subscription_id and profile.subscription_status in LIVE_STATUSES:
        raise Conflict(
            "This organization already has a subscription: change its plan with Manage billing."
        )
    checkout = Checkout(
        organization_id=organization_id,
        customer_id=await customer_of(sessions, gateway, organization_id, email),
        price_id=price_id,
        success_url=return_url(settings, organization_id, Return.SUCCESS),
        cancel_url=return_url(settings, organization_id, Return.CANCELLED),
    )
    return await gateway.checkout_url(checkout)


def _price(settings: Settings, plan_code: str, interval: str) -> str:
    plans = {plan.code: plan for plan in priced_plans(settings) if plan.self_serve}
    plan = plans.get(plan_code)
    if plan is None:
        raise InvalidInput(f"Choose one of the plans: {', '.join(plans)}.")
    try:
        price_id = plan.price_id(Interval(interval))
    except ValueError:
        raise InvalidInput("Choose monthly or yearly billing.") from None
    if not price_id:
        raise NotFound(f"The {plan.display_name} plan is not on sale on this installation.")
    return price_id


async def portal_url(
    sessions: SessionMaker,
    gateway: StripeGateway,
    settings: Settings,
    organization_id: int,
    email: str,
) -> str:
    """The URL of a Billing Portal session (card, invoices, plan, cancelling)."""
    customer_id = await customer_of(sessions, gateway, organization_id, email)
    return await gateway.portal_url(customer_id, return_url(settings, organization_id))
