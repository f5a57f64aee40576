"""security: 2FA, recovery codes, account tokens, shared links, public sites, soft deletion

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _string(length: int) -> sqlmodel.sql.sqltypes.AutoString:
    return sqlmodel.sql.sqltypes.AutoString(length=length)


def _moment(name: str, *, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _user_id(ondelete: str = "CASCADE", *, name: str = "user_id") -> sa.Column:
    return sa.Column(
        name,
        sa.Integer(),
        sa.ForeignKey("users.id", ondelete=ondelete),
        nullable=ondelete != "CASCADE",
    )


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("totp_secret", _string(64), nullable=True))
        batch.add_column(_moment("totp_enabled_at", nullable=True))
    with op.batch_alter_table("organizations") as batch:
        batch.add_column(_moment("deleted_at", nullable=True))
    with op.batch_alter_table("sites") as batch:
        batch.add_column(
            sa.Column("public", sa.Boolean(), nullable=False, server_default=sa.false())
        )

    op.create_table(
        "recovery_codes",
        sa.Column("id", sa.Integer(), primary_key=True),
        _user_id(),
        sa.Column("code_hash", _string(64), nullable=False),
        _moment("used_at", nullable=True),
    )
    op.create_index("ix_recovery_codes_user_id", "recovery_codes", ["user_id"])

    op.create_table(
        "account_tokens",
        sa.Column("id", sa.Integer(), primary_key=True),
        _user_id(),
        sa.Column("purpose", _string(32), nullable=False),
        sa.Column("email", _string(254), nullable=False),
        sa.Column("token_hash", _string(64), nullable=False),
        _moment("created_at"),
        _moment("expires_at"),
        _moment("used_at", nullable=True),
    )
    op.create_index("ix_account_tokens_user_id", "account_tokens", ["user_id"])
    op.create_index("ix_account_tokens_token_hash", "account_tokens", ["token_hash"], unique=True)

    op.create_table(
        "shared_links",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "site_id", sa.Integer(), sa.ForeignKey("sites.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("slug", _string(32), nullable=False),
        sa.Column("label", _string(100), nullable=False),
        sa.Column("password_hash", _string(255), nullable=True),
        _user_id("SET NULL", name="created_by_id"),
        _moment("created_at"),
    )
    op.create_index("ix_shared_links_site_id", "shared_links", ["site_id"])
    op.create_index("ix_shared_links_slug", "shared_links", ["slug"], unique=True)


def downgrade() -> None:
    for table in ("shared_links", "account_tokens", "recovery_codes"):
        op.drop_table(table)
    with op.batch_alter_table("sites") as batch:
        batch.drop_column("public")
    with op.batch_alter_table("organizations") as batch:
        batch.drop_column("deleted_at")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("totp_enabled_at")
        batch.drop_column("totp_secret")
