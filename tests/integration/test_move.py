"""`ursa move`: an embedded installation into Postgres and another ClickHouse, resumably.

The target app database is always a throwaway Postgres database (`URSA_TEST_POSTGRES_URL`):
without a Postgres server these tests fail. The target ClickHouse is a second chDB directory,
reached the way `ursa move` reaches any `chdb:///` target: through a child process, since a
process can open one chDB directory only. For the same reason the whole command runs in a
process of its own, and so does the inspection of both chDB directories (`chdb_tool.py`).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from app.accounts.users import create_user
from app.analytics.clickhouse import schema
from app.analytics.clickhouse.child import ChildClickHouse
from app.analytics.clickhouse.gateway import ClickHouse
from app.analytics.queries import stats
from app.analytics.queries.periods import resolve_period
from app.cli.demo import generate
from app.cli.move import (
    EXIT_STOPPED,
    RAW_TABLES,
    Budget,
    MoveError,
    Part,
    Silent,
    app_tables,
    copy_analytics,
    copy_app_database,
    plan_analytics,
    source_settings,
    table_counts,
)
from app.db import make_engine, make_sessionmaker
from app.models import Invitation, Role, SharedLink, Site, User, hash_token
from app.models.columns import utcnow
from app.server.migrate import migrate_app_db
from app.settings import Settings
from app.sites.registry import add_site, register_site
from tests.conftest import PASSWORD, _postgres_database, free_port
from tests.integration.test_serve import Served
from tests.integration.test_serve import _env as serve_env

pytestmark = pytest.mark.db

URSA = str(Path(sys.executable).with_name("ursa"))
MOVE = [URSA, "move"]
CHDB_TOOL = Path(__file__).with_name("chdb_tool.py")
DEMO_EVENTS = (1_200, 700)
RAW_QUERIES = {
    table: f"SELECT count() AS n, uniqExact(event_id) AS ids FROM {table} "
    "WHERE site_id = {site_id:UInt32}"
    for table in RAW_TABLES
}


@pytest.fixture
def postgres_url() -> Iterator[str]:
    yield from _postgres_database()


def _sqlite_url(folder: Path) -> str:
    return f"sqlite+aiosqlite:///{folder / 'ursa.db'}"


def _migrated(url: str, folder: Path) -> str:
    migrate_app_db(Settings(_env_file=None, URSA_DATA_DIR=folder, DATABASE_URL=url))
    return url


@pytest.fixture
async def engines(tmp_path: Path, postgres_url: str) -> AsyncIterator[tuple[AsyncEngine, ...]]:
    """A migrated SQLite source and a migrated Postgres target, as engines."""
    source = make_engine(_migrated(_sqlite_url(tmp_path), tmp_path))
    target = make_engine(_migrated(postgres_url, tmp_path))
    yield source, target
    await source.dispose()
    await target.dispose()


async def _fill(engine: AsyncEngine) -> None:
    """Users, organizations, sites (one deleted: its id is never given again), links."""
    sessions = make_sessionmaker(engine)
    owner = await create_user(sessions, "owner@example.com", PASSWORD, verified=True)
    await create_user(sessions, "other@example.com", PASSWORD, verified=True)
    organization_id = (await _memberships(engine))[0]
    site = await register_site(sessions, "shop.example", "Asia/Kolkata", organization_id)
    gone = await add_site(sessions, "gone.example")
    assert site.id is not None
    async with sessions() as session:
        await session.delete(await session.get(Site, gone.id))
        session.add(
            SharedLink(site_id=site.id, slug="s" * 12, label="team", created_by_id=owner.id)
        )
        session.add(
            Invitation(
                organization_id=organization_id,
                email="invitee@example.com",
                role=Role.VIEWER,
                token_hash=hash_token("invitation"),
                invited_by_id=owner.id,
                expires_at=utcnow() + dt.timedelta(days=3),
            )
        )
        await session.commit()


async def _memberships(engine: AsyncEngine) -> list[int]:
    async with engine.connect() as conn:
        rows = await conn.execute(sa.text("SELECT organization_id FROM memberships ORDER BY id"))
        return [int(row[0]) for row in rows]


async def _rows(engine: AsyncEngine) -> dict[str, list[dict[str, Any]]]:
    """Every row of every app table, by id."""
    result = {}
    async with engine.connect() as conn:
        for table in app_tables():
            rows = await conn.execute(sa.select(table).order_by(*table.primary_key.columns))
            result[table.name] = [dict(row._mapping) for row in rows]
    return result


async def _next_site_id(engine: AsyncEngine) -> int:
    site = await add_site(make_sessionmaker(engine), f"new-{secrets.token_hex(4)}.example")
    assert site.id is not None
    return site.id


# ----- app database, in this process --------------------------------------------------------


async def test_app_database_copy_resumes_without_duplicates(engines):
    source, target = engines
    await _fill(source)
    source_url, target_url = str(source.url), target.url.render_as_string(hide_password=False)

    stopped = Budget(3)
    assert not await copy_app_database(source_url, target_url, 1, stopped, Silent())
    assert stopped.used == 3
    partial = await table_counts(target, app_tables())
    assert sum(partial.values()) == 3

    assert await copy_app_database(source_url, target_url, 2, Budget(None), Silent())
    assert await _rows(target) == await _rows(source)
    again = Budget(None)
    assert await copy_app_database(source_url, target_url, 2, again, Silent())
    assert again.used == 0  # nothing left to write
    # Sequences continue past the copied ids, and past the deleted site's id.
    assert await _next_site_id(target) == await _next_site_id(source) == 3


async def test_a_target_with_other_rows_is_refused(engines):
    source, target = engines
    await create_user(make_sessionmaker(source), "owner@example.com", PASSWORD, verified=True)
    async with make_sessionmaker(target)() as session:
        session.add(User(id=1, email="stranger@example.com", password_hash="x"))
        await session.commit()

    with pytest.raises(MoveError, match=r"users id 1 with other values \(.*\bemail\b"):
        await copy_app_database(
            str(source.url),
            target.url.render_as_string(hide_password=False),
            100,
            Budget(None),
            Silent(),
        )
    async with target.connect() as conn:
        emails = (await conn.execute(sa.text("SELECT email FROM users"))).scalars().all()
    assert emails == ["stranger@example.com"]


# ----- analytics, in this process (source: the shared chDB; target: a child process) ---------


def _parts(clickhouse: ClickHouse, site_id: int, size: int) -> list[Part]:
    parts = []
    for table in RAW_TABLES:
        rows = clickhouse.query(
            "test_move_days",
            f"SELECT toDate(timestamp) AS day, count() AS n FROM {table} "
            "WHERE site_id = {site_id:UInt32} GROUP BY day ORDER BY day",
            {"site_id": site_id},
        )
        for row in rows:
            total = int(row["n"])
            parts += [
                Part(table, site_id, row["day"], k, size, min(size, total - k * size))
                for k in range(math.ceil(total / size))
            ]
    return parts


def test_a_repeated_part_is_stored_once_in_tables_and_rollups(clickhouse, tmp_path):
    site_id = secrets.randbelow(10**6) + 3 * 10**6
    generate(clickhouse, site_id, days=5, events=900, seed=7)
    parts = _parts(clickhouse, site_id, 100)
    target = ChildClickHouse(f"chdb:///{tmp_path / 'target'}")
    try:
        schema.migrate(target)
        budget = Budget(None)
        assert copy_analytics(clickhouse, target, [*parts, *parts[:3]], budget, Silent())
        assert budget.used == len(parts) + 3
        for table, sql in RAW_QUERIES.items():
            expected = clickhouse.query("test_move_source", sql, {"site_id": site_id})
            assert target.query("test_move_target", sql, {"site_id": site_id}) == expected
            assert expected[0]["n"] == expected[0]["ids"] > 0, table
        scope = stats.Scope(site_id, resolve_period("30d", "UTC", dt.datetime.now(dt.UTC)))
        assert stats.overview(target, scope) == stats.overview(clickhouse, scope)
        assert stats.breakdown(target, scope, "page") == stats.breakdown(clickhouse, scope, "page")
    finally:
        target.close()


def _raw_rows(gateway: ChildClickHouse) -> int:
    return sum(
        int(gateway.query("test_move_rows", f"SELECT count() AS n FROM {table}")[0]["n"])
        for table in RAW_TABLES
    )


def test_analytics_resume_by_day_and_refuse_other_data(tmp_path):
    source = ChildClickHouse(f"chdb:///{tmp_path / 'source'}")
    target = ChildClickHouse(f"chdb:///{tmp_path / 'target'}")
    try:
        schema.migrate(source)
        schema.migrate(target)
        generate(source, 7, days=3, events=900, seed=3)
        parts = plan_analytics(source, target, 100)
        assert sum(part.rows for part in parts) == _raw_rows(source) > 0
        assert parts[1].day == parts[0].day  # the first day takes more than one part

        assert not copy_analytics(source, target, parts, Budget(1), Silent())
        with pytest.raises(MoveError, match="another --analytics-batch-size than 64"):
            plan_analytics(source, target, 64)  # 100 rows of that day: not whole parts of 64
        rest = plan_analytics(source, target, 100)
        assert rest == parts[1:]
        assert copy_analytics(source, target, rest, Budget(None), Silent())
        assert plan_analytics(source, target, 100) == []
        assert _raw_rows(target) == _raw_rows(source)

        target.command("INSERT INTO events (site_id, timestamp) VALUES (99, now())")
        with pytest.raises(MoveError, match="a day this installation has none of"):
            plan_analytics(source, target, 100)
    finally:
        target.close()
        source.close()


# ----- the command, in processes of their own -----------------------------------------------


def _env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("URSA_", "REDIS_", "CLICKHOUSE", "DATABASE_URL"))
    }
    env.update(URSA_DATA_DIR=str(data_dir), **extra)
    return env


def _run(command: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=180)


def _inspect(folder: Path, site_ids: list[int], work: Path) -> dict[int, Any]:
    """Overview, page breakdown and raw-table numbers of each site, read in a child process."""
    now = dt.datetime.now(dt.UTC)
    found = {}
    for site_id in site_ids:
        request, result = work / "request.json", work / "result.json"
        request.write_text(
            json.dumps(
                {
                    "site_id": site_id,
                    "start": int((now - dt.timedelta(days=45)).timestamp()),
                    "end": int((now + dt.timedelta(days=1)).timestamp()),
                    "queries": RAW_QUERIES,
                }
            )
        )
        done = subprocess.run(
            [sys.executable, str(CHDB_TOOL), "inspect", str(folder), str(request), str(result)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        found[site_id] = json.loads(result.read_text())["before"]
    return found


@pytest.mark.slow
@pytest.mark.timeout(600)
async def test_move_command_resumes_and_verifies(tmp_path, postgres_url):
    source_dir, target_dir = tmp_path / "data", tmp_path / "target-clickhouse"
    source = make_engine(_migrated(_sqlite_url(source_dir), source_dir))
    await _fill(source)
    env = _env(source_dir)
    for domain, events in zip(("shop.example", "blog.example"), DEMO_EVENTS, strict=True):
        if domain == "blog.example":
            await add_site(make_sessionmaker(source), domain)
        made = _run(
            [URSA, "demo-data", domain, "--days", "40", "--events", str(events)], env, tmp_path
        )
        assert made.returncode == 0, made.stderr
    target_env = _env(source_dir, DATABASE_URL=postgres_url, CLICKHOUSE_URL=f"chdb:///{target_dir}")
    small = ["--batch-size", "2", "--analytics-batch-size", "150"]

    stopped = _run([*MOVE, *small, "--max-batches", "12"], target_env, tmp_path)
    assert stopped.returncode == EXIT_STOPPED, stopped.stderr
    assert "run `ursa move` again to continue" in stopped.stdout

    done = _run([*MOVE, *small], target_env, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "moved and verified" in done.stdout
    assert "MISMATCH" not in done.stdout

    target = make_engine(postgres_url)
    try:
        rows = await _rows(source)
        assert await _rows(target) == rows
        site_ids = [row["id"] for row in rows["sites"]]
        before = _inspect(source_dir / "clickhouse", site_ids, tmp_path)
        assert _inspect(target_dir, site_ids, tmp_path) == before
        assert sorted(before[site_id]["events"][0]["n"] for site_id in site_ids) == sorted(
            DEMO_EVENTS
        )
        for numbers in before.values():
            for table in RAW_TABLES:
                assert numbers[table][0]["n"] == numbers[table][0]["ids"]  # no duplicates

        again = _run(MOVE, target_env, tmp_path)  # complete: nothing to write, still verified
        assert again.returncode == 0, again.stdout + again.stderr
        assert "moved and verified (0 batches" in again.stdout
        assert await _rows(target) == rows
        assert await _next_site_id(target) == await _next_site_id(source)
    finally:
        await target.dispose()
        await source.dispose()


def test_the_targets_must_be_named(tmp_path):
    embedded = Settings(_env_file=None, URSA_DATA_DIR=tmp_path)
    with pytest.raises(MoveError, match="DATABASE_URL is not set"):
        source_settings(embedded)
    with pytest.raises(MoveError, match="CLICKHOUSE_URL is not set"):
        source_settings(embedded.model_copy(update={"DATABASE_URL": "postgresql://db/ursa"}))
    with pytest.raises(MoveError, match="no embedded installation"):
        source_settings(
            embedded.model_copy(
                update={"DATABASE_URL": "postgresql://db/ursa", "CLICKHOUSE_URL": "http://ch:8123"}
            )
        )


@pytest.mark.slow
def test_move_refuses_while_the_instance_runs(tmp_path, postgres_url):
    port = free_port()
    env = serve_env(tmp_path / "data", port, free_port())
    served = Served(env, port)
    try:
        env.update(DATABASE_URL=postgres_url, CLICKHOUSE_URL=f"chdb:///{tmp_path / 'target'}")
        refused = _run(MOVE, env, tmp_path)
    finally:
        served.stop()
    assert refused.returncode == 2
    assert "an Ursa instance is running" in refused.stderr
    assert "stop it first" in refused.stderr
    assert not (tmp_path / "target").exists()
