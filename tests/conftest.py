"""Shared fixtures: real Redis, real chDB, SQLite or Postgres — isolated per run and worker.

`URSA_TEST_DB=postgres` runs app-database tests on Postgres (`URSA_TEST_POSTGRES_URL` names a
server where we may create databases; each run/worker gets its own database, dropped after).
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import redis

from app.analytics.clickhouse import ClickHouse
from app.analytics.schema import migrate
from app.main import create_app
from app.redis_server import redis_server_binary
from app.runtime import migrate_app_db
from app.services import Services
from app.settings import Settings
from app.sites import add_site

TEST_DB = os.environ.get("URSA_TEST_DB", "sqlite")
POSTGRES_ADMIN_URL = os.environ.get(
    "URSA_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisProcess:
    """A redis-server on a free loopback port, with AOF, that a test may kill and restart."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [
                redis_server_binary(),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.folder),
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
                "--maxmemory",
                "1gb",
                "--maxmemory-policy",
                "noeviction",
            ],
            stdout=subprocess.DEVNULL,
            start_new_session=True,
        )
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if client.ping():
                    client.close()
                    return
            except (redis.ConnectionError, redis.BusyLoadingError):
                time.sleep(0.05)
        raise RuntimeError("test redis-server did not start")

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


@pytest.fixture(scope="session")
def redis_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisProcess]:
    server = RedisProcess(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def clickhouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClickHouse]:
    gateway = ClickHouse(f"chdb:///{tmp_path_factory.mktemp('chdb')}")
    migrate(gateway)
    yield gateway
    gateway.close()


def _postgres_database() -> Iterator[str]:
    import psycopg

    name = f"ursa_test_{uuid.uuid4().hex[:12]}"
    admin = POSTGRES_ADMIN_URL.replace("+asyncpg", "")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if TEST_DB == "postgres":
        yield from _postgres_database()
    else:
        yield f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('db') / 'ursa.db'}"


@pytest.fixture(scope="session")
def settings(
    tmp_path_factory: pytest.TempPathFactory, redis_process: RedisProcess, database_url: str
) -> Settings:
    base = Settings(
        _env_file=None,
        URSA_DATA_DIR=tmp_path_factory.mktemp("data"),
        REDIS_URL=redis_process.url,
        DATABASE_URL=database_url,
        BUFFER_STREAM=f"ursa:test:{uuid.uuid4().hex[:8]}",
        SITE_CACHE_SECONDS=0,
    ).with_secrets()
    migrate_app_db(base)
    return base


@pytest.fixture
async def services(settings: Settings, clickhouse: ClickHouse) -> AsyncIterator[Services]:
    instance = Services(settings, gateway=clickhouse)
    yield instance
    await instance.aclose()
    if "sync_redis" in instance.__dict__:
        instance.sync_redis.close()


@pytest.fixture
async def site_domain(services: Services) -> str:
    """A freshly registered site with a random domain (tests are isolated by site)."""
    site = await add_site(services.sessions, f"site-{secrets.token_hex(6)}.example")
    return site.domain


PEER_IP = "81.2.69.160"  # a GB address in the registries' data


def make_client(services: Services, peer: str = PEER_IP, scheme: str = "http") -> httpx.AsyncClient:
    """An HTTP client for the public app, as if connecting from `peer` over `scheme`."""
    app = create_app(services.settings, services)
    transport = httpx.ASGITransport(app=app, client=(peer, 40000))  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=transport, base_url=f"{scheme}://testserver")


@pytest.fixture
async def client(services: Services) -> AsyncIterator[httpx.AsyncClient]:
    async with make_client(services) as http:
        yield http
