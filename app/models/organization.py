"""Organizations (teams) and who belongs to them with which role."""

from __future__ import annotations

import datetime as dt
import enum

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from app.models.columns import UTCDateTime, utcnow


class Role(enum.StrEnum):
    OWNER = "owner"
    ADMIN = "admin"
    VIEWER = "viewer"


def role_type() -> sa.Enum:
    """A `Role` column: VARCHAR with a CHECK constraint, not a Postgres ENUM type.

    A new role is then a plain migration on both databases (no `ALTER TYPE`).
    """
    return sa.Enum(
        Role,
        name="role",
        native_enum=False,
        create_constraint=True,
        length=16,
        values_callable=lambda roles: [role.value for role in roles],
    )


class Organization(SQLModel, table=True):
    __tablename__ = "organizations"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # Set while its last owner's account awaits deletion: its sites stop accepting events and
    # its dashboards are hidden; the deletion job destroys it, a cancellation clears this.
    deleted_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)


class Membership(SQLModel, table=True):
    __tablename__ = "memberships"
    __table_args__ = (
        sa.UniqueConstraint("user_id", "organization_id", name="uq_memberships_user_organization"),
    )

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", ondelete="CASCADE")
    organization_id: int = Field(foreign_key="organizations.id", ondelete="CASCADE", index=True)
    role: Role = Field(sa_type=role_type())
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
