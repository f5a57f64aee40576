"""Shared fixtures: real Redis, real chDB, SQLite or Postgres — isolated per run and worker.

`URSA_TEST_DB=postgres` runs app-database tests on Postgres (`URSA_TEST_POSTGRES_URL` names a
server where we may create databases; each run/worker gets its own database, dropped after).
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from dramatiq.brokers.stub import StubBroker
from sqlmodel import select

from app.accounts.users import create_user
from app.analytics.clickhouse.gateway import ClickHouse
from app.analytics.clickhouse.schema import migrate
from app.main import create_app
from app.models import Membership, Role, Site, User
from app.server.embedded_redis import redis_server_binary
from app.server.migrate import migrate_app_db
from app.services import Services
from app.settings import Settings
from app.sites.registry import add_site
from app.tasks import registry

# Fixtures of the billing tests (the fake Stripe server, services that point at it) and the
# SMTP sink.
pytest_plugins = ["tests.integration.billing_helpers", "tests.integration.smtp_sink"]
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

    def freeze(self) -> None:
        """SIGSTOP: connections stay open and the kernel still accepts new ones, but nothing is
        answered (a server stuck in a long fsync, a paused VM)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

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


PROXY_IP = "10.0.0.2"  # a reverse proxy in front of the app, trusted by `proxied_services`


@pytest.fixture
async def proxied_services(settings: Settings, clickhouse: ClickHouse) -> AsyncIterator[Services]:
    """`services` of an app behind `PROXY_IP` (`TRUSTED_PROXIES=10.0.0.0/8`)."""
    behind = Settings(
        _env_file=None, **{**settings.model_dump(), "TRUSTED_PROXIES": ["10.0.0.0/8"]}
    )
    instance = Services(behind, gateway=clickhouse)
    yield instance
    await instance.aclose()


@pytest.fixture
async def site_domain(services: Services) -> str:
    """A freshly registered site with a random domain (tests are isolated by site)."""
    site = await add_site(services.sessions, f"site-{secrets.token_hex(6)}.example")
    return site.domain


@pytest.fixture(autouse=True)
def _no_leftover_jobs() -> None:
    """Each test starts with empty job queues: a job another test queued never runs in it.

    Every actor of the registry is declared on the broker, as at a process's start-up, so a
    test run alone finds the actors its requests start by name."""
    broker = registry.ALL[0].broker
    if isinstance(broker, StubBroker):
        broker.flush_all()


PEER_IP = "81.2.69.160"  # a GB address in the registries' data


def make_client(
    services: Services, peer: str = PEER_IP, scheme: str = "http", *, proxy_adds: str = ""
) -> httpx.AsyncClient:
    """An HTTP client for the public app, as if connecting from `peer` over `scheme`.

    With `proxy_adds`, `peer` is a reverse proxy that adds an `X-Forwarded-For: <proxy_adds>`
    line of its own after any the client sent (as HAProxy's `option forwardfor` does).
    """
    app: Any = create_app(services.settings, services)
    if proxy_adds:
        app = _proxy(app, (b"x-forwarded-for", proxy_adds.encode()))
    transport = httpx.ASGITransport(app=app, client=(peer, 40000))
    return httpx.AsyncClient(transport=transport, base_url=f"{scheme}://testserver")


def _proxy(app: Any, header: tuple[bytes, bytes]) -> Any:
    async def proxy(scope: Any, receive: Any, send: Any) -> None:
        await app({**scope, "headers": [*scope["headers"], header]}, receive, send)

    return proxy


@pytest.fixture
async def client(services: Services) -> AsyncIterator[httpx.AsyncClient]:
    async with make_client(services) as http:
        yield http


PASSWORD = "correct horse battery staple"
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


def random_peer() -> str:
    """A client address of its own, so per-IP login limits never couple two tests."""
    return f"198.18.{secrets.randbelow(256)}.{secrets.randbelow(254) + 1}"


async def new_user(services: Services, *, staff: bool = False, verified: bool = True) -> User:
    """A user (owner of a new organization) with a random email and `PASSWORD`."""
    email = f"user-{secrets.token_hex(6)}@example.com"
    return await create_user(services.sessions, email, PASSWORD, staff=staff, verified=verified)


async def csrf_token(client: httpx.AsyncClient, page: str = "/login") -> str:
    """The CSRF token of a form on `page` (the CSRF cookie lands in the client's jar)."""
    response = await client.get(page)
    match = CSRF_FIELD.search(response.text)
    assert match, f"no CSRF token on {page} ({response.status_code})"
    return match[1]


async def log_in(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> httpx.Response:
    token = await csrf_token(client)
    form = {"email": email, "password": password, "csrf_token": token}
    return await client.post("/login", data=form)


async def join(services: Services, user: User, site_domain: str, role: Role) -> None:
    """Make `user` a member with `role` of the organization that owns the site."""
    async with services.sessions() as session:
        site = (await session.exec(select(Site).where(Site.domain == site_domain))).one()
        assert site.organization_id is not None
        assert user.id is not None
        session.add(Membership(user_id=user.id, organization_id=site.organization_id, role=role))
        await session.commit()


@pytest.fixture
async def owner(services: Services, site_domain: str) -> User:
    """A verified user whose organization owns `site_domain`."""
    user = await new_user(services)
    async with services.sessions() as session:
        membership = (
            await session.exec(select(Membership).where(Membership.user_id == user.id))
        ).one()
        site = (await session.exec(select(Site).where(Site.domain == site_domain))).one()
        site.organization_id = membership.organization_id
        session.add(site)
        await session.commit()
    return user


@asynccontextmanager
async def logged_in(services: Services, user: User) -> AsyncIterator[httpx.AsyncClient]:
    """An https client (Secure cookies) logged in as `user`."""
    async with make_client(services, peer=random_peer(), scheme="https") as http:
        response = await log_in(http, user.email)
        assert response.status_code == 303, response.text
        yield http


@pytest.fixture
async def owner_client(services: Services, owner: User) -> AsyncIterator[httpx.AsyncClient]:
    async with logged_in(services, owner) as http:
        yield http


@pytest.fixture(scope="session")
def pycache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Bytecode cache shared by the child processes of a test (each one otherwise compiles every
    module it imports when the environment sets PYTHONDONTWRITEBYTECODE)."""
    return tmp_path_factory.mktemp("pycache")
