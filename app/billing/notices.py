"""The billing emails to an organization's owners: what the metering job sends when its grace
period starts ("capacity depleted") and 2 days before it ends (the reminder), and the notice of
a failed payment (after Stripe's `invoice.payment_failed`).

`app.billing.capacity.transition` decides when, at most once per billing period each; this
module addresses and fills them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlmodel import col, select

from app.billing.capacity import Notice
from app.billing.entitlements import billing_url
from app.billing.metering import Metered
from app.billing.plans import plan_named
from app.db import SessionMaker
from app.models import BillingProfile, Membership, Organization, Role, User

DAY = "%Y-%m-%d %H:%M UTC"


@dataclass(frozen=True)
class Email:
    template: str
    to: str
    context: dict[str, Any]


async def _owners_and_names(
    sessions: SessionMaker, organization_id: int
) -> tuple[list[str], str, str]:
    owners = (
        select(User.email)
        .join(Membership, col(Membership.user_id) == col(User.id))
        .where(Membership.organization_id == organization_id, Membership.role == Role.OWNER)
        .where(col(User.deleted_at).is_(None))
        .order_by(col(User.email))
    )
    async with sessions() as session:
        addresses = list((await session.exec(owners)).all())
        organization = await session.get(Organization, organization_id)
        query = select(BillingProfile.plan_code).where(
            BillingProfile.organization_id == organization_id
        )
        plan_code = (await session.exec(query)).first() or ""
    name = organization.name if organization is not None else ""
    return addresses, name, plan_named(plan_code).display_name


async def capacity_emails(sessions: SessionMaker, metered: Metered, base_url: str) -> list[Email]:
    """The emails `metered.notices` asks for, one per owner and notice."""
    if not metered.notices:
        return []
    owners, organization_name, plan_name = await _owners_and_names(
        sessions, metered.organization_id
    )
    grace_ends = metered.state.grace_ends_at
    context = {
        "organization_name": organization_name,
        "plan_name": plan_name,
        "events": f"{metered.events:,}",
        "limit": f"{metered.limit:,}",
        "period": f"{metered.period.start:%Y-%m-%d} to {metered.period.end:%Y-%m-%d}",
        "period_ends": metered.period.end.strftime(DAY),
        "grace_ends": grace_ends.strftime(DAY) if grace_ends is not None else "",
        "billing_url": base_url + billing_url(metered.organization_id),
    }
    order = (Notice.DEPLETED, Notice.REMINDER)
    return [
        Email(notice.value, owner, context)
        for notice in order
        if notice in metered.notices
        for owner in owners
    ]


async def payment_failed_emails(
    sessions: SessionMaker, organization_id: int, base_url: str
) -> list[Email]:
    """One email per owner: the payment failed, and where to update the card."""
    owners, organization_name, plan_name = await _owners_and_names(sessions, organization_id)
    context = {
        "organization_name": organization_name,
        "plan_name": plan_name,
        "billing_url": base_url + billing_url(organization_id),
    }
    return [Email("payment_failed", owner, context) for owner in owners]
