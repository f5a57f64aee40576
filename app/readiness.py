"""Dependency checks for `/readyz`: what this process's role needs to do its work."""

from __future__ import annotations

import anyio
from sqlalchemy import text

from app.analytics.clickhouse import aquery
from app.services import Services

CHECK_TIMEOUT_SECONDS = 2.0


async def check_ready(services: Services) -> dict[str, str]:
    checks: dict[str, str] = {}
    for name, probe in (
        ("redis", _redis),
        ("database", _database),
        ("clickhouse", _clickhouse),
    ):
        try:
            with anyio.fail_after(CHECK_TIMEOUT_SECONDS):
                await probe(services)
            checks[name] = "ok"
        except Exception as exc:
            checks[name] = f"failed: {type(exc).__name__}"
    return checks


async def _redis(services: Services) -> None:
    await services.redis.ping()


async def _database(services: Services) -> None:
    async with services.engine.connect() as connection:
        await connection.execute(text("SELECT 1"))


async def _clickhouse(services: Services) -> None:
    await aquery(services.clickhouse, "readiness", "SELECT 1")
