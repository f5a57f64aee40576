"""Stripe's webhook: what Stripe says about a subscription, applied to the billing profile.

`verified_event` checks the `Stripe-Signature` header against `STRIPE_WEBHOOK_SECRET` with
Stripe's own verification and tolerance (300 s) before the body is parsed: a missing, bad or
stale signature is `InvalidInput` (400) and nothing changes. `apply_event` then applies one
event in one transaction, with its id stored in `stripe_events` in that same transaction:

- each event id is applied once; a replay (inside the tolerance, the signature still passes)
  or Stripe's redelivery is answered `duplicate`;
- an event older than the newest one applied to the same state (subscription: plan, status,
  period, cancel-at-period-end; invoices: the payment failure) is answered `stale` and changes
  nothing, so out-of-order delivery never brings back an older state;
- a subscription that ends (deleted, or a status that no longer pays) puts the organization
  back on Free's limits; its sites, members and data are kept.

When the plan changed, the capacity rule starts afresh in the same transaction (an upgrade
restores collection at once, `app.billing.capacity.after_plan_change`) and
`on_plan_changed` invalidates the organization's capacity cache after the commit.

Handled types: `HANDLED_TYPES`. Others are answered `ignored` without being stored.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
from dataclasses import dataclass
from typing import Any

import stripe
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.billing.capacity_cache import CapacityCache
from app.billing.metering import restart_capacity_rule
from app.billing.plans import FREE, PAYING_STATUSES, plan_for_price
from app.db import SessionMaker
from app.errors import InvalidInput
from app.models import BillingProfile, StripeEvent
from app.observability.logging import get_logger
from app.settings import Settings
from app.store.jobs import enqueue

log = get_logger(__name__)
TOLERANCE_SECONDS = stripe.Webhook.DEFAULT_TOLERANCE  # 300, as Stripe's libraries use
SUBSCRIPTION_TYPES = frozenset(
    {
        "customer.subscription.created",
        "customer.subscription.updated",
        "customer.subscription.deleted",
    }
)
PAYMENT_FAILED = "invoice.payment_failed"
INVOICE_TYPES = frozenset({"invoice.paid", PAYMENT_FAILED})
CHECKOUT_COMPLETED = "checkout.session.completed"
HANDLED_TYPES = SUBSCRIPTION_TYPES | INVOICE_TYPES | {CHECKOUT_COMPLETED}


class Outcome(enum.StrEnum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"  # this event id was applied before
    STALE = "stale"  # older than what a newer event already wrote
    IGNORED = "ignored"  # a type not handled, or no organization of ours


@dataclass(frozen=True)
class Event:
    id: str
    type: str
    created: dt.datetime
    data: dict[str, Any]  # `data.object`: the subscription, invoice or checkout session


def verified_event(payload: bytes, signature: str | None, secret: str) -> Event:
    """The event, if `signature` is Stripe's for `payload` under `secret` and recent."""
    try:
        stripe.WebhookSignature.verify_header(payload, signature, secret, TOLERANCE_SECONDS)
        body = json.loads(payload)
        event = Event(
            id=_text(body["id"]),
            type=_text(body["type"]),
            created=dt.datetime.fromtimestamp(int(body["created"]), dt.UTC),
            data=dict(body["data"]["object"]),
        )
    except stripe.SignatureVerificationError:
        raise InvalidInput("the Stripe-Signature header is missing, wrong or too old") from None
    except (ValueError, TypeError, KeyError, OverflowError):
        raise InvalidInput("the body is not a Stripe event") from None
    return event


def _text(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise TypeError("expected a string")
    return value


async def on_plan_changed(capacity: CapacityCache, organization_id: int) -> None:
    """Called once an organization's plan (or its limits) changed and was committed, with the
    capacity rule restarted (`restart_capacity_rule`): the ingest path's cached answer of the
    organization is dropped, so an upgrade takes effect at once."""
    await capacity.invalidate(organization_id)
    log.info("plan changed", organization_id=organization_id)


async def apply_event(
    sessions: SessionMaker, settings: Settings, capacity: CapacityCache, event: Event
) -> Outcome:
    if event.type not in HANDLED_TYPES:
        return Outcome.IGNORED
    try:
        async with sessions() as session, session.begin():
            if await session.get(StripeEvent, event.id) is not None:
                return Outcome.DUPLICATE
            session.add(StripeEvent(id=event.id, type=event.type))
            profile = await _profile_of(session, event)
            if profile is None:
                return Outcome.IGNORED
            await _lock(session, profile)
            plan_before = profile.plan_code
            outcome = _apply(profile, event, settings)
            plan_changed = profile.plan_code != plan_before
            if plan_changed:
                restart_capacity_rule(profile)
            session.add(profile)
    except IntegrityError:  # the same event, applied by a concurrent delivery meanwhile
        return Outcome.DUPLICATE
    if event.type == PAYMENT_FAILED and outcome is Outcome.APPLIED:
        enqueue("send_payment_failed", profile.organization_id)  # the owners' email
    if plan_changed:
        await on_plan_changed(capacity, profile.organization_id)
    return outcome


async def _profile_of(session: AsyncSession, event: Event) -> BillingProfile | None:
    """The billing profile the event is about: by its Stripe customer, else (a checkout of a
    customer not stored yet) by the organization id Ursa put in the session."""
    customer = event.data.get("customer")
    if isinstance(customer, str) and customer:
        query = select(BillingProfile).where(BillingProfile.stripe_customer_id == customer)
        found = (await session.exec(query)).first()
        if found is not None or event.type != CHECKOUT_COMPLETED:
            return found
    reference = str(event.data.get("client_reference_id") or "")
    if not reference.isdigit():
        return None
    query = select(BillingProfile).where(BillingProfile.organization_id == int(reference))
    return (await session.exec(query)).first()


async def _lock(session: AsyncSession, profile: BillingProfile) -> None:
    """Hold the profile's row until the transaction ends, then read it afresh: of two events
    delivered at once, the second sees what the first wrote (and its ordering check holds).

    A no-op write, as `app.organizations.locks` explains: a row lock on Postgres, the write
    lock on SQLite before the profile is read again."""
    statement = (
        update(BillingProfile)
        .where(col(BillingProfile.id) == profile.id)
        .values(plan_code=BillingProfile.plan_code)
    )
    await session.exec(statement)
    await session.refresh(profile)


def _apply(profile: BillingProfile, event: Event, settings: Settings) -> Outcome:
    if event.type == CHECKOUT_COMPLETED:
        return _checkout_completed(profile, event)
    if event.type in INVOICE_TYPES:
        return _invoice(profile, event)
    return _subscription(profile, event, settings)


def _checkout_completed(profile: BillingProfile, event: Event) -> Outcome:
    """The customer paid on Checkout: link the customer and the subscription. The plan and the
    period come with the subscription's own events."""
    if event.data.get("mode") != "subscription":
        return Outcome.IGNORED
    customer, subscription = event.data.get("customer"), event.data.get("subscription")
    if isinstance(customer, str) and not profile.stripe_customer_id:
        profile.stripe_customer_id = customer
    if isinstance(subscription, str) and not profile.stripe_subscription_id:
        profile.stripe_subscription_id = subscription
    return Outcome.APPLIED


def _invoice(profile: BillingProfile, event: Event) -> Outcome:
    if _older(event, profile.last_invoice_event_at):
        return Outcome.STALE
    profile.last_invoice_event_at = event.created
    profile.payment_failed_at = event.created if event.type == PAYMENT_FAILED else None
    return Outcome.APPLIED


def _subscription(profile: BillingProfile, event: Event, settings: Settings) -> Outcome:
    subscription_id = str(event.data.get("id") or "")
    deleted = event.type == "customer.subscription.deleted"
    if deleted and profile.stripe_subscription_id not in (None, subscription_id):
        return Outcome.IGNORED  # an older subscription ended; the current one goes on
    if _older(event, profile.last_subscription_event_at):
        return Outcome.STALE
    profile.last_subscription_event_at = event.created
    status = "canceled" if deleted else str(event.data.get("status") or "")
    profile.subscription_status = status
    if deleted:
        profile.stripe_subscription_id = None
        profile.cancel_at_period_end = False
        profile.current_period_start = profile.current_period_end = None
        profile.plan_code = FREE.code
        return Outcome.APPLIED
    profile.stripe_subscription_id = subscription_id or profile.stripe_subscription_id
    profile.cancel_at_period_end = bool(event.data.get("cancel_at_period_end"))
    profile.current_period_start = _moment(_period(event.data, "current_period_start"))
    profile.current_period_end = _moment(_period(event.data, "current_period_end"))
    if status not in PAYING_STATUSES:
        profile.plan_code = FREE.code
        return Outcome.APPLIED
    plan = plan_for_price(settings, _price_id(event.data))
    if plan is None:
        log.warning("subscription price of no plan; plan kept", subscription=subscription_id)
    else:
        profile.plan_code = plan.code
    return Outcome.APPLIED


def _older(event: Event, newest_applied: dt.datetime | None) -> bool:
    return newest_applied is not None and event.created < newest_applied


def _items(subscription: dict[str, Any]) -> list[dict[str, Any]]:
    items = subscription.get("items")
    data = items.get("data") if isinstance(items, dict) else None
    return [item for item in data if isinstance(item, dict)] if isinstance(data, list) else []


def _price_id(subscription: dict[str, Any]) -> str:
    for item in _items(subscription):
        price = item.get("price")
        if isinstance(price, dict) and isinstance(price.get("id"), str):
            return str(price["id"])
    return ""


def _period(subscription: dict[str, Any], field: str) -> object:
    """The subscription's period bound: on the subscription in API versions before
    2025-03-31, on its items since."""
    if field in subscription:
        return subscription[field]
    return next((item[field] for item in _items(subscription) if field in item), None)


def _moment(value: object) -> dt.datetime | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return dt.datetime.fromtimestamp(value, dt.UTC)
    return None
