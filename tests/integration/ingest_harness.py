"""Processes and HTTP senders for the ingest fault tests (`test_zero_loss.py`, `test_faults.py`).

An `Instance` is a distributed installation on loopback: a real redis-server, a site in a fresh
SQLite app database, a migrated chDB directory, and the environment its child processes
(`ursa web`, the `crash_worker.py` flusher, `chdb_tool.py`) read their settings from. The
senders post over a small keep-alive HTTP/1.1 client; `stored_ids` counts, per event id, the
rows ClickHouse holds once the worker has stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import redis

from app.analytics.buffer.stream import GROUP
from app.db import make_engine, make_sessionmaker
from app.server.migrate import migrate_app_db
from app.settings import Settings
from app.sites.registry import add_site
from app.store.keys import FLUSH_BATCH as BATCH_KEY
from tests.conftest import RedisProcess, free_port

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
PYTHON = [sys.executable, "-X", "faulthandler"]
STEP_TIMEOUT_SECONDS = 60.0
HTTP_TIMEOUT_SECONDS = 30.0

RAW_IDS = """
SELECT toString(event_id) AS id, count() AS n FROM events WHERE site_id = {site_id:UInt32}
GROUP BY event_id
"""


def user_agent(index: int) -> str:
    """A distinct browser User-Agent per visitor (all visitors share the loopback address)."""
    major, build = 120 + index % 12, 6000 + index
    if index % 3 == 0:
        return (
            f"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            f"Chrome/{major}.0.{build}.0 Safari/537.36"
        )
    if index % 3 == 1:
        return (
            f"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
            f"(KHTML, like Gecko) Version/17.{index % 7} Safari/605.1.15 Ursa/{build}"
        )
    return (
        f"Mozilla/5.0 (X11; Linux x86_64; rv:{major}.0) Gecko/20100101 Firefox/{major}.0 "
        f"Ursa/{build}"
    )


class RequestTimeout(ConnectionError):
    """No complete answer within the client's timeout: the server hung."""


class Connection:
    """A minimal keep-alive HTTP/1.1 client. httpx costs about 20 times more CPU per request,
    and the senders share two cores with the web process, the worker and Redis."""

    def __init__(self, port: int, timeout: float = HTTP_TIMEOUT_SECONDS) -> None:
        self.port = port
        self.timeout = timeout
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes, user_agent: str) -> tuple[int, dict[str, str]]:
        """The status and headers; `ConnectionError` when the request failed on the way (a
        `RequestTimeout` when the server did not answer in time)."""
        head = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\nUser-Agent: {user_agent}\r\n"
            f"Content-Type: text/plain\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        try:
            async with asyncio.timeout(self.timeout):
                if self.reader is None or self.writer is None:
                    self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
                self.writer.write(head.encode() + body)
                await self.writer.drain()
                return await self._response(self.reader)
        except TimeoutError:
            self.close()
            raise RequestTimeout(f"no answer within {self.timeout} s") from None
        except (OSError, EOFError, ValueError):
            self.close()
            raise ConnectionError("request failed") from None

    async def _response(self, reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
        status = int((await reader.readuntil(b"\r\n")).split(b" ", 2)[1])
        headers: dict[str, str] = {}
        while (line := await reader.readuntil(b"\r\n")) != b"\r\n":
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        await reader.readexactly(int(headers["content-length"]))
        if headers.get("connection", "").lower() == "close":
            self.close()
        return status, headers

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


class Child:
    """A subprocess whose output goes to a log file kept across restarts."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], cwd: Path) -> None:
        self.name, self.argv, self.env, self.cwd = name, argv, env, cwd
        self.log = cwd / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, *extra: str) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [*self.argv, *extra],
                env=self.env,
                cwd=self.cwd,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def sigkill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self, timeout: float = 60.0) -> int | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


async def wait_for(
    predicate: Callable[[], Awaitable[bool]],
    what: str,
    limit: float = STEP_TIMEOUT_SECONDS,
    interval: float = 0.05,
) -> None:
    deadline = time.monotonic() + limit
    while not await predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(interval)


async def wait_healthy(url: str) -> None:
    async with httpx.AsyncClient(timeout=2) as http:

        async def healthy() -> bool:
            with contextlib.suppress(httpx.HTTPError):
                return (await http.get(f"{url}/healthz")).status_code == 200
            return False

        await wait_for(healthy, f"{url}/healthz", interval=0.2)


def settled(r: redis.Redis, stream: str) -> bool:
    """Nothing pending, nothing undelivered, no batch record."""
    if r.exists(BATCH_KEY):
        return False
    if r.xpending(stream, GROUP)["pending"]:
        return False
    last_generated = r.xinfo_stream(stream)["last-generated-id"]
    group = next(g for g in r.xinfo_groups(stream) if g["name"] == GROUP.encode())
    return bool(group["last-delivered-id"] == last_generated)


async def wait_settled(
    r: redis.Redis, stream: str, worker: Child, limit: float, interval: float = 0.2
) -> float:
    """Wait until the buffer has settled while `worker` keeps running; the seconds it took."""
    started = time.monotonic()
    while not settled(r, stream):
        assert time.monotonic() - started < limit, f"did not settle:\n{worker.tail()}"
        assert worker.alive(), worker.tail()
        await asyncio.sleep(interval)
    return time.monotonic() - started


@dataclass
class Instance:
    """A distributed installation on loopback for one test (see the module docstring)."""

    folder: Path
    redis_server: RedisProcess
    settings: Settings
    site_id: int
    port: int
    internal_port: int
    env: dict[str, str]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def chdb_dir(self) -> Path:
        return self.settings.data_dir / "clickhouse"

    @property
    def chdb_tool(self) -> list[str]:
        return [*PYTHON, str(HERE / "chdb_tool.py")]

    def web(self) -> Child:
        argv = [*PYTHON, "-c", "from app.cli.commands import main; main()", "web"]
        return Child("web", argv, self.env, self.folder)

    def worker(self, **overrides: str) -> Child:
        """The flusher process, its settings changed by `overrides` (name=value)."""
        env = {**self.env, **overrides}
        return Child("worker", [*PYTHON, str(HERE / "crash_worker.py")], env, self.folder)

    def stored_ids(self) -> dict[int, int]:
        """Rows per event id of the site (the worker must have stopped: one process per chDB
        directory)."""
        snapshot = inspect_store(self, {"ids": RAW_IDS}, optimize=[], start=time.time() - 86400)
        return {int(row["id"]): int(row["n"]) for row in snapshot["before"]["ids"]}


async def start_instance(
    folder: Path, pycache: Path, domain: str, batch_size: int, *, dedup_window: bool = True
) -> Instance:
    """Start Redis, register `domain`, migrate a fresh chDB directory (without the events
    table's deduplication window when `dedup_window` is false)."""
    redis_server = RedisProcess(folder / "redis")
    redis_server.start()
    settings = Settings(
        _env_file=None, URSA_DATA_DIR=folder / "data", REDIS_URL=redis_server.url
    ).with_secrets()  # generated once here, read by every child
    migrate_app_db(settings)
    engine = make_engine(settings.database_url)
    try:
        site = await add_site(make_sessionmaker(engine), domain)
    finally:
        await engine.dispose()
    assert site.id is not None
    port, internal_port = free_port(), free_port()
    instance = Instance(
        folder,
        redis_server,
        settings,
        site.id,
        port,
        internal_port,
        child_env(settings, port, internal_port, pycache, batch_size),
    )
    prepare = [*instance.chdb_tool, "prepare", str(instance.chdb_dir)]
    if not dedup_window:
        prepare.append("--no-dedup-window")
    await asyncio.to_thread(
        subprocess.run, prepare, env=instance.env, cwd=folder, check=True, timeout=120
    )
    return instance


def child_env(
    settings: Settings, port: int, internal_port: int, pycache: Path, batch_size: int
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in Settings.model_fields}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.update(
        PYTHONPATH=str(ROOT),
        PYTHONPYCACHEPREFIX=str(pycache),
        URSA_DATA_DIR=str(settings.data_dir),
        REDIS_URL=settings.REDIS_URL,
        PORT=str(port),
        METRICS_PORT=str(internal_port),
        BASE_URL=f"http://127.0.0.1:{port}",
        FLUSH_BATCH_SIZE=str(batch_size),
        LOG_LEVEL="INFO",
        # The senders are one loopback client: no abuse cap, every event must be stored.
        INGEST_CLIENT_EVENTS_PER_MINUTE="0",
        INGEST_SITE_EVENTS_PER_MINUTE="0",
    )
    return env


def inspect_store(
    instance: Instance, queries: dict[str, str], optimize: list[str], start: float
) -> dict[str, Any]:
    """`chdb_tool.py inspect` on the instance's site from `start` (Unix seconds) to an hour
    ahead: the named queries and the dashboard's figures, before and after `optimize`."""
    request = instance.folder / "inspect-request.json"
    result = instance.folder / "inspect-result.json"
    request.write_text(
        json.dumps(
            {
                "site_id": instance.site_id,
                "start": start - 3600,
                "end": time.time() + 3600,
                "queries": queries,
                "optimize": optimize,
            }
        )
    )
    subprocess.run(
        [*instance.chdb_tool, "inspect", str(instance.chdb_dir), str(request), str(result)],
        env=instance.env,
        cwd=instance.folder,
        check=True,
        timeout=120,
    )
    snapshot: dict[str, Any] = json.loads(result.read_text())
    return snapshot
