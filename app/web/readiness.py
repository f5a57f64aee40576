"""Dependency checks for the web's `/readyz`.

Readiness decides whether the load balancer sends this process traffic, so it fails only on
what ingest needs, the Redis buffer (`REQUIRED`). A down app database or ClickHouse is shared by
every web process: failing them all would take ingest offline with the dashboard, while ingest
keeps answering 202 from cached sites and the buffer. Those checks are reported (`degraded`)
but do not fail the probe.
"""

from __future__ import annotations

import anyio
from sqlalchemy import text

from app.analytics.clickhouse.gateway import aquery
from app.services import Services

CHECK_TIMEOUT_SECONDS = 2.0
REQUIRED = frozenset({"redis"})


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


def readiness(checks: dict[str, str]) -> tuple[str, bool]:
    """The probe's status word and whether it passes: `ok`, `degraded` (a dependency ingest
    does without is down) or `unavailable` (one of `REQUIRED` is)."""
    failed = {name for name, value in checks.items() if value != "ok"}
    if failed & REQUIRED:
        return "unavailable", False
    return ("degraded" if failed else "ok"), True


async def _redis(services: Services) -> None:
    await services.redis.ping()


async def _database(services: Services) -> None:
    async with services.engine.connect() as connection:
        await connection.execute(text("SELECT 1"))


async def _clickhouse(services: Services) -> None:
    await aquery(services.clickhouse, "readiness", "SELECT 1")
