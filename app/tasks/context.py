"""The services Dramatiq actors use in this process (actors cannot take injected arguments)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from app.services import Services

T = TypeVar("T")

_services: Services | None = None


def bind(services: Services) -> None:
    global _services
    _services = services


def current() -> Services:
    if _services is None:
        raise RuntimeError("no services bound: start the worker through `ursa worker`/`serve`")
    return _services


def run_async(job: Callable[[Services], Awaitable[T]]) -> T:
    """Run async app code (database, Redis) from an actor, on a fresh event loop.

    Async clients belong to the loop that made them, so the job gets its own `Services` (same
    settings, same ClickHouse gateway), closed when it ends.
    """
    bound = current()

    async def main() -> T:
        services = Services(bound.settings, gateway=bound.clickhouse)
        try:
            return await job(services)
        finally:
            await services.aclose()

    return asyncio.run(main())
