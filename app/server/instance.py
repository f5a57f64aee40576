"""The running embedded instance, and how CLI commands reach ClickHouse.

One chDB directory can be open in one process only. `ursa serve` records itself in
`<data dir>/instance.json`; commands that need ClickHouse go through that instance's internal
port while it runs, and open the engine themselves otherwise.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import httpx

from app.analytics.clickhouse import schema
from app.analytics.clickhouse.gateway import ClickHouse, Gateway
from app.analytics.clickhouse.remote import RemoteClickHouse
from app.settings import Settings


def instance_file(settings: Settings) -> Path:
    return settings.data_dir / "instance.json"


def record_instance(settings: Settings) -> None:
    path = instance_file(settings)
    path.write_text(json.dumps({"pid": os.getpid(), "internal_port": settings.METRICS_PORT}))


def forget_instance(settings: Settings) -> None:
    instance_file(settings).unlink(missing_ok=True)


def internal_url(port: int) -> str:
    """The internal port of an instance on this machine (it listens on loopback)."""
    return f"http://127.0.0.1:{port}"


def running_instance_url(settings: Settings) -> str | None:
    """The internal URL of a live `ursa serve` on this data dir, if there is one."""
    try:
        info = json.loads(instance_file(settings).read_text())
        os.kill(int(info["pid"]), 0)
    except (OSError, ValueError, KeyError):
        return None
    url = internal_url(int(info["internal_port"]))
    try:
        httpx.get(f"{url}/healthz", timeout=2.0).raise_for_status()
    except httpx.HTTPError:
        return None
    return url


def open_gateway(settings: Settings) -> Gateway:
    """ClickHouse for a CLI command: through a running instance, else opened here."""
    if settings.embedded:
        url = running_instance_url(settings)
        if url is not None:
            return RemoteClickHouse(url, settings.INTERNAL_TOKEN)
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        local = ClickHouse(settings.clickhouse_dsn)
        schema.migrate(local)  # nothing else can be migrating: this process holds the engine
        return local
    return ClickHouse(settings.clickhouse_dsn)
