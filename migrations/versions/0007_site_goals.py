"""site goals: the conversions a site counts

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07

`sites.goals` is a JSON list of goal names: a custom event's name, or `Visit <path pattern>`
for a page goal (`*` matches any characters). Existing sites get `[]`.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sites") as batch:
        batch.add_column(sa.Column("goals", sa.JSON(), nullable=False, server_default="[]"))


def downgrade() -> None:
    with op.batch_alter_table("sites") as batch:
        batch.drop_column("goals")
