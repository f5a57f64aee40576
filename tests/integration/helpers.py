"""Helpers for integration tests: posting events and reading what ClickHouse stored."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import httpx
from click.testing import CliRunner, Result

from app.analytics.clickhouse.gateway import Gateway
from app.cli.commands import main
from app.services import Services
from app.settings import Settings

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


def stored(clickhouse: Gateway, site_id: int, table: str = "events") -> list[dict[str, Any]]:
    return clickhouse.query(
        "test_rows",
        f"SELECT * FROM {table} WHERE site_id = {{site:UInt32}} ORDER BY event_id",
        {"site": site_id},
    )


async def run_ursa(
    settings: Settings, *args: str, password: str | None = None, typed: str = ""
) -> Result:
    """Run `ursa …` in a thread (the command runs its own event loop) against the test DB."""
    env: dict[str, str | None] = {
        "DATABASE_URL": settings.database_url,
        "URSA_DATA_DIR": str(settings.data_dir),
        "URSA_PASSWORD": password,  # None unsets it
    }
    return await asyncio.to_thread(CliRunner().invoke, main, list(args), input=typed, env=env)


async def mark_deleted(services: Services, model: type[Any], row_id: int | None) -> None:
    """Set `deleted_at` of one row (a user or an organization), as their deletion does."""
    async with services.sessions() as session:
        row = await session.get(model, row_id)
        assert row is not None
        row.deleted_at = dt.datetime.now(dt.UTC)
        session.add(row)
        await session.commit()
