"""An organization's billing profile (billing itself comes later)."""

from __future__ import annotations

import datetime as dt

from sqlmodel import Field, SQLModel

from app.models.columns import UTCDateTime, utcnow

FREE_PLAN = "free"


class BillingProfile(SQLModel, table=True):
    """Belongs to the organization, not to a user: one per organization."""

    __tablename__ = "billing_profiles"

    id: int | None = Field(default=None, primary_key=True)
    organization_id: int = Field(
        foreign_key="organizations.id", ondelete="CASCADE", unique=True, index=True
    )
    plan_code: str = Field(default=FREE_PLAN, max_length=32)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
