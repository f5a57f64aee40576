"""site ids are never reused on SQLite

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26

SQLite hands out the highest id + 1, so a site added after the newest one was deleted would get
its id, and with it any analytics rows of the deleted site not yet erased. AUTOINCREMENT keeps a
high-water mark instead. Postgres sequences never go back: nothing to do there.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _rebuild_sites(autoincrement: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    kwargs = {"sqlite_autoincrement": autoincrement}
    with op.batch_alter_table("sites", recreate="always", table_kwargs=kwargs):
        pass


def upgrade() -> None:
    _rebuild_sites(True)


def downgrade() -> None:
    _rebuild_sites(False)
