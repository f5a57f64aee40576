"""`TracedGateway`: a ClickHouse gateway whose calls are client spans (when tracing is on)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from app.analytics.clickhouse.gateway import Gateway, Row
from app.observability.client_spans import Attributes, client_span


class TracedGateway:
    """A ClickHouse gateway whose calls are spans: `clickhouse.query <name>`, `.insert <table>`."""

    def __init__(self, inner: Gateway) -> None:
        self.inner = inner

    def query(self, name: str, sql: str, params: Mapping[str, Any] | None = None) -> list[Row]:
        with client_span(f"clickhouse.query {name}", _clickhouse("SELECT", name)):
            return self.inner.query(name, sql, params)

    def insert(
        self,
        table: str,
        columns: Sequence[str],
        data: Sequence[Sequence[Any]],
        token: str | None = None,
    ) -> int:
        rows = len(data[0]) if data else 0
        attributes = {**_clickhouse("INSERT", table), "db.operation.batch.size": rows}
        with client_span(f"clickhouse.insert {table}", attributes):
            return self.inner.insert(table, columns, data, token)

    def command(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        with client_span("clickhouse.command", _clickhouse("COMMAND", "command")):
            self.inner.command(sql, params)

    def close(self) -> None:
        self.inner.close()


def _clickhouse(operation: str, name: str) -> Attributes:
    return {
        "db.system.name": "clickhouse",
        "db.operation.name": operation,
        "db.query.summary": name,
    }
