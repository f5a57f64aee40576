"""May this organization use feature X, add one more site, member or alert, see data this old?

The one place routes and jobs ask; none of them reads a plan's numbers itself. An
organization's `Entitlements` are its plan and its limits (Enterprise: the plan's own unless
staff set `BillingProfile.custom_*`). Each question is a pure method returning None (allowed)
or a `Refusal`: what is refused, on which plan, and where to upgrade. `require` raises a
refusal as `PlanLimitReached` (402), which `app.main` answers with the message and the upgrade
link (as JSON for the Stats API, as a page for browsers); forms show the message beside them.

The `ensure_*_slot` functions count in the caller's transaction under `lock_organization`, so
two concurrent additions cannot both take the last slot.
"""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.billing.plans import ENTERPRISE, Feature, Plan, cheapest_with, plan_named
from app.db import SessionMaker
from app.errors import PlanLimitReached
from app.models import BillingProfile, Invitation, Membership, Site
from app.models.columns import utcnow
from app.organizations.locks import lock_organization


@dataclass(frozen=True)
class Limits:
    monthly_event_limit: int
    max_sites: int
    max_members: int
    max_alerts: int
    retention_months: int

    @classmethod
    def of(cls, plan: Plan) -> Limits:
        return cls(
            plan.monthly_event_limit,
            plan.max_sites,
            plan.max_members,
            plan.max_alerts,
            plan.retention_months,
        )


@dataclass(frozen=True)
class Refusal:
    message: str
    plan_code: str
    upgrade_url: str

    def error(self) -> PlanLimitReached:
        return PlanLimitReached(self.message, self.plan_code, self.upgrade_url)


def billing_url(organization_id: int) -> str:
    """The organization's billing page, where an Owner or Admin upgrades."""
    return f"/orgs/{organization_id}/billing"


@dataclass(frozen=True)
class Entitlements:
    organization_id: int
    plan: Plan
    limits: Limits

    def feature(self, feature: Feature) -> Refusal | None:
        if feature in self.plan.features:
            return None
        offer = cheapest_with(feature)
        return self._refuse(
            f"The {self.plan.display_name} plan does not include {feature.label}. Upgrade to "
            f"{offer.display_name} or above."
        )

    def one_more_site(self, sites: int) -> Refusal | None:
        return self._count(sites, self.limits.max_sites, "site", "sites")

    def one_more_member(self, members: int) -> Refusal | None:
        """`members` counts open invitations too: each one may become a member."""
        return self._count(members, self.limits.max_members, "member", "members")

    def one_more_alert(self, alerts: int) -> Refusal | None:
        return self._count(alerts, self.limits.max_alerts, "traffic alert", "traffic alerts")

    def data_since(self, start: dt.date, today: dt.date) -> Refusal | None:
        """May the dashboard or the API show data from `start` on (the plan's retention)?"""
        if start >= self.oldest_visible_day(today):
            return None
        months = self.limits.retention_months
        return self._refuse(
            f"The {self.plan.display_name} plan shows the last {months} months of data: "
            f"{start.isoformat()} is older."
        )

    def oldest_visible_day(self, today: dt.date) -> dt.date:
        return months_before(today, self.limits.retention_months)

    def _count(self, current: int, limit: int, one: str, many: str) -> Refusal | None:
        if current < limit:
            return None
        noun = one if limit == 1 else many
        return self._refuse(
            f"The {self.plan.display_name} plan allows {limit} {noun} per organization, and "
            f"this one has {current}. Upgrade to add more."
        )

    def _refuse(self, message: str) -> Refusal:
        return Refusal(message, self.plan.code, billing_url(self.organization_id))


def entitlements_of(profile: BillingProfile) -> Entitlements:
    plan = plan_named(profile.plan_code)
    limits = Limits.of(plan)
    if plan is ENTERPRISE:
        limits = Limits(
            _override(profile.custom_monthly_event_limit, limits.monthly_event_limit),
            _override(profile.custom_max_sites, limits.max_sites),
            _override(profile.custom_max_members, limits.max_members),
            _override(profile.custom_max_alerts, limits.max_alerts),
            _override(profile.custom_retention_months, limits.retention_months),
        )
    return Entitlements(profile.organization_id, plan, limits)


def _override(custom: int | None, default: int) -> int:
    return default if custom is None else custom


def months_before(day: dt.date, months: int) -> dt.date:
    """The same day `months` months earlier (the month's last day where it is shorter)."""
    index = day.year * 12 + day.month - 1 - months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return dt.date(year, month + 1, min(day.day, last))


def require(refusal: Refusal | None) -> None:
    if refusal is not None:
        raise refusal.error()


async def load(session: AsyncSession, organization_id: int) -> Entitlements:
    """The organization's entitlements; an organization without a profile is on Free."""
    query = select(BillingProfile).where(BillingProfile.organization_id == organization_id)
    profile = (await session.exec(query)).first()
    return entitlements_of(profile or BillingProfile(organization_id=organization_id))


async def ensure_feature(sessions: SessionMaker, organization_id: int, feature: Feature) -> None:
    """`PlanLimitReached` unless the organization's plan includes `feature`."""
    async with sessions() as session:
        require((await load(session, organization_id)).feature(feature))


async def ensure_site_feature(sessions: SessionMaker, site: Site, feature: Feature) -> None:
    """`ensure_feature` for the organization of `site` (one a member reached, so it has one)."""
    assert site.organization_id is not None, "a member's site belongs to an organization"
    await ensure_feature(sessions, site.organization_id, feature)


async def ensure_site_slot(session: AsyncSession, organization_id: int) -> None:
    """`PlanLimitReached` when the organization has as many sites as its plan allows."""
    await lock_organization(session, organization_id)
    sites = await site_count(session, organization_id)
    require((await load(session, organization_id)).one_more_site(sites))


async def ensure_member_slot(session: AsyncSession, organization_id: int) -> None:
    """`PlanLimitReached` when members plus open invitations fill the plan's member limit."""
    await lock_organization(session, organization_id)
    members = await member_count(session, organization_id)
    require((await load(session, organization_id)).one_more_member(members))


async def site_count(session: AsyncSession, organization_id: int) -> int:
    query = select(func.count(col(Site.id))).where(Site.organization_id == organization_id)
    return (await session.exec(query)).one()


async def member_count(session: AsyncSession, organization_id: int) -> int:
    """Members, and open invitations that have not expired (each may become a member)."""
    members = select(func.count(col(Membership.id))).where(
        Membership.organization_id == organization_id
    )
    invited = select(func.count(col(Invitation.id))).where(
        Invitation.organization_id == organization_id,
        col(Invitation.accepted_at).is_(None),
        col(Invitation.expires_at) > utcnow(),
    )
    return (await session.exec(members)).one() + (await session.exec(invited)).one()
