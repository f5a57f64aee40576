"""User accounts: creating users with their first organization, finding them by email."""

from __future__ import annotations

import asyncio

from sqlalchemy.exc import IntegrityError
from sqlmodel import SQLModel, select

from app.accounts.passwords import hash_password
from app.addresses.emails import normalize_email
from app.db import SessionMaker
from app.errors import Conflict, InvalidInput
from app.models import BillingProfile, Membership, Organization, Role, User
from app.models.columns import utcnow


async def create_user(
    sessions: SessionMaker,
    email: str,
    password: str,
    *,
    staff: bool = False,
    verified: bool = False,
) -> User:
    """A new user, owner of a new organization (named after the email's local part) on the
    free plan, all in one transaction. `Conflict` if the email is taken."""
    address = normalize_email(email)
    password_hash = await hash_in_thread(password)  # checks it; ~40 ms of CPU
    user = User(
        email=address,
        password_hash=password_hash,
        is_staff=staff,
        email_verified_at=utcnow() if verified else None,
    )
    organization = Organization(name=address.split("@", 1)[0])
    try:
        async with sessions() as session, session.begin():
            session.add_all([user, organization])
            await session.flush()
            assert user.id is not None
            assert organization.id is not None
            session.add_all(founding_rows(organization.id, user.id))
    except IntegrityError:
        raise Conflict(f"a user with the email {address} already exists") from None
    return user


def founding_rows(organization_id: int, user_id: int) -> list[SQLModel]:
    """What a new organization starts with: its creator as Owner, and the free plan."""
    return [
        Membership(user_id=user_id, organization_id=organization_id, role=Role.OWNER),
        BillingProfile(organization_id=organization_id),
    ]


async def get_user_by_email(sessions: SessionMaker, email: str) -> User | None:
    """The user with this email (soft-deleted ones included), None for no user or no email."""
    try:
        address = normalize_email(email)
    except InvalidInput:
        return None
    async with sessions() as session:
        return (await session.exec(select(User).where(User.email == address))).first()


async def hash_in_thread(password: str) -> str:
    """`hash_password` off the event loop (~40 ms of CPU)."""
    return await asyncio.to_thread(hash_password, password)


async def store_password_hash(sessions: SessionMaker, user: User, password_hash: str) -> None:
    async with sessions() as session:
        user.password_hash = password_hash
        session.add(user)
        await session.commit()
        await session.refresh(user)
