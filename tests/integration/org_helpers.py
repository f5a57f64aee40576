"""Helpers of the organization and invitation tests: forms, memberships, invitation links."""

from __future__ import annotations

import secrets

import httpx
from sqlmodel import col, select

from app.models import BillingProfile, Invitation, Membership, Role, Site, User
from app.services import Services
from tests.conftest import csrf_token
from tests.integration.jobs import emails_to, link_in, run_jobs


async def submit(client: httpx.AsyncClient, path: str, **fields: str) -> httpx.Response:
    """POST a form as the logged-in browser would (with a fresh CSRF token from `/orgs`)."""
    token = await csrf_token(client, "/orgs")
    return await client.post(path, data={**fields, "csrf_token": token})


async def own_organization(services: Services, user: User) -> int:
    """The id of the organization `create_user` made for `user` (their first membership)."""
    async with services.sessions() as session:
        query = select(Membership).where(Membership.user_id == user.id).order_by(col(Membership.id))
        return (await session.exec(query)).first().organization_id  # type: ignore[union-attr]


async def role_in(services: Services, user: User, org_id: int) -> Role | None:
    async with services.sessions() as session:
        query = select(Membership.role).where(
            Membership.user_id == user.id, Membership.organization_id == org_id
        )
        role = (await session.exec(query)).first()
    return Role(role) if role is not None else None


async def add_member(services: Services, user: User, org_id: int, role: Role) -> None:
    assert user.id is not None
    async with services.sessions() as session:
        session.add(Membership(user_id=user.id, organization_id=org_id, role=role))
        await session.commit()


async def set_plan(services: Services, org_id: int, code: str, **custom: int | None) -> None:
    """Put the organization on the plan `code` (with Enterprise's `custom_*` limits, if given),
    as the Stripe webhook or staff would."""
    async with services.sessions() as session:
        query = select(BillingProfile).where(BillingProfile.organization_id == org_id)
        profile = (await session.exec(query)).one()
        profile.plan_code = code
        for name, value in custom.items():
            setattr(profile, name, value)
        session.add(profile)
        await session.commit()


async def move_site(services: Services, domain: str, org_id: int) -> None:
    async with services.sessions() as session:
        site = (await session.exec(select(Site).where(Site.domain == domain))).one()
        site.organization_id = org_id
        session.add(site)
        await session.commit()


async def invitations_of(services: Services, org_id: int) -> list[Invitation]:
    async with services.sessions() as session:
        query = select(Invitation).where(Invitation.organization_id == org_id)
        return list((await session.exec(query)).all())


def new_address() -> str:
    return f"invitee-{secrets.token_hex(6)}@example.com"


async def invite(
    services: Services, client: httpx.AsyncClient, org_id: int, email: str, role: str = "viewer"
) -> str:
    """Invite `email` through the form, run the jobs; the path of the link in the email."""
    response = await submit(client, f"/orgs/{org_id}/invitations", email=email, role=role)
    assert response.status_code == 303, response.text
    run_jobs(services)
    return link_in(emails_to(services, email.strip().lower())[-1], "/invitations/")
