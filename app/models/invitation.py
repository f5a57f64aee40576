"""An invitation to join an organization, sent by email."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from sqlmodel import Field, SQLModel

from app.models.columns import UTCDateTime, utcnow
from app.models.organization import Role, role_type

INVITATION_LIFETIME = dt.timedelta(hours=48)


def hash_token(token: str) -> str:
    """The stored form of a URL token: SHA-256 hex (a database leak reveals no usable link)."""
    return hashlib.sha256(token.encode()).hexdigest()


class Invitation(SQLModel, table=True):
    """Only `token_hash` is stored; the token itself exists in the emailed link alone."""

    __tablename__ = "invitations"

    id: int | None = Field(default=None, primary_key=True)
    organization_id: int = Field(foreign_key="organizations.id", ondelete="CASCADE", index=True)
    email: str = Field(max_length=254, index=True)
    role: Role = Field(sa_type=role_type())
    token_hash: str = Field(max_length=64, unique=True, index=True)
    invited_by_id: int | None = Field(default=None, foreign_key="users.id", ondelete="SET NULL")
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: dt.datetime = Field(sa_type=UTCDateTime)
    accepted_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)

    @classmethod
    def issue(
        cls, organization_id: int, email: str, role: Role, invited_by_id: int | None
    ) -> tuple[Invitation, str]:
        """A new invitation expiring in 48 hours, and the token for its link."""
        token = secrets.token_urlsafe(32)
        now = utcnow()
        invitation = cls(
            organization_id=organization_id,
            email=email,
            role=role,
            token_hash=hash_token(token),
            invited_by_id=invited_by_id,
            created_at=now,
            expires_at=now + INVITATION_LIFETIME,
        )
        return invitation, token
