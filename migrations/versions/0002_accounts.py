"""accounts: users, organizations, memberships, invitations, billing profiles; sites by organization

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26

`sites.owner_id` pointed at nothing (there were no users); it is replaced by a nullable
`sites.organization_id` with a foreign key. Downgrading drops the accounts tables and restores an
empty `owner_id`.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SITES_FK = "fk_sites_organization_id_organizations"


def _string(length: int) -> sqlmodel.sql.sqltypes.AutoString:
    return sqlmodel.sql.sqltypes.AutoString(length=length)


def _moment(name: str, *, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _role() -> sa.Enum:
    return sa.Enum(
        "owner",
        "admin",
        "viewer",
        name="role",
        native_enum=False,
        create_constraint=True,
        length=16,
    )


def _organization_id() -> sa.Column:
    return sa.Column(
        "organization_id",
        sa.Integer(),
        sa.ForeignKey("organizations.id", ondelete="CASCADE"),
        nullable=False,
    )


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("email", _string(254), nullable=False),
        sa.Column("password_hash", _string(255), nullable=False),
        _moment("email_verified_at", nullable=True),
        sa.Column("is_staff", sa.Boolean(), nullable=False),
        _moment("created_at"),
        _moment("deleted_at", nullable=True),
    )
    op.create_index("ix_users_email", "users", ["email"], unique=True)

    op.create_table(
        "organizations",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", _string(100), nullable=False),
        _moment("created_at"),
    )

    op.create_table(
        "memberships",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "user_id",
            sa.Integer(),
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            nullable=False,
        ),
        _organization_id(),
        sa.Column("role", _role(), nullable=False),
        _moment("created_at"),
        sa.UniqueConstraint("user_id", "organization_id", name="uq_memberships_user_organization"),
    )
    op.create_index("ix_memberships_organization_id", "memberships", ["organization_id"])

    op.create_table(
        "invitations",
        sa.Column("id", sa.Integer(), primary_key=True),
        _organization_id(),
        sa.Column("email", _string(254), nullable=False),
        sa.Column("role", _role(), nullable=False),
        sa.Column("token_hash", _string(64), nullable=False),
        sa.Column(
            "invited_by_id",
            sa.Integer(),
            sa.ForeignKey("users.id", ondelete="SET NULL"),
            nullable=True,
        ),
        _moment("created_at"),
        _moment("expires_at"),
        _moment("accepted_at", nullable=True),
    )
    op.create_index("ix_invitations_organization_id", "invitations", ["organization_id"])
    op.create_index("ix_invitations_email", "invitations", ["email"])
    op.create_index("ix_invitations_token_hash", "invitations", ["token_hash"], unique=True)

    op.create_table(
        "billing_profiles",
        sa.Column("id", sa.Integer(), primary_key=True),
        _organization_id(),
        sa.Column("plan_code", _string(32), nullable=False),
        _moment("created_at"),
    )
    op.create_index(
        "ix_billing_profiles_organization_id",
        "billing_profiles",
        ["organization_id"],
        unique=True,
    )

    with op.batch_alter_table("sites") as batch:
        batch.drop_index("ix_sites_owner_id")
        batch.drop_column("owner_id")
        batch.add_column(sa.Column("organization_id", sa.Integer(), nullable=True))
        batch.create_index("ix_sites_organization_id", ["organization_id"])
        batch.create_foreign_key(SITES_FK, "organizations", ["organization_id"], ["id"])


def downgrade() -> None:
    with op.batch_alter_table("sites") as batch:
        batch.drop_constraint(SITES_FK, type_="foreignkey")
        batch.drop_index("ix_sites_organization_id")
        batch.drop_column("organization_id")
        batch.add_column(sa.Column("owner_id", sa.Integer(), nullable=True))
        batch.create_index("ix_sites_owner_id", ["owner_id"])
    for table in ("billing_profiles", "invitations", "memberships", "organizations", "users"):
        op.drop_table(table)
