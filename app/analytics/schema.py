"""ClickHouse schema runner: applies `migrations/clickhouse/NNNN_*.sql` in order, once each.

Applied versions are recorded in `schema_migrations`. Callers hold a lock while migrating
(`ursa migrate` and `ursa serve` take a Redis lock), so two processes never race.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from app.analytics.clickhouse import Gateway

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations" / "clickhouse"
_NAME = re.compile(r"^(\d{4})_[\w-]+\.sql$")

_CREATE_LEDGER = """
CREATE TABLE IF NOT EXISTS schema_migrations
(version UInt32, name String, applied_at DateTime('UTC') DEFAULT now())
ENGINE = MergeTree ORDER BY version
"""


def migration_files(folder: Path = MIGRATIONS_DIR) -> list[tuple[int, Path]]:
    found = []
    for path in folder.iterdir():
        match = _NAME.match(path.name)
        if match:
            found.append((int(match.group(1)), path))
    return sorted(found)


def statements(sql: str) -> list[str]:
    """Split a migration file into statements, dropping `--` comment lines."""
    lines = [line for line in sql.splitlines() if not line.lstrip().startswith("--")]
    return [part.strip() for part in "\n".join(lines).split(";") if part.strip()]


def migrate(gateway: Gateway, folder: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply pending migrations; return the names applied."""
    gateway.command(_CREATE_LEDGER)
    done = {row["version"] for row in gateway.query("schema_versions", _APPLIED)}
    applied = []
    for version, path in migration_files(folder):
        if version in done:
            continue
        for statement in statements(path.read_text()):
            gateway.command(statement)
        gateway.insert("schema_migrations", ["version", "name"], [[version], [path.name]])
        log.info("applied ClickHouse migration %s", path.name)
        applied.append(path.name)
    return applied


_APPLIED = "SELECT version FROM schema_migrations"
