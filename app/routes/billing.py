"""Billing routes: Stripe's webhook.

`POST /billing/webhook` is machine-to-machine: no login, no session, no CSRF token
(`app.accounts.request_auth.COOKIELESS_PATHS`), no per-IP rate limit (Stripe delivers in
bursts); Stripe's signature is the credential, checked before anything is parsed
(`app.billing.webhook`). A bad signature is 400 and changes nothing.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, post
from litestar.di import NamedDependency

from app.billing.webhook import apply_event, verified_event
from app.services import Services

WEBHOOK_PATH = "/billing/webhook"


@post(WEBHOOK_PATH, name="billing-webhook", status_code=200, cache=False)
async def stripe_webhook(
    request: Request[Any, Any, Any], services: NamedDependency[Services]
) -> dict[str, str]:
    secret = services.settings.STRIPE_WEBHOOK_SECRET.get_secret_value()
    event = verified_event(await request.body(), request.headers.get("stripe-signature"), secret)
    outcome = await apply_event(services.sessions, services.settings, event)
    return {"received": event.id, "outcome": outcome.value}
