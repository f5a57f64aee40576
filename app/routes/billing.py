"""Billing: the public pricing page, an organization's billing page, the redirects to Stripe's
Checkout and Billing Portal, and Stripe's webhook.

The billing page and its actions need the Owner or Admin role (`organization_role`); when
`STRIPE_SECRET_KEY` is unset the page says billing is not configured and the actions are 409.
Its forms are answered by a redirect to Stripe's hosted pages, which its policy allows
(`form-action`, `hosted_page_origins`).

`POST /billing/webhook` is machine-to-machine: no login, no session, no CSRF token
(`app.accounts.request_auth.COOKIELESS_PATHS`), no per-IP rate limit (Stripe delivers in
bursts); Stripe's signature is the credential, checked before anything is parsed
(`app.billing.webhook`). A bad signature is 400 and changes nothing.
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, get, post
from litestar.di import NamedDependency
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template
from msgspec import Struct

from app.billing.checkout import (
    NOT_CONFIGURED,
    Return,
    hosted_page_origins,
    portal_url,
    start_checkout,
)
from app.billing.overview import billing_overview
from app.billing.plans import ALL_PLANS, FEATURE_LABELS, Interval
from app.billing.stripe_gateway import StripeGateway
from app.billing.webhook import apply_event, verified_event
from app.cache.ratelimit import CREATE_PER_USER, limited
from app.errors import Conflict, InvalidInput
from app.models import Role, User
from app.organizations.access import organization_role
from app.routes import FORM
from app.services import Services
from app.web.security_headers import content_security_policy

WEBHOOK_PATH = "/billing/webhook"
RETURN_NOTICES = {
    Return.SUCCESS.value: "Thank you! Your subscription starts as soon as Stripe confirms the "
    "payment, usually within a minute.",
    Return.CANCELLED.value: "Checkout was cancelled; nothing was charged.",
}


class CheckoutForm(Struct):
    plan: str = ""
    interval: str = Interval.MONTH.value


def _interval(raw: str) -> Interval:
    try:
        return Interval(raw)
    except ValueError:
        raise InvalidInput("The billing interval is month or year.") from None


def _gateway(services: Services) -> StripeGateway:
    if services.stripe is None:
        raise Conflict(NOT_CONFIGURED)
    return services.stripe


@get("/pricing", name="pricing")
async def pricing(interval: FromQuery[str] = Interval.MONTH.value) -> Template:
    """The plans and what each includes, billed monthly or yearly (`?interval=year`)."""
    context = {"plans": ALL_PLANS, "interval": _interval(interval), "features": FEATURE_LABELS}
    return Template("billing/pricing.html", context=context)


@get("/orgs/{org_id:int}/billing", name="billing")
async def billing_page(
    services: NamedDependency[Services],
    user: NamedDependency[User],
    org_id: FromPath[int],
    interval: FromQuery[str] = Interval.MONTH.value,
    checkout: FromQuery[str] = "",
) -> Template:
    await organization_role(services, user, org_id, at_least=Role.ADMIN)
    context = {
        "overview": await billing_overview(services.sessions, org_id),
        "configured": services.stripe is not None,
        "interval": _interval(interval),
        "notice": RETURN_NOTICES.get(checkout, ""),
        "features": FEATURE_LABELS,
    }
    policy = content_security_policy(form_targets=hosted_page_origins(services.settings))
    headers = {"Content-Security-Policy": policy}
    return Template("billing/organization.html", context=context, headers=headers)


@post(
    "/orgs/{org_id:int}/billing/checkout",
    name="billing-checkout",
    status_code=303,
    opt=limited(CREATE_PER_USER),  # each one is a call to Stripe
)
async def checkout(
    services: NamedDependency[Services],
    user: NamedDependency[User],
    org_id: FromPath[int],
    data: Annotated[CheckoutForm, FORM],
) -> Redirect:
    """To Stripe Checkout for the chosen plan and interval."""
    await organization_role(services, user, org_id, at_least=Role.ADMIN)
    url = await start_checkout(
        services.sessions,
        _gateway(services),
        services.settings,
        org_id,
        data.plan,
        data.interval,
        user.email,
    )
    return Redirect(url, status_code=303)


@post(
    "/orgs/{org_id:int}/billing/portal",
    name="billing-portal",
    status_code=303,
    opt=limited(CREATE_PER_USER),
)
async def portal(
    services: NamedDependency[Services], user: NamedDependency[User], org_id: FromPath[int]
) -> Redirect:
    """To Stripe's Billing Portal: card, invoices, plan changes, cancelling."""
    await organization_role(services, user, org_id, at_least=Role.ADMIN)
    gateway = _gateway(services)
    url = await portal_url(services.sessions, gateway, services.settings, org_id, user.email)
    return Redirect(url, status_code=303)


@post(WEBHOOK_PATH, name="billing-webhook", status_code=200, cache=False)
async def stripe_webhook(
    request: Request[Any, Any, Any], services: NamedDependency[Services]
) -> dict[str, str]:
    secret = services.settings.STRIPE_WEBHOOK_SECRET.get_secret_value()
    event = verified_event(await request.body(), request.headers.get("stripe-signature"), secret)
    outcome = await apply_event(services.sessions, services.settings, services.capacity, event)
    return {"received": event.id, "outcome": outcome.value}


PUBLIC_ROUTES: list[HTTPRouteHandler] = [pricing]
PRIVATE_ROUTES: list[HTTPRouteHandler] = [billing_page, checkout, portal]
