"""Accounts on the app database: users with their first organization, and the account tables."""

from __future__ import annotations

import datetime as dt
import secrets

import pytest
from sqlalchemy.exc import IntegrityError
from sqlmodel import func, select

from app.accounts.passwords import verify_password
from app.accounts.users import create_user, get_user_by_email
from app.errors import Conflict, InvalidInput
from app.models import (
    INVITATION_LIFETIME,
    BillingProfile,
    Invitation,
    Membership,
    Organization,
    Role,
    User,
    hash_token,
)
from app.services import Services

pytestmark = pytest.mark.db

PASSWORD = "a long enough password"


@pytest.fixture
def email() -> str:
    """A fresh address (tests are isolated by it)."""
    return f"user-{secrets.token_hex(4)}@example.com"


@pytest.fixture
async def membership(services: Services, email: str) -> Membership:
    """A new user's Owner membership of their first organization."""
    user = await create_user(services.sessions, email, PASSWORD)
    async with services.sessions() as session:
        return (await session.exec(select(Membership).where(Membership.user_id == user.id))).one()


async def _organizations_named(sessions, name: str) -> list[Organization]:
    async with sessions() as session:
        return list(
            (await session.exec(select(Organization).where(Organization.name == name))).all()
        )


async def test_a_new_user_owns_a_new_organization_on_the_free_plan(services, email):
    user = await create_user(services.sessions, email.upper(), PASSWORD)
    assert (user.email, user.is_staff, user.email_verified_at) == (email, False, None)
    assert verify_password(user.password_hash, PASSWORD)
    async with services.sessions() as session:
        memberships = (
            await session.exec(select(Membership).where(Membership.user_id == user.id))
        ).all()
        assert [(m.role, m.user_id) for m in memberships] == [(Role.OWNER, user.id)]
        organization = await session.get(Organization, memberships[0].organization_id)
        assert organization is not None
        profile = (
            await session.exec(
                select(BillingProfile).where(BillingProfile.organization_id == organization.id)
            )
        ).one()
    assert organization.name == email.split("@")[0]
    assert profile.plan_code == "free"


async def test_staff_and_verified_users(services, email):
    before = dt.datetime.now(dt.UTC)
    await create_user(services.sessions, email, PASSWORD, staff=True, verified=True)
    user = await get_user_by_email(services.sessions, f"  {email.title()} ")
    assert user is not None
    assert user.is_staff
    assert user.email_verified_at is not None
    assert user.email_verified_at >= before
    assert user.created_at.tzinfo is not None


async def test_an_email_is_taken_once_and_a_refused_user_leaves_nothing(services, email):
    await create_user(services.sessions, email, PASSWORD)
    with pytest.raises(Conflict, match="already exists"):
        await create_user(services.sessions, email.upper(), PASSWORD + "!")
    assert len(await _organizations_named(services.sessions, email.split("@")[0])) == 1
    other = f"other-{email}"
    with pytest.raises(InvalidInput, match="at least 10 characters"):
        await create_user(services.sessions, other, "short")
    with pytest.raises(InvalidInput, match="not a valid email address"):
        await create_user(services.sessions, "not-an-email", PASSWORD)
    assert await get_user_by_email(services.sessions, other) is None
    assert await _organizations_named(services.sessions, other.split("@")[0]) == []


async def test_lookups_of_unknown_or_malformed_emails_find_nobody(services):
    assert await get_user_by_email(services.sessions, "nobody-here@example.com") is None
    assert await get_user_by_email(services.sessions, "<not an email>") is None


async def test_invitations_store_only_a_hash_and_expire_after_48_hours(services, membership):
    async with services.sessions() as session:
        invitation, token = Invitation.issue(
            membership.organization_id, "guest@example.com", Role.VIEWER, membership.user_id
        )
        session.add(invitation)
        await session.commit()
    async with services.sessions() as session:
        stored = (
            await session.exec(select(Invitation).where(Invitation.token_hash == hash_token(token)))
        ).one()
    assert token not in stored.token_hash
    assert stored.role is Role.VIEWER
    assert stored.expires_at - stored.created_at == INVITATION_LIFETIME
    assert stored.expires_at.tzinfo is not None
    assert stored.expires_at > dt.datetime.now(dt.UTC)


async def test_one_membership_per_user_and_organization(services, membership):
    async with services.sessions() as session:
        session.add(
            Membership(
                user_id=membership.user_id,
                organization_id=membership.organization_id,
                role=Role.VIEWER,
            )
        )
        with pytest.raises(IntegrityError):
            await session.commit()


async def test_deleting_an_organization_deletes_what_belongs_to_it(services, membership):
    organization_id = membership.organization_id
    async with services.sessions() as session:
        invitation, _ = Invitation.issue(
            organization_id, "guest@example.com", Role.ADMIN, membership.user_id
        )
        session.add(invitation)
        await session.commit()
        organization = await session.get(Organization, organization_id)
        assert organization is not None
        await session.delete(organization)
        await session.commit()
    async with services.sessions() as session:
        for table in (Membership, BillingProfile, Invitation):
            query = (
                select(func.count())
                .select_from(table)
                .where(table.organization_id == organization_id)
            )
            assert (await session.exec(query)).one() == 0, table.__name__
        assert await session.get(User, membership.user_id) is not None
