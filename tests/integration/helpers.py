"""Helpers for integration tests: posting events and reading what ClickHouse stored."""

from __future__ import annotations

from typing import Any

import httpx

from app.analytics.clickhouse import ClickHouse

BROWSER_UA = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)


async def post_event(
    client: httpx.AsyncClient,
    body: dict[str, Any] | bytes,
    *,
    user_agent: str = BROWSER_UA,
    content_type: str = "text/plain",
) -> Any:
    import json

    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"Content-Type": content_type, "User-Agent": user_agent}
    return await client.post("/api/event", content=content, headers=headers)


def stored(clickhouse: ClickHouse, site_id: int, table: str = "events") -> list[dict[str, Any]]:
    return clickhouse.query(
        "test_rows",
        f"SELECT * FROM {table} WHERE site_id = {{site:UInt32}} ORDER BY event_id",
        {"site": site_id},
    )
