"""billing: the Stripe subscription on the billing profile, enterprise limits, processed events

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-08

Existing profiles keep their plan and get no Stripe state (no customer yet, not cancelling).
`stripe_events` holds the ids of the Stripe events the webhook has applied, each once.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MOMENTS = (
    "current_period_start",
    "current_period_end",
    "payment_failed_at",
    "last_subscription_event_at",
    "last_invoice_event_at",
)
CUSTOM_LIMITS = (
    "custom_monthly_event_limit",
    "custom_max_sites",
    "custom_max_members",
    "custom_max_alerts",
    "custom_retention_months",
)


def _string(length: int) -> sqlmodel.sql.sqltypes.AutoString:
    return sqlmodel.sql.sqltypes.AutoString(length=length)


def upgrade() -> None:
    with op.batch_alter_table("billing_profiles") as batch:
        batch.add_column(sa.Column("stripe_customer_id", _string(255), nullable=True))
        batch.add_column(sa.Column("stripe_subscription_id", _string(255), nullable=True))
        batch.add_column(sa.Column("subscription_status", _string(32), nullable=True))
        for name in MOMENTS:
            batch.add_column(sa.Column(name, sa.DateTime(timezone=True), nullable=True))
        batch.add_column(
            sa.Column(
                "cancel_at_period_end", sa.Boolean(), nullable=False, server_default=sa.false()
            )
        )
        for name in CUSTOM_LIMITS:
            batch.add_column(sa.Column(name, sa.Integer(), nullable=True))
        batch.create_index(
            "ix_billing_profiles_stripe_customer_id", ["stripe_customer_id"], unique=True
        )
    op.create_table(
        "stripe_events",
        sa.Column("id", _string(255), primary_key=True),
        sa.Column("type", _string(64), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("stripe_events")
    with op.batch_alter_table("billing_profiles") as batch:
        batch.drop_index("ix_billing_profiles_stripe_customer_id")
        for name in (
            "stripe_customer_id",
            "stripe_subscription_id",
            "subscription_status",
            *MOMENTS,
            "cancel_at_period_end",
            *CUSTOM_LIMITS,
        ):
            batch.drop_column(name)
