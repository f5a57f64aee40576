"""A tracked website."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlmodel import Field, SQLModel


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Site(SQLModel, table=True):
    __tablename__ = "sites"

    id: int | None = Field(default=None, primary_key=True)
    domain: str = Field(max_length=253, unique=True, index=True)
    timezone: str = Field(default="UTC", max_length=64)
    owner_id: int | None = Field(default=None, index=True)
    created_at: dt.datetime = Field(
        default_factory=_utcnow,
        sa_type=sa.DateTime(timezone=True),
    )
