"""A tracked website."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy import JSON
from sqlmodel import Field, SQLModel

from app.models.columns import UTCDateTime, utcnow


class Site(SQLModel, table=True):
    __tablename__ = "sites"
    # Ids are never reused on SQLite either: a new site must not inherit a deleted one's id.
    __table_args__ = {"sqlite_autoincrement": True}

    id: int | None = Field(default=None, primary_key=True)
    domain: str = Field(max_length=253, unique=True, index=True)
    timezone: str = Field(default="UTC", max_length=64)
    # Nullable until sites are added through the web flows (`ursa sites add` sets none).
    organization_id: int | None = Field(default=None, foreign_key="organizations.id", index=True)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # Normalised entries (`app.addresses.hostnames`), sorted; empty: any hostname.
    # A JSON list rather than a child table: read whole with the site by the ingest cache,
    # never searched, and JSON works alike on SQLite and Postgres. Assign a new list to change it.
    allowed_hostnames: list[str] = Field(
        default_factory=list, sa_type=JSON, sa_column_kwargs={"server_default": "[]"}
    )
    # Goal names (`app.sites.goals`): a custom event's name, or `Visit <path pattern>`.
    goals: list[str] = Field(
        default_factory=list, sa_type=JSON, sa_column_kwargs={"server_default": "[]"}
    )
    # Saved filter sets (`app.sites.segments`): {"name": ..., "filters": [URL filters]}.
    segments: list[dict[str, Any]] = Field(
        default_factory=list, sa_type=JSON, sa_column_kwargs={"server_default": "[]"}
    )
    # A public dashboard is readable by anyone at /share/<domain>, without an account.
    public: bool = Field(default=False, sa_column_kwargs={"server_default": sa.false()})


class SharedLink(SQLModel, table=True):
    """A read-only link to a site's dashboard: `/share/<slug>`, optionally password protected.

    The slug is random (128 bits) and is the secret; revoking deletes the row.
    """

    __tablename__ = "shared_links"

    id: int | None = Field(default=None, primary_key=True)
    site_id: int = Field(foreign_key="sites.id", ondelete="CASCADE", index=True)
    slug: str = Field(max_length=32, unique=True, index=True)
    label: str = Field(default="", max_length=100)
    password_hash: str | None = Field(default=None, max_length=255)
    created_by_id: int | None = Field(default=None, foreign_key="users.id", ondelete="SET NULL")
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
