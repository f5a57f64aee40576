"""The gateway's inserts (Arrow tables typed from the table's columns) round-trip every type."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import pytest

from app.analytics.clickhouse.gateway import ClickHouse, ClickHouseError

COLUMNS = ("id", "at", "flag", "small", "name", "text", "props", "amount", "timing", "share")


@pytest.fixture
def table(clickhouse: ClickHouse):
    name = f"gateway_{uuid.uuid4().hex[:8]}"
    clickhouse.command(
        f"""
        CREATE TABLE {name} (
            id UInt64, at DateTime('UTC'), flag Bool, small Int8,
            name LowCardinality(String), text String,
            props Map(LowCardinality(String), String), amount Decimal64(3),
            timing Nullable(UInt32), share Nullable(Float32)
        ) ENGINE = MergeTree ORDER BY id
        SETTINGS non_replicated_deduplication_window = 100
        """
    )
    yield name
    clickhouse.command(f"DROP TABLE {name}")


def _rows(clickhouse: ClickHouse, table: str) -> list[dict[str, Any]]:
    return clickhouse.query(
        "test_gateway_rows", f"SELECT *, toUnixTimestamp(at) AS seconds FROM {table} ORDER BY id"
    )


def test_insert_round_trips_every_column_type(clickhouse, table):
    data = [
        [1, 2**64 - 1],
        [1_700_000_000, 1_700_000_001],
        [True, False],
        [-3, 7],
        ["pageview", "signup"],
        ["/a", "/b"],
        [{}, {"plan": "pro", "seats": "3"}],
        [Decimal(0), Decimal("12.345")],
        [None, 250],
        [0.125, None],
    ]
    assert clickhouse.insert(table, COLUMNS, data) == 2
    first, second = _rows(clickhouse, table)
    assert (first["id"], second["id"]) == (1, 2**64 - 1)
    assert (first["seconds"], second["seconds"]) == (1_700_000_000, 1_700_000_001)
    assert (first["flag"], second["flag"], first["small"], second["small"]) == (True, False, -3, 7)
    assert (first["name"], second["name"], first["text"]) == ("pageview", "signup", "/a")
    assert (first["props"], second["props"]) == ({}, {"plan": "pro", "seats": "3"})
    assert (first["amount"], second["amount"]) == (Decimal("0.000"), Decimal("12.345"))
    assert (first["timing"], second["timing"]) == (None, 250)
    assert (first["share"], second["share"]) == (0.125, None)


def test_a_token_deduplicates_the_block(clickhouse, table):
    data = [[5], [1_700_000_000], [True], [0], ["x"], [""], [{}], [Decimal(0)], [None], [None]]
    for _ in range(2):
        clickhouse.insert(table, COLUMNS, data, token="same")
    assert len(_rows(clickhouse, table)) == 1


def test_columns_added_by_a_command_can_be_inserted(clickhouse, table):
    data = [[9], [1_700_000_000], [True], [0], ["x"], [""], [{}], [Decimal(0)], [None], [None]]
    clickhouse.insert(table, COLUMNS, data)  # the table's column types are now known
    clickhouse.command(f"ALTER TABLE {table} ADD COLUMN extra LowCardinality(String)")
    clickhouse.insert(table, (*COLUMNS, "extra"), [[10], *data[1:], ["new"]])
    assert [row["extra"] for row in _rows(clickhouse, table)] == ["", "new"]


def test_failures_are_clickhouse_errors(clickhouse, table):
    with pytest.raises(ClickHouseError, match="insert into"):
        clickhouse.insert(table, ("id", "nope"), [[1], [2]])
    with pytest.raises(ClickHouseError, match="insert into"):
        clickhouse.insert(f"{table}_missing", ("id",), [[1]])
