"""What staff change by hand on an organization's billing: its plan (an installation without
Stripe, a deal made elsewhere), Enterprise's limits, and the capacity rule's grace period. The
admin section will call the same functions.

Each takes the capacity cache of the ingest path (`app.billing.capacity_cache`) to invalidate
the organization's answer at once; None where no cache Redis is known (a command run while no
instance is running), and then the change reaches ingest within the cache's TTL.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.billing.capacity import CapacityState, extended
from app.billing.capacity_cache import CapacityCache
from app.billing.metering import restart_capacity_rule, state_of, store_state
from app.billing.plans import ENTERPRISE, PLANS_BY_CODE, Plan
from app.billing.webhook import on_plan_changed
from app.db import SessionMaker
from app.errors import InvalidInput, NotFound
from app.models import BillingProfile

MAX_GRACE_EXTENSION_DAYS = 366


@dataclass(frozen=True)
class CustomLimits:
    """Enterprise limits staff set; None leaves that limit as it is."""

    monthly_event_limit: int | None = None
    max_sites: int | None = None
    max_members: int | None = None
    max_alerts: int | None = None
    retention_months: int | None = None


async def _profile(session: AsyncSession, organization_id: int) -> BillingProfile:
    query = select(BillingProfile).where(BillingProfile.organization_id == organization_id)
    profile = (await session.exec(query)).first()
    if profile is None:
        raise NotFound(f"no organization with the id {organization_id}")
    return profile


async def _change_limits(
    sessions: SessionMaker,
    capacity: CapacityCache | None,
    organization_id: int,
    change: Callable[[BillingProfile], None],
) -> BillingProfile:
    """Apply `change` to the profile, restart the capacity rule on the new limits, and tell
    ingest at once."""
    async with sessions() as session, session.begin():
        profile = await _profile(session, organization_id)
        change(profile)
        restart_capacity_rule(profile)
        session.add(profile)
    if capacity is not None:
        await on_plan_changed(capacity, organization_id)
    return profile


async def set_plan(
    sessions: SessionMaker, capacity: CapacityCache | None, organization_id: int, code: str
) -> Plan:
    """Put the organization on the plan `code`; its data and Stripe state are left as they are
    (a later Stripe event for its subscription changes the plan again)."""
    plan = PLANS_BY_CODE.get(code)
    if plan is None:
        raise InvalidInput(f"unknown plan {code[:40]!r}; use one of {', '.join(PLANS_BY_CODE)}")
    await _change_limits(sessions, capacity, organization_id, lambda p: _put_on(p, plan))
    return plan


def _put_on(profile: BillingProfile, plan: Plan) -> None:
    profile.plan_code = plan.code


async def set_limits(
    sessions: SessionMaker,
    capacity: CapacityCache | None,
    organization_id: int,
    limits: CustomLimits,
) -> BillingProfile:
    """Set Enterprise limits of the organization (on the Enterprise plan only)."""
    given = {name: value for name, value in vars(limits).items() if value is not None}
    if not given:
        raise InvalidInput("name at least one limit to set")
    if any(value < 0 for value in given.values()):
        raise InvalidInput("limits are numbers of 0 or more")

    def change(profile: BillingProfile) -> None:
        if profile.plan_code != ENTERPRISE.code:
            raise InvalidInput(
                f"organization {organization_id} is on the {profile.plan_code} plan; custom "
                "limits apply to Enterprise only (ursa billing set-plan --plan enterprise)"
            )
        for name, value in given.items():
            setattr(profile, f"custom_{name}", value)

    return await _change_limits(sessions, capacity, organization_id, change)


async def extend_grace(
    sessions: SessionMaker,
    capacity: CapacityCache | None,
    organization_id: int,
    days: int,
    now: dt.datetime,
) -> CapacityState:
    """Give the organization `days` more of grace period (one starts now if none runs): it
    collects again at once if its events were being refused."""
    if not 1 <= days <= MAX_GRACE_EXTENSION_DAYS:
        raise InvalidInput(f"days must be from 1 to {MAX_GRACE_EXTENSION_DAYS}")
    async with sessions() as session, session.begin():
        profile = await _profile(session, organization_id)
        state = extended(state_of(profile), days, now)
        store_state(profile, state)
        session.add(profile)
    if capacity is not None:
        await capacity.invalidate(organization_id)
    return state
