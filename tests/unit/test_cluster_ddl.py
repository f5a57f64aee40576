"""ClickHouse DDL for one node (the migration files as written) and for a cluster.

No cluster runs here, so the cluster DDL is checked as text, and ClickHouse's own parser (chDB's
`formatQuery`, in a process of its own) confirms that every rendered statement is valid SQL.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from typing import Any

import pytest

from app.analytics.clickhouse import schema

CLUSTER = "ursa_cluster"
ON_CLUSTER = f"ON CLUSTER '{CLUSTER}'"
REPLICATED = "('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')"
TABLES = {  # every table of the migrations and its engine family
    "events": "MergeTree",
    "performance": "MergeTree",
    "engagement": "MergeTree",
    "totals_hourly": "AggregatingMergeTree",
    "totals_daily": "AggregatingMergeTree",
    "breakdowns_daily": "AggregatingMergeTree",
    "vitals_daily": "AggregatingMergeTree",
    "engagement_daily": "AggregatingMergeTree",
}
ROLLUPS = [table for table, engine in TABLES.items() if engine == "AggregatingMergeTree"]
PARALLEL_INSERT = "SETTINGS parallel_distributed_insert_select = 2"
VIEWS = {  # materialized view → (rollup it writes, table it reads)
    "totals_hourly_mv": ("totals_hourly", "events"),
    "totals_daily_mv": ("totals_daily", "events"),
    "breakdowns_daily_mv": ("breakdowns_daily", "events"),
    "vitals_daily_mv": ("vitals_daily", "performance"),
    "engagement_daily_mv": ("engagement_daily", "engagement"),
}


def _migration_sql() -> str:
    return "\n".join(path.read_text() for _, path in schema.migration_files())


def _cluster_ddl() -> list[str]:
    return schema.render(_migration_sql(), CLUSTER)


def _one(ddl: list[str], prefix: str) -> str:
    found = [statement for statement in ddl if statement.startswith(prefix)]
    assert len(found) == 1, f"{len(found)} statements start with {prefix!r}"
    return found[0]


class RecordingGateway:
    """Records the statements `schema.migrate` sends (no engine involved)."""

    def __init__(self) -> None:
        self.commands: list[str] = []
        self.inserted: list[tuple[str, list[list[Any]]]] = []

    def command(self, sql: str, params: Any = None) -> None:
        self.commands.append(sql)

    def query(self, name: str, sql: str, params: Any = None) -> list[dict[str, Any]]:
        return []

    def insert(self, table: str, columns: Any, data: Any, token: str | None = None) -> int:
        self.inserted.append((table, [list(column) for column in data]))
        return 1


def test_single_node_ddl_is_the_files_as_written():
    for _, path in schema.migration_files():
        text = path.read_text()
        rendered = schema.render(text)
        without_comments = "\n".join(
            line for line in text.splitlines() if not line.lstrip().startswith("--")
        )
        assert len(rendered) == without_comments.count(";")
        for statement in rendered:
            assert f"{statement};" in text  # byte for byte, in the file's own order
        positions = [text.index(statement) for statement in rendered]
        assert positions == sorted(positions)


def test_single_node_migrate_sends_the_files_unchanged():
    gateway = RecordingGateway()
    applied = schema.migrate(gateway)  # type: ignore[arg-type]
    assert gateway.commands[0] == schema.ledger_statement()
    assert "ENGINE = MergeTree ORDER BY version" in gateway.commands[0]
    assert gateway.commands[1:] == schema.statements(_migration_sql())
    assert applied == [path.name for _, path in schema.migration_files()]


def test_every_cluster_statement_runs_on_the_whole_cluster():
    ddl = _cluster_ddl()
    assert ddl
    for statement in ddl:
        head = statement.splitlines()[0]
        if head.startswith("INSERT INTO"):  # no ON CLUSTER: every shard fills its own part
            assert statement.splitlines()[1] == PARALLEL_INSERT, head
        else:
            assert ON_CLUSTER in head, head
        assert "non_replicated_deduplication_window" not in statement


@pytest.mark.parametrize("table", TABLES)
def test_local_tables_are_replicated_with_a_dedup_window(table):
    local = _one(_cluster_ddl(), f"CREATE TABLE IF NOT EXISTS {table}_local ")
    assert local.startswith(f"CREATE TABLE IF NOT EXISTS {table}_local {ON_CLUSTER}\n(")
    assert f"ENGINE = Replicated{TABLES[table]}{REPLICATED}" in local
    assert "replicated_deduplication_window = 1000" in local
    assert "replicated_deduplication_window_seconds = 604800" in local
    assert "ORDER BY (site_id" in local  # the rest of the definition is kept


@pytest.mark.parametrize("table", ROLLUPS)
def test_local_rollups_keep_their_partitions_and_granule_size(table):
    local = _one(_cluster_ddl(), f"CREATE TABLE IF NOT EXISTS {table}_local ")
    assert "PARTITION BY toYear(" in local
    assert "_seconds = 604800, index_granularity_bytes = 262144" in local


@pytest.mark.parametrize("table", TABLES)
def test_app_tables_are_distributed_over_the_local_ones(table):
    distributed = _one(_cluster_ddl(), f"CREATE TABLE IF NOT EXISTS {table} ")
    assert distributed == (
        f"CREATE TABLE IF NOT EXISTS {table} {ON_CLUSTER} AS {table}_local\n"
        f"ENGINE = Distributed('{CLUSTER}', currentDatabase(), '{table}_local', site_id)"
    )


@pytest.mark.parametrize("view", VIEWS)
def test_materialized_views_feed_local_rollups_from_local_tables(view):
    rollup, source = VIEWS[view]
    statement = _one(_cluster_ddl(), f"CREATE MATERIALIZED VIEW IF NOT EXISTS {view} ")
    assert statement.startswith(
        f"CREATE MATERIALIZED VIEW IF NOT EXISTS {view} {ON_CLUSTER} TO {rollup}_local AS\n"
    )
    assert re.findall(r"\bFROM (\w+)", statement) == [f"{source}_local"]


def test_the_cluster_has_exactly_the_objects_of_one_node():
    ddl = _cluster_ddl()
    names = [re.match(r"CREATE (?:MATERIALIZED VIEW|TABLE) IF NOT EXISTS (\w+)", s) for s in ddl]
    created = {name[1] for name in names if name}
    assert created == {*TABLES, *(f"{table}_local" for table in TABLES), *VIEWS}
    assert len([name for name in names if name]) == len(created)


def test_cluster_migrate_keeps_a_ledger_replicated_to_every_node():
    gateway = RecordingGateway()
    schema.migrate(gateway, cluster=CLUSTER)  # type: ignore[arg-type]
    ledger = gateway.commands[0]
    assert f"CREATE TABLE IF NOT EXISTS schema_migrations {ON_CLUSTER}" in ledger
    assert "ReplicatedMergeTree('/clickhouse/tables/all/{database}/{table}', '{replica}')" in ledger
    assert gateway.commands[1:] == _cluster_ddl()
    migrations = len(schema.migration_files())
    assert [table for table, _ in gateway.inserted] == ["schema_migrations"] * migrations


def test_alter_table_changes_the_local_and_the_distributed_table():
    ddl = schema.render("ALTER TABLE events ADD COLUMN channel LowCardinality(String);", CLUSTER)
    assert ddl == [
        f"ALTER TABLE events_local {ON_CLUSTER} ADD COLUMN channel LowCardinality(String)",
        f"ALTER TABLE events {ON_CLUSTER} ADD COLUMN channel LowCardinality(String)",
    ]


def test_modify_query_alters_the_view_on_every_node_reading_local_tables():
    ddl = schema.render("ALTER TABLE totals_hourly_mv MODIFY QUERY\nSELECT 1 FROM events;", CLUSTER)
    assert ddl == [
        f"ALTER TABLE totals_hourly_mv {ON_CLUSTER} MODIFY QUERY\nSELECT 1 FROM events_local"
    ]


def test_insert_select_fills_each_shard_from_its_own_rows():
    sql = "INSERT INTO totals_hourly (site_id, hour)\nSELECT site_id, hour FROM events;"
    assert schema.render(sql, CLUSTER) == [
        f"INSERT INTO totals_hourly (site_id, hour)\n{PARALLEL_INSERT}\n"
        "SELECT site_id, hour FROM events"
    ]


@pytest.mark.parametrize(
    "statement",
    [
        "DROP TABLE events",
        "INSERT INTO totals_hourly VALUES (1)",
        "ALTER TABLE events DELETE WHERE site_id = 1",
        "CREATE TABLE IF NOT EXISTS t (x UInt8) ENGINE = Memory",
    ],
)
def test_statements_without_a_cluster_rule_are_refused(statement):
    with pytest.raises(schema.ClusterRenderError, match=r"cluster|MergeTree"):
        schema.render(f"{statement};", CLUSTER)


@pytest.mark.parametrize("name", ["ursa'; DROP TABLE events; --", "a b", "x{shard}"])
def test_cluster_names_outside_the_safe_alphabet_are_refused(name):
    with pytest.raises(schema.ClusterRenderError, match="not a valid cluster name"):
        schema.render(_migration_sql(), name)


_PARSE = """
import json, sys, chdb
for query in json.load(sys.stdin):
    try:
        chdb.query(query, "TSV")
        print("ok")
    except Exception as exc:
        print("error", str(exc).splitlines()[0])
"""


def _parse_results(ddl: list[str]) -> list[str]:
    """For each statement, "ok" or the parser's error, from ClickHouse's `formatQuery`."""
    literals = ["'" + sql.replace("\\", "\\\\").replace("'", "\\'") + "'" for sql in ddl]
    result = subprocess.run(
        [sys.executable, "-c", _PARSE],
        input=json.dumps([f"SELECT formatQuery({literal})" for literal in literals]),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return result.stdout.splitlines()


def test_cluster_ddl_parses_as_clickhouse_sql():
    ddl = [*_cluster_ddl(), schema.ledger_statement(CLUSTER)]
    broken = ddl[0].replace("(", "((", 1)  # an unmatched parenthesis
    results = _parse_results([*ddl, broken])
    assert results[:-1] == ["ok"] * len(ddl)
    assert results[-1].startswith("error")  # the check can fail


class _Recorder:
    """A gateway that records the commands it is given."""

    def __init__(self) -> None:
        self.commands: list[str] = []

    def command(self, sql: str, params: object = None) -> None:
        self.commands.append(sql)


def test_erasing_a_site_in_cluster_mode_mutates_the_local_tables_on_every_node():
    from app.analytics.clickhouse.erase import SITE_TABLES, erase_site

    single, cluster = _Recorder(), _Recorder()
    erase_site(single, 7)  # type: ignore[arg-type]
    erase_site(cluster, 7, "ursa")  # type: ignore[arg-type]
    assert [sql.split()[2] for sql in single.commands] == list(SITE_TABLES)
    assert [sql.split()[2:5] for sql in cluster.commands] == [
        [f"{table}_local", "ON", "CLUSTER"] for table in SITE_TABLES
    ]
    assert all("'ursa'" in sql for sql in cluster.commands)
