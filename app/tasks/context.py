"""The services Dramatiq actors use in this process (actors cannot take injected arguments)."""

from __future__ import annotations

from app.services import Services

_services: Services | None = None


def bind(services: Services) -> None:
    global _services
    _services = services


def current() -> Services:
    if _services is None:
        raise RuntimeError("no services bound: start the worker through `ursa worker`/`serve`")
    return _services
