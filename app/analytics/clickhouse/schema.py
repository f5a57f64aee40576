"""ClickHouse schema runner: applies `migrations/clickhouse/NNNN_*.sql` in order, once each.

Applied versions are recorded in `schema_migrations`. Callers hold a lock while migrating
(`ursa migrate` and `ursa serve` take a Redis lock), so two processes never race. The files are
written for one node; with `CLICKHOUSE_CLUSTER` set each statement is rendered for the cluster
(`cluster_statements`).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from app.analytics.clickhouse.gateway import Gateway
from app.errors import AppError

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parents[3] / "migrations" / "clickhouse"
_NAME = re.compile(r"^(\d{4})_[\w-]+\.sql$")

LOCAL_SUFFIX = "_local"
SHARDING_KEY = "site_id"
REPLICA_PATH = "/clickhouse/tables/{shard}/{database}/{table}"
DEDUP_WINDOW_BLOCKS = 1000
DEDUP_WINDOW_SECONDS = 7 * 24 * 3600

_CREATE_LEDGER = """
CREATE TABLE IF NOT EXISTS schema_migrations
(version UInt32, name String, applied_at DateTime('UTC') DEFAULT now())
ENGINE = MergeTree ORDER BY version
"""
# In a cluster the ledger is one table replicated to every node (no `{shard}` in its path), so
# `ursa migrate` sees the same versions whichever node it reaches.
_CREATE_CLUSTER_LEDGER = """
CREATE TABLE IF NOT EXISTS schema_migrations ON CLUSTER {cluster}
(version UInt32, name String, applied_at DateTime('UTC') DEFAULT now())
ENGINE = ReplicatedMergeTree('/clickhouse/tables/all/{{database}}/{{table}}', '{{replica}}')
ORDER BY version
"""
_APPLIED = "SELECT version FROM schema_migrations"

_CLUSTER_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
_CREATE_TABLE = re.compile(r"^CREATE TABLE IF NOT EXISTS (\w+)\s*\(", re.IGNORECASE)
_CREATE_VIEW = re.compile(
    r"^CREATE MATERIALIZED VIEW IF NOT EXISTS (\w+) TO (\w+) AS\b", re.IGNORECASE
)
_ALTER_TABLE = re.compile(r"^ALTER TABLE (\w+) ((?:ADD|DROP|MODIFY|RENAME) COLUMN\b)", re.I)
_MODIFY_QUERY = re.compile(r"^ALTER TABLE (\w+) MODIFY QUERY\b", re.IGNORECASE)
_INSERT_SELECT = re.compile(r"^(INSERT INTO \w+ \([\w, ]+\))\s+(SELECT\b)", re.IGNORECASE)
_ENGINE = re.compile(r"ENGINE = (\w*)MergeTree\b")
_DEDUP = re.compile(r"\bnon_replicated_deduplication_window = \d+")
_FROM = re.compile(r"\bFROM (\w+)\b")


class ClusterRenderError(AppError):
    """A migration statement has no cluster form (the message names it)."""


def migration_files(folder: Path = MIGRATIONS_DIR) -> list[tuple[int, Path]]:
    """The migration files of `folder` as (version, path), in version order."""
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


def render(sql: str, cluster: str = "") -> list[str]:
    """The statements to run for a migration file: as written, or rendered for `cluster`."""
    if not cluster:
        return statements(sql)
    return [out for statement in statements(sql) for out in cluster_statements(statement, cluster)]


def cluster_statements(statement: str, cluster: str) -> list[str]:
    """One single-node statement rendered for `cluster`, by the rules of docs/operations.md
    ("ClickHouse cluster").

    The app reads and writes the `Distributed` table `t`, so its queries are the same in both
    modes, and a retried batch (same rows, same token) reaches the same shard. `ALTER TABLE t`
    changes the columns of both `t_local` and `t`; `MODIFY QUERY` makes a view read `_local`
    tables as `CREATE MATERIALIZED VIEW` does. In `INSERT INTO t … SELECT … FROM s` each shard
    reads its own `s_local` and writes its own `t_local`, which holds because both are sharded by
    `site_id`. Any other statement raises `ClusterRenderError` naming it, so a new kind of
    statement gets a rule here before it reaches a cluster.
    """
    on_cluster = f"ON CLUSTER {quoted_cluster(cluster)}"
    if table := _CREATE_TABLE.match(statement):
        return _replicated_table(statement, table[1], on_cluster, cluster)
    if view := _CREATE_VIEW.match(statement):
        head = (
            f"CREATE MATERIALIZED VIEW IF NOT EXISTS {view[1]} {on_cluster} "
            f"TO {view[2]}{LOCAL_SUFFIX} AS"
        )
        return [head + _local_sources(statement[view.end() :])]
    if view := _MODIFY_QUERY.match(statement):
        head = f"ALTER TABLE {view[1]} {on_cluster} MODIFY QUERY"
        return [head + _local_sources(statement[view.end() :])]
    if insert := _INSERT_SELECT.match(statement):
        settings = "SETTINGS parallel_distributed_insert_select = 2"
        return [f"{insert[1]}\n{settings}\n{statement[insert.start(2) :]}"]
    if alter := _ALTER_TABLE.match(statement):
        rest = statement[alter.start(2) :]
        local = f"ALTER TABLE {alter[1]}{LOCAL_SUFFIX} {on_cluster} {rest}"
        return [local, f"ALTER TABLE {alter[1]} {on_cluster} {rest}"]
    first_line = statement.splitlines()[0]
    raise ClusterRenderError(f"no cluster rendering for the migration statement: {first_line}")


def _local_sources(select: str) -> str:
    """A view's query reading the `_local` tables of the node it runs on."""
    return _FROM.sub(rf"FROM \1{LOCAL_SUFFIX}", select)


def _replicated_table(statement: str, name: str, on_cluster: str, cluster: str) -> list[str]:
    local = f"{name}{LOCAL_SUFFIX}"
    head = f"CREATE TABLE IF NOT EXISTS {local} {on_cluster}\n("
    body = statement[statement.index("(") + 1 :]
    engine = _ENGINE.search(body)
    if engine is None:
        raise ClusterRenderError(f"table {name} has no MergeTree engine to replicate")
    body = _ENGINE.sub(rf"ENGINE = Replicated\1MergeTree('{REPLICA_PATH}', '{{replica}}')", body)
    body = _DEDUP.sub(
        f"replicated_deduplication_window = {DEDUP_WINDOW_BLOCKS}, "
        f"replicated_deduplication_window_seconds = {DEDUP_WINDOW_SECONDS}",
        body,
    )
    distributed = (
        f"CREATE TABLE IF NOT EXISTS {name} {on_cluster} AS {local}\n"
        f"ENGINE = Distributed({quoted_cluster(cluster)}, currentDatabase(), '{local}', "
        f"{SHARDING_KEY})"
    )
    return [head + body, distributed]


def quoted_cluster(cluster: str) -> str:
    """`cluster` as a SQL string literal; names other than [A-Za-z0-9_.-] are refused."""
    if not _CLUSTER_NAME.match(cluster):
        raise ClusterRenderError(
            f"CLICKHOUSE_CLUSTER {cluster!r} is not a valid cluster name (letters, digits, _ . -)"
        )
    return f"'{cluster}'"


def ledger_statement(cluster: str = "") -> str:
    """The statement that creates `schema_migrations`."""
    if not cluster:
        return _CREATE_LEDGER
    return _CREATE_CLUSTER_LEDGER.format(cluster=quoted_cluster(cluster))


def migrate(gateway: Gateway, folder: Path = MIGRATIONS_DIR, cluster: str = "") -> list[str]:
    """Apply pending migrations (rendered for `cluster` when one is named); return their names."""
    gateway.command(ledger_statement(cluster))
    done = {row["version"] for row in gateway.query("schema_versions", _APPLIED)}
    applied = []
    for version, path in migration_files(folder):
        if version in done:
            continue
        for statement in render(path.read_text(), cluster):
            gateway.command(statement)
        gateway.insert("schema_migrations", ["version", "name"], [[version], [path.name]])
        log.info("applied ClickHouse migration %s", path.name)
        applied.append(path.name)
    return applied
