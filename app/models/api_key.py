"""A Stats API key of a user."""

from __future__ import annotations

import datetime as dt

from sqlmodel import Field, SQLModel

from app.models.columns import UTCDateTime, utcnow


class ApiKey(SQLModel, table=True):
    """A bearer key for the Stats API, reaching the sites its user may read.

    Only `key_hash` (SHA-256 of the key, which carries 256 random bits) is stored; `prefix`, the
    key's first characters, tells keys apart in the list. Revoking sets `revoked_at`: the row
    stays, so the list can show what was revoked and when.
    """

    __tablename__ = "api_keys"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", ondelete="CASCADE", index=True)
    name: str = Field(max_length=100)
    prefix: str = Field(max_length=16)
    key_hash: str = Field(max_length=64, unique=True, index=True)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_used_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    revoked_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
