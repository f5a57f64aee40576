"""What staff change by hand on an organization's billing: its plan (an installation without
Stripe, a deal made elsewhere). The admin section will call the same functions."""

from __future__ import annotations

from sqlmodel import select

from app.billing.plans import PLANS_BY_CODE, Plan
from app.billing.webhook import on_plan_changed
from app.db import SessionMaker
from app.errors import InvalidInput, NotFound
from app.models import BillingProfile


async def set_plan(sessions: SessionMaker, organization_id: int, code: str) -> Plan:
    """Put the organization on the plan `code`; its data and Stripe state are left as they are
    (a later Stripe event for its subscription changes the plan again)."""
    plan = PLANS_BY_CODE.get(code)
    if plan is None:
        raise InvalidInput(f"unknown plan {code[:40]!r}; use one of {', '.join(PLANS_BY_CODE)}")
    async with sessions() as session, session.begin():
        query = select(BillingProfile).where(BillingProfile.organization_id == organization_id)
        profile = (await session.exec(query)).first()
        if profile is None:
            raise NotFound(f"no organization with the id {organization_id}")
        profile.plan_code = plan.code
        session.add(profile)
    on_plan_changed(organization_id)
    return plan
