"""What the billing page shows of an organization: its plan and limits, what it uses of them
(sites, members, and events this billing period as the metering job last counted them, with
the capacity rule's state), and the state of its Stripe subscription, computed before
rendering. `billing_notice` is the dashboard's banner of the same state and of a failed payment."""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.billing.capacity import CapacityState
from app.billing.entitlements import (
    Entitlements,
    billing_url,
    entitlements_of,
    member_count,
    site_count,
)
from app.billing.metering import BillingPeriod, billing_period, state_of
from app.billing.plans import ALL_PLANS, Plan
from app.db import SessionMaker
from app.errors import NotFound
from app.models import BillingProfile, Organization, UsageRecord
from app.models.columns import utcnow


class CapacityStatus(enum.StrEnum):
    UNDER = "under"
    GRACE = "grace"  # over the limit, still collecting until `grace_ends_at`
    DROPPING = "dropping"  # new events refused since `dropping_since`


@dataclass(frozen=True)
class Usage:
    """Billable events this billing period, as last counted."""

    period: BillingPeriod
    events: int
    counted_at: dt.datetime | None  # None: not counted yet this period
    limit: int
    state: CapacityState
    refused: int  # events refused this period
    days: tuple[UsageDay, ...] = ()  # per UTC day, from the counts

    @property
    def percent(self) -> int:
        """Share of the limit used, 0 to 100 (the bar)."""
        return 100 if self.limit <= 0 else min(100, self.events * 100 // self.limit)

    @property
    def status(self) -> CapacityStatus:
        if not self.state.accepting:
            return CapacityStatus.DROPPING
        return CapacityStatus.GRACE if self.state.in_grace else CapacityStatus.UNDER


async def _usage(session: AsyncSession, profile: BillingProfile, limit: int) -> Usage:
    period = billing_period(profile, utcnow())
    query = (
        select(UsageRecord)
        .where(
            UsageRecord.organization_id == profile.organization_id,
            UsageRecord.period_start == period.start,
        )
        .order_by(col(UsageRecord.counted_at))
    )
    history = list((await session.exec(query)).all())
    latest = history[-1] if history else None
    state, refused = state_of(profile), profile.refused_events
    if state.period_start != period.start:  # the job has not seen this period yet
        state, refused = CapacityState(period_start=period.start), 0
    events, counted_at = (latest.events, latest.counted_at) if latest else (0, None)
    return Usage(period, events, counted_at, limit, state, refused, daily_usage(history))


@dataclass(frozen=True)
class UsageDay:
    day: dt.date  # UTC
    events: int  # counted that day: its last count less the day before's
    share: int  # of the busiest day, 0 to 100 (the bar)


def daily_usage(history: list[UsageRecord]) -> tuple[UsageDay, ...]:
    """Events per UTC day of a period from its counts, oldest first (the billing chart)."""
    last_of_day: dict[dt.date, int] = {}
    for record in history:  # oldest first: the day's last count wins
        last_of_day[record.counted_at.astimezone(dt.UTC).date()] = record.events
    added, before = [], 0
    for day, total in last_of_day.items():
        added.append((day, max(total - before, 0)))
        before = total
    top = max((events for _, events in added), default=0) or 1
    return tuple(UsageDay(day, events, round(100 * events / top)) for day, events in added)


@dataclass(frozen=True)
class BillingOverview:
    organization: Organization
    profile: BillingProfile
    entitlements: Entitlements
    sites: int
    members: int  # members and open invitations
    usage: Usage

    @property
    def upgrades(self) -> list[Plan]:
        """The self-serve plans above the current one, cheapest first."""
        order = [plan.code for plan in ALL_PLANS]
        current = order.index(self.entitlements.plan.code)
        return [plan for plan in ALL_PLANS[current + 1 :] if plan.self_serve]

    @property
    def subscribed(self) -> bool:
        return self.profile.stripe_subscription_id is not None


async def billing_overview(sessions: SessionMaker, organization_id: int) -> BillingOverview:
    async with sessions() as session:
        organization = await session.get(Organization, organization_id)
        query = select(BillingProfile).where(BillingProfile.organization_id == organization_id)
        profile = (await session.exec(query)).first()
        if organization is None or profile is None:
            raise NotFound("no such organization")
        sites = await site_count(session, organization_id)
        members = await member_count(session, organization_id)
        entitlements = entitlements_of(profile)
        usage = await _usage(session, profile, entitlements.limits.monthly_event_limit)
    return BillingOverview(organization, profile, entitlements, sites, members, usage)


@dataclass(frozen=True)
class BillingNotice:
    """The dashboard's banner: the organization's last payment failed, or it is over its limit
    (in its grace period, or refusing events)."""

    payment_failed_at: dt.datetime | None
    usage: Usage | None  # None while under the limit
    billing_url: str


async def billing_notice(
    sessions: SessionMaker, organization_id: int | None
) -> BillingNotice | None:
    """The banner for a site of the organization; None while nothing needs its owners."""
    if organization_id is None:
        return None
    async with sessions() as session:
        query = select(BillingProfile).where(BillingProfile.organization_id == organization_id)
        profile = (await session.exec(query)).first()
        if profile is None:
            return None
        usage = None
        if profile.grace_ends_at is not None:  # under the limit: no history read
            limit = entitlements_of(profile).limits.monthly_event_limit
            usage = await _usage(session, profile, limit)
    if usage is not None and usage.status is CapacityStatus.UNDER:
        usage = None
    if usage is None and profile.payment_failed_at is None:
        return None
    return BillingNotice(profile.payment_failed_at, usage, billing_url(organization_id))
