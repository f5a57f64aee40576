"""An organization's billing profile and the Stripe events already processed.

The plans themselves are constants (`app.billing.plans`); a profile names one by `plan_code` and
keeps the state of the organization's Stripe subscription as the webhook last saw it
(`app.billing.webhook`).
"""

from __future__ import annotations

import datetime as dt

from sqlmodel import Field, SQLModel

from app.models.columns import UTCDateTime, utcnow

FREE_PLAN = "free"


class BillingProfile(SQLModel, table=True):
    """Belongs to the organization, not to a user: one per organization."""

    __tablename__ = "billing_profiles"

    id: int | None = Field(default=None, primary_key=True)
    organization_id: int = Field(
        foreign_key="organizations.id", ondelete="CASCADE", unique=True, index=True
    )
    plan_code: str = Field(default=FREE_PLAN, max_length=32)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # Stripe: the customer is created on the first checkout or portal visit.
    stripe_customer_id: str | None = Field(default=None, max_length=255, unique=True, index=True)
    stripe_subscription_id: str | None = Field(default=None, max_length=255)
    # Stripe's subscription status (active, trialing, past_due, canceled, …); None: never one.
    subscription_status: str | None = Field(default=None, max_length=32)
    current_period_start: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    current_period_end: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    cancel_at_period_end: bool = Field(default=False)
    # When the last invoice payment failed; None once an invoice is paid again.
    payment_failed_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    # Creation times of the newest Stripe events applied (subscription state, invoice state):
    # an older event delivered late never overwrites what a newer one wrote.
    last_subscription_event_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_invoice_event_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    # Enterprise limits set by staff; None: the plan's own (`app.billing.entitlements`).
    custom_monthly_event_limit: int | None = Field(default=None)
    custom_max_sites: int | None = Field(default=None)
    custom_max_members: int | None = Field(default=None)
    custom_max_alerts: int | None = Field(default=None)
    custom_retention_months: int | None = Field(default=None)
    # The capacity rule (`app.billing.capacity`), as the metering job last applied it. The
    # period these moments belong to starts at `capacity_period_start`.
    capacity_period_start: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    grace_started_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    grace_ends_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    # Since when new events are refused (the grace period ended over the limit); None: accepted.
    dropping_since: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    refused_events: int = Field(default=0)  # refused since `dropping_since`
    # The periods (their starts) whose "capacity depleted" email and grace reminder went out.
    depleted_email_period: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    reminder_email_period: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)


class StripeEvent(SQLModel, table=True):
    """A Stripe event id the webhook has processed: each one is applied once."""

    __tablename__ = "stripe_events"

    id: str = Field(primary_key=True, max_length=255)
    type: str = Field(max_length=64)
    processed_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class UsageRecord(SQLModel, table=True):
    """One count of an organization's billable events in one billing period (the metering
    job's history: the billing page's chart, the admin)."""

    __tablename__ = "usage_records"

    id: int | None = Field(default=None, primary_key=True)
    organization_id: int = Field(foreign_key="organizations.id", ondelete="CASCADE", index=True)
    period_start: dt.datetime = Field(sa_type=UTCDateTime)
    period_end: dt.datetime = Field(sa_type=UTCDateTime)
    events: int
    counted_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
