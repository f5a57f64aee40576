"""The one ClickHouse gateway. No other module imports `clickhouse_connect`.

Every call goes through `query()`, `insert()` or `command()`, which set a `log_comment`, a server
side time limit and `async_insert=0`, time the call and wrap driver errors in `ClickHouseError`.
The embedded engine (chDB) has no async client and serializes calls, so async callers use the
`a*` variants, which run the sync call in a worker thread.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any, Protocol

import anyio.to_thread

log = logging.getLogger(__name__)

QUERY_TIME_LIMIT_SECONDS = 30
# chDB runs BACKUP and RESTORE only below a path set when the engine starts: `backups/` inside
# its directory (app/cli/backup.py moves backups out of there).
CHDB_OPTIONS = {"backups.allowed_path": "backups"}
Row = dict[str, Any]
# After `ALTER TABLE <view> MODIFY QUERY`, the view held in memory derives other deduplication
# tokens for its target than the same view loaded from its metadata at the next start: an insert
# replayed after a restart with the token of its first attempt (the flusher's recorded batch)
# is dropped by the source table but written twice into the rollups. So chDB is reopened after
# such a command, as a restart would. A ClickHouse server keeps its altered views until it
# restarts (docs/upgrading.md says when that matters).
_RELOADS_VIEWS = re.compile(r"\bMODIFY\s+QUERY\b", re.IGNORECASE)

# Inserts travel as one Arrow table per block: pyarrow converts the column lists in C, with each
# column's Arrow type derived from its ClickHouse type (read once per table), and ClickHouse
# parses Arrow natively. clickhouse-connect's own Native encoder works value by value in Python
# (most of all for `LowCardinality` columns), which made it a fifth of the worker's flush time.
# ClickHouse base type → pyarrow type factory, for the types without parameters.
_ARROW_SCALARS = {
    "UInt8": "uint8",
    "UInt16": "uint16",
    "UInt32": "uint32",
    "UInt64": "uint64",
    "Int8": "int8",
    "Int16": "int16",
    "Int32": "int32",
    "Int64": "int64",
    "Float32": "float32",
    "Float64": "float64",
    "Bool": "bool_",
    "String": "string",
    "DateTime": "uint32",  # callers pass Unix seconds; the column keeps its time zone
}
_COLUMN_TYPES = """
SELECT name, type FROM system.columns WHERE database = currentDatabase() AND table = {table:String}
"""


class ClickHouseError(RuntimeError):
    """A ClickHouse call failed (driver, network or server error)."""


class Gateway(Protocol):
    """What callers need from ClickHouse, whether local, a server, or a running instance."""

    def query(self, name: str, sql: str, params: Mapping[str, Any] | None = None) -> list[Row]: ...

    def insert(
        self,
        table: str,
        columns: Sequence[str],
        data: Sequence[Sequence[Any]],
        token: str | None = None,
    ) -> int: ...

    def command(self, sql: str, params: Mapping[str, Any] | None = None) -> None: ...

    def close(self) -> None: ...


class ClickHouse:
    """Gateway over a clickhouse-connect client (a server over HTTP, or chDB in-process)."""

    def __init__(self, dsn: str, database: str = "default") -> None:
        self.dsn = dsn
        self.database = database
        self._client: Any = None
        self._open_lock = threading.Lock()
        self._column_types: dict[str, dict[str, str]] = {}  # table → column → ClickHouse type

    @property
    def client(self) -> Any:
        if self._client is None:
            with self._open_lock:
                if self._client is None:
                    self._client = _connect(self.dsn)
        return self._client

    def query(self, name: str, sql: str, params: Mapping[str, Any] | None = None) -> list[Row]:
        started = time.perf_counter()
        try:
            result = self.client.query(
                sql,
                parameters=dict(params or {}),
                settings={"log_comment": name, "max_execution_time": QUERY_TIME_LIMIT_SECONDS},
            )
            rows = list(result.named_results())
        except Exception as exc:
            raise ClickHouseError(f"query {name} failed: {exc}") from exc
        log.debug("clickhouse query %s took %.1f ms", name, (time.perf_counter() - started) * 1e3)
        return rows

    def insert(
        self,
        table: str,
        columns: Sequence[str],
        data: Sequence[Sequence[Any]],
        token: str | None = None,
    ) -> int:
        """Insert column-oriented `data` in one block: per column a sequence of values, or an
        Arrow array of values that cast to the column's type."""
        if not data or not len(data[0]):
            return 0
        # A Distributed table (cluster mode) forwards the block before answering, so a batch is
        # acknowledged only once the shards have it; other tables ignore the setting.
        settings: dict[str, Any] = {
            "async_insert": 0,
            "distributed_foreground_insert": 1,
            "log_comment": f"insert {table}",
        }
        if token:
            settings["insert_deduplication_token"] = token
            settings["deduplicate_blocks_in_dependent_materialized_views"] = 1
        try:
            self.client.insert_arrow(
                table, self._arrow_table(table, columns, data), settings=settings
            )
        except Exception as exc:
            raise ClickHouseError(f"insert into {table} failed: {exc}") from exc
        return len(data[0])

    def command(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        self._column_types.clear()  # a command may create, drop or alter a table
        try:
            self.client.command(sql, parameters=dict(params or {}) or None)
        except Exception as exc:
            raise ClickHouseError(f"command failed: {exc}") from exc
        if self.dsn.startswith("chdb:") and _RELOADS_VIEWS.search(sql):
            self.close()  # the next call opens chDB again, its views loaded from metadata

    def _arrow_table(
        self, table: str, columns: Sequence[str], data: Sequence[Sequence[Any]]
    ) -> Any:
        import pyarrow as pa  # type: ignore[import-untyped]

        types = self._column_types.get(table)
        if types is None:
            rows = self.query("column_types", _COLUMN_TYPES, {"table": table})
            types = self._column_types[table] = {row["name"]: row["type"] for row in rows}
        arrays = [
            _arrow_column(values, _arrow_type(types[name]))
            for name, values in zip(columns, data, strict=True)
        ]
        return pa.Table.from_arrays(arrays, names=list(columns))

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


async def aquery(
    gateway: Gateway, name: str, sql: str, params: Mapping[str, Any] | None = None
) -> list[Row]:
    """Run `gateway.query` in a worker thread."""
    return await anyio.to_thread.run_sync(gateway.query, name, sql, params)


def _arrow_column(values: Any, arrow_type: Any) -> Any:
    """A column from a Python sequence, or an Arrow array (cast to the column's type)."""
    import pyarrow as pa

    if isinstance(values, pa.Array):
        return values.cast(arrow_type)
    return pa.array(values, type=arrow_type)


@lru_cache(maxsize=128)
def _arrow_type(clickhouse_type: str) -> Any:
    """The Arrow type to send a column of `clickhouse_type` as (Arrow columns are nullable)."""
    from clickhouse_connect.datatypes.registry import get_from_name

    return _arrow_of(get_from_name(clickhouse_type))


def _arrow_of(kind: Any) -> Any:
    import pyarrow as pa

    base = kind.base_type
    if base == "Map":
        arrow = pa.map_(_arrow_of(kind.key_type), _arrow_of(kind.value_type))
    elif base == "Decimal":
        arrow = pa.decimal128(kind.prec, kind.scale)
    elif base in _ARROW_SCALARS:
        arrow = getattr(pa, _ARROW_SCALARS[base])()
    else:
        raise ClickHouseError(f"no Arrow type for ClickHouse type {kind.name}")
    # LowCardinality columns read a dictionary-encoded Arrow column as their own dictionary.
    return pa.dictionary(pa.int32(), arrow) if kind.low_card else arrow


def _connect(dsn: str) -> Any:
    import clickhouse_connect

    engine: dict[str, Any] = {"chdb_options": CHDB_OPTIONS} if dsn.startswith("chdb:") else {}
    try:
        return clickhouse_connect.get_client(dsn=dsn, **engine)
    except Exception as exc:
        if "EmbeddedServer" in str(exc) or "Code: 36" in str(exc):
            raise ClickHouseError(
                "the embedded ClickHouse directory is in use by another process; "
                "run this command while `ursa serve` is running, or stop that process"
            ) from exc
        raise ClickHouseError(f"cannot connect to ClickHouse: {exc}") from exc
