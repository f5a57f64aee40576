"""site hostnames: the hostnames a site accepts events from

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26

`sites.allowed_hostnames` is a JSON list of normalised entries; existing sites get `[]`, which
allows any hostname (the behaviour before this revision).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sites") as batch:
        batch.add_column(
            sa.Column("allowed_hostnames", sa.JSON(), nullable=False, server_default="[]")
        )


def downgrade() -> None:
    with op.batch_alter_table("sites") as batch:
        batch.drop_column("allowed_hostnames")
