"""A person who can log in."""

from __future__ import annotations

import datetime as dt

from sqlmodel import Field, SQLModel

from app.models.columns import UTCDateTime, utcnow


class User(SQLModel, table=True):
    """An account. `email` is stored normalised (see `app.accounts.normalize_email`).

    A soft-deleted user (`deleted_at` set) keeps its row, and its email, until the deletion job
    destroys it for good.
    """

    __tablename__ = "users"

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=254, unique=True, index=True)
    password_hash: str = Field(max_length=255)
    email_verified_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
    is_staff: bool = False
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    deleted_at: dt.datetime | None = Field(default=None, sa_type=UTCDateTime)
