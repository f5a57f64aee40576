"""What the billing page shows of an organization: its plan and limits, what it uses of them,
and the state of its Stripe subscription, computed before rendering."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import select

from app.billing.entitlements import Entitlements, entitlements_of, member_count, site_count
from app.billing.plans import ALL_PLANS, Plan
from app.db import SessionMaker
from app.errors import NotFound
from app.models import BillingProfile, Organization


@dataclass(frozen=True)
class BillingOverview:
    organization: Organization
    profile: BillingProfile
    entitlements: Entitlements
    sites: int
    members: int  # members and open invitations

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
    return BillingOverview(organization, profile, entitlements_of(profile), sites, members)
