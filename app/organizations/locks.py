"""The row lock that serializes changes to what an organization holds (members, sites)."""

from __future__ import annotations

from sqlalchemy import update
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from app.errors import NotFound
from app.models import Organization


async def lock_organization(session: AsyncSession, organization_id: int) -> None:
    """Serialize membership and site changes of a live organization until the transaction ends.

    A no-op write of a non-key column: on Postgres it locks the row (without blocking the
    foreign-key checks of new memberships); on SQLite it takes the write lock before anything
    is read (its driver runs reads before the first write outside any transaction, so
    `SELECT … FOR UPDATE` would not do). `NotFound` when the organization is missing or awaits
    deletion.
    """
    statement = (
        update(Organization)
        .where(col(Organization.id) == organization_id, col(Organization.deleted_at).is_(None))
        .values(name=Organization.name)
    )
    if (await session.exec(statement)).rowcount != 1:
        raise NotFound("no such organization")
