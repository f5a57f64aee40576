"""usage: the metering history and the capacity rule's state on the billing profile

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-08

Existing profiles start under their limit: no grace period, nothing refused, no email sent.
`usage_records` holds each count of an organization's billable events in a billing period.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MOMENTS = (
    "capacity_period_start",
    "grace_started_at",
    "grace_ends_at",
    "dropping_since",
    "depleted_email_period",
    "reminder_email_period",
)


def upgrade() -> None:
    with op.batch_alter_table("billing_profiles") as batch:
        for name in MOMENTS:
            batch.add_column(sa.Column(name, sa.DateTime(timezone=True), nullable=True))
        batch.add_column(
            sa.Column("refused_events", sa.Integer(), nullable=False, server_default="0")
        )
    op.create_table(
        "usage_records",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "organization_id",
            sa.Integer(),
            sa.ForeignKey("organizations.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("period_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("period_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("events", sa.Integer(), nullable=False),
        sa.Column("counted_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_usage_records_organization_id", "usage_records", ["organization_id"])


def downgrade() -> None:
    op.drop_index("ix_usage_records_organization_id", "usage_records")
    op.drop_table("usage_records")
    with op.batch_alter_table("billing_profiles") as batch:
        for name in (*MOMENTS, "refused_events"):
            batch.drop_column(name)
