"""A `Gateway` that sends calls to a running instance's internal port (msgpack over HTTP)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import httpx
import msgspec

from app.analytics.clickhouse.gateway import ClickHouseError, Row

TIMEOUT_SECONDS = 120.0


class RemoteClickHouse:
    def __init__(self, base_url: str, token: str) -> None:
        self._client = httpx.Client(
            base_url=base_url,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/msgpack"},
            timeout=TIMEOUT_SECONDS,
        )

    def _call(self, action: str, payload: dict[str, Any]) -> Any:
        try:
            response = self._client.post(
                f"/internal/clickhouse/{action}", content=msgspec.msgpack.encode(payload)
            )
        except httpx.HTTPError as exc:
            raise ClickHouseError(f"running instance unreachable: {exc}") from exc
        if response.status_code != 200:
            raise ClickHouseError(
                f"running instance answered {response.status_code}: {response.text[:500]}"
            )
        return msgspec.msgpack.decode(response.content)

    def query(self, name: str, sql: str, params: Mapping[str, Any] | None = None) -> list[Row]:
        result: list[Row] = self._call(
            "query", {"name": name, "sql": sql, "params": dict(params or {})}
        )
        return result

    def insert(
        self,
        table: str,
        columns: Sequence[str],
        data: Sequence[Sequence[Any]],
        token: str | None = None,
    ) -> int:
        payload = {
            "table": table,
            "columns": list(columns),
            "data": [list(column) for column in data],
            "token": token,
        }
        inserted: int = self._call("insert", payload)
        return inserted

    def command(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        self._call("command", {"sql": sql, "params": dict(params or {})})

    def close(self) -> None:
        self._client.close()
