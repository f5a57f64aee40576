"""Usage metering: each organization's billable events in its current billing period.

The billing period is the subscription's (`current_period_start` to `current_period_end` on
the billing profile) while the organization has a paying subscription whose period has not
ended, else the calendar month. Both are UTC: a site's time zone moves its dashboard's days,
never its billing period (`app.analytics.queries.usage` counts by UTC instant).

`meter_organization` counts, stores the count (`UsageRecord`, the history), moves the refused
events the web processes counted onto the profile, and applies the capacity rule
(`app.billing.capacity.transition`); the job `meter_usage` runs it for every organization
every 15 minutes (`app.tasks.billing_jobs`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.analytics.clickhouse.gateway import Gateway
from app.analytics.queries.usage import billable_events
from app.billing.capacity import CapacityState, Notice, after_plan_change, transition
from app.billing.capacity_cache import CapacityCache
from app.billing.entitlements import entitlements_of
from app.billing.plans import PAYING_STATUSES
from app.db import SessionMaker
from app.errors import NotFound
from app.models import BillingProfile, Organization, Site, UsageRecord

# The profile's column of each field of `CapacityState`.
STATE_COLUMNS = {
    field.name: "capacity_period_start" if field.name == "period_start" else field.name
    for field in dataclasses.fields(CapacityState)
}


@dataclass(frozen=True)
class BillingPeriod:
    start: dt.datetime
    end: dt.datetime


def calendar_month(now: dt.datetime) -> BillingPeriod:
    """The UTC calendar month around `now`."""
    start = now.astimezone(dt.UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = (start + dt.timedelta(days=32)).replace(day=1)
    return BillingPeriod(start, end)


def billing_period(profile: BillingProfile, now: dt.datetime) -> BillingPeriod:
    start, end = profile.current_period_start, profile.current_period_end
    paying = profile.subscription_status in PAYING_STATUSES
    if paying and start is not None and end is not None and start <= now < end:
        return BillingPeriod(start, end)
    return calendar_month(now)


def state_of(profile: BillingProfile) -> CapacityState:
    return CapacityState(
        **{name: getattr(profile, column) for name, column in STATE_COLUMNS.items()}
    )


def store_state(profile: BillingProfile, state: CapacityState) -> None:
    """Write `state` on the profile; a new period starts with nothing refused."""
    if profile.capacity_period_start != state.period_start:
        profile.refused_events = 0
    for name, column in STATE_COLUMNS.items():
        setattr(profile, column, getattr(state, name))


def restart_capacity_rule(profile: BillingProfile) -> None:
    """After a plan change (in its transaction): collect again; the next count decides."""
    store_state(profile, after_plan_change(state_of(profile)))


@dataclass(frozen=True)
class Metered:
    organization_id: int
    period: BillingPeriod
    events: int
    limit: int
    state: CapacityState
    notices: frozenset[Notice]


async def _profile(session: AsyncSession, organization_id: int) -> BillingProfile:
    query = select(BillingProfile).where(BillingProfile.organization_id == organization_id)
    profile = (await session.exec(query.with_for_update())).first()
    if profile is None:
        raise NotFound(f"no organization with the id {organization_id}")
    return profile


async def _site_ids(session: AsyncSession, organization_id: int) -> list[int]:
    query = select(Site.id).where(Site.organization_id == organization_id)
    return [site_id for site_id in (await session.exec(query)).all() if site_id is not None]


async def meter_organization(
    sessions: SessionMaker,
    gateway: Gateway,
    capacity: CapacityCache,
    organization_id: int,
    *,
    now: dt.datetime,
    grace: dt.timedelta,
) -> Metered:
    # Counted first, outside the transaction that locks the profile: a webhook of this
    # organization never waits for ClickHouse. Should its period change meanwhile (a renewal),
    # the count is made again for the new one.
    async with sessions() as session:
        period = billing_period(await _profile(session, organization_id), now)
        site_ids = await _site_ids(session, organization_id)
    events = billable_events(gateway, site_ids, period.start, period.end)
    async with sessions() as session, session.begin():
        profile = await _profile(session, organization_id)
        if billing_period(profile, now) != period:
            period = billing_period(profile, now)
            events = billable_events(gateway, site_ids, period.start, period.end)
        limit = entitlements_of(profile).limits.monthly_event_limit
        before = state_of(profile)
        after, notices = transition(
            before, usage=events, limit=limit, period_start=period.start, now=now, grace=grace
        )
        store_state(profile, after)
        profile.refused_events += await capacity.take_refused(organization_id)
        session.add(profile)
        session.add(usage_record(organization_id, period, events, now))
    if before.accepting != after.accepting:
        await capacity.invalidate(organization_id)
    return Metered(organization_id, period, events, limit, after, notices)


def usage_record(
    organization_id: int, period: BillingPeriod, events: int, counted_at: dt.datetime
) -> UsageRecord:
    return UsageRecord(
        organization_id=organization_id,
        period_start=period.start,
        period_end=period.end,
        events=events,
        counted_at=counted_at,
    )


async def organization_ids(sessions: SessionMaker) -> list[int]:
    """The organizations to meter: every one not awaiting deletion."""
    query = select(Organization.id).where(col(Organization.deleted_at).is_(None))
    async with sessions() as session:
        return [org_id for org_id in (await session.exec(query)).all() if org_id is not None]


async def usage_history(
    sessions: SessionMaker, organization_id: int, period: BillingPeriod
) -> list[UsageRecord]:
    """The counts of the period, oldest first."""
    query = (
        select(UsageRecord)
        .where(
            UsageRecord.organization_id == organization_id,
            UsageRecord.period_start == period.start,
        )
        .order_by(col(UsageRecord.counted_at))
    )
    async with sessions() as session:
        return list((await session.exec(query)).all())
