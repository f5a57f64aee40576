"""site segments: saved filter sets

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07

`sites.segments` is a JSON list of `{"name": ..., "filters": ["page:is:/x", ...]}`: filter
sets saved under a name, in the dashboard's URL form. Existing sites get `[]`.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sites") as batch:
        batch.add_column(sa.Column("segments", sa.JSON(), nullable=False, server_default="[]"))


def downgrade() -> None:
    with op.batch_alter_table("sites") as batch:
        batch.drop_column("segments")
