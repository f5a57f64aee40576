"""The one ClickHouse gateway. No other module imports `clickhouse_connect`.

Every call goes through `query()`, `insert()` or `command()`, which set a `log_comment`, a server
side time limit and `async_insert=0`, time the call and wrap driver errors in `ClickHouseError`.
The embedded engine (chDB) has no async client and serializes calls, so async callers use the
`a*` variants, which run the sync call in a worker thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import anyio.to_thread

log = logging.getLogger(__name__)

QUERY_TIME_LIMIT_SECONDS = 30
Row = dict[str, Any]


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
        """Insert column-oriented `data` (one sequence per column) in one block."""
        if not data or not len(data[0]):
            return 0
        settings: dict[str, Any] = {"async_insert": 0, "log_comment": f"insert {table}"}
        if token:
            settings["insert_deduplication_token"] = token
            settings["deduplicate_blocks_in_dependent_materialized_views"] = 1
        try:
            self.client.insert(
                table,
                list(data),
                column_names=list(columns),
                column_oriented=True,
                settings=settings,
            )
        except Exception as exc:
            raise ClickHouseError(f"insert into {table} failed: {exc}") from exc
        return len(data[0])

    def command(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        try:
            self.client.command(sql, parameters=dict(params or {}) or None)
        except Exception as exc:
            raise ClickHouseError(f"command failed: {exc}") from exc

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


async def aquery(
    gateway: Gateway, name: str, sql: str, params: Mapping[str, Any] | None = None
) -> list[Row]:
    """Run `gateway.query` in a worker thread."""
    return await anyio.to_thread.run_sync(gateway.query, name, sql, params)


def _connect(dsn: str) -> Any:
    import clickhouse_connect

    try:
        return clickhouse_connect.get_client(dsn=dsn)
    except Exception as exc:
        if "EmbeddedServer" in str(exc) or "Code: 36" in str(exc):
            raise ClickHouseError(
                "the embedded ClickHouse directory is in use by another process; "
                "run this command while `ursa serve` is running, or stop that process"
            ) from exc
        raise ClickHouseError(f"cannot connect to ClickHouse: {exc}") from exc
