"""App database: Alembic up/down on SQLite and Postgres, and the sites service."""

from __future__ import annotations

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import JSON, Engine, create_engine, inspect, text
from sqlmodel import SQLModel

from app.addresses.hostnames import normalize_domain
from app.db import sync_url
from app.errors import Conflict, InvalidInput, NotFound
from app.server.migrate import ROOT
from app.sites.registry import add_site, get_site

pytestmark = pytest.mark.db


@pytest.fixture
def fresh_database_url(tmp_path):
    from tests.conftest import TEST_DB, _postgres_database

    if TEST_DB == "postgres":
        yield from _postgres_database()
    else:
        yield f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"


TABLES = {"sites", "users", "organizations", "memberships", "invitations", "billing_profiles"}


def _site_columns(engine: Engine) -> set[str]:
    return {column["name"] for column in inspect(engine).get_columns("sites")}


@pytest.fixture
def fresh_engine(fresh_database_url):
    engine = create_engine(sync_url(fresh_database_url))
    yield engine
    engine.dispose()


def _upgraded(url: str, revision: str = "head") -> Config:
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("sqlalchemy.url", url)
    command.upgrade(config, revision)
    return config


def test_migrations_upgrade_and_downgrade(fresh_database_url, fresh_engine):
    config = _upgraded(fresh_database_url)
    assert set(inspect(fresh_engine).get_table_names()) >= TABLES
    assert {"organization_id", "allowed_hostnames"} <= _site_columns(fresh_engine)
    [foreign_key] = inspect(fresh_engine).get_foreign_keys("sites")
    assert foreign_key["referred_table"] == "organizations"
    command.downgrade(config, "0002")
    assert "allowed_hostnames" not in _site_columns(fresh_engine)
    command.downgrade(config, "0001")
    assert set(inspect(fresh_engine).get_table_names()) & TABLES == {"sites"}
    assert {"owner_id", "organization_id"} & _site_columns(fresh_engine) == {"owner_id"}
    command.downgrade(config, "base")
    assert not set(inspect(fresh_engine).get_table_names()) & TABLES


def test_sites_survive_the_accounts_migration_both_ways(fresh_database_url, fresh_engine):
    config = _upgraded(fresh_database_url, "0001")
    with fresh_engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO sites (domain, timezone, owner_id, created_at)"
                " VALUES ('kept.example', 'Europe/Paris', 7, CURRENT_TIMESTAMP)"
            )
        )
    command.upgrade(config, "head")
    with fresh_engine.connect() as connection:
        query = text("SELECT domain, timezone, organization_id, allowed_hostnames FROM sites")
        rows = connection.execute(query.columns(allowed_hostnames=JSON))
        assert rows.all() == [("kept.example", "Europe/Paris", None, [])]
    command.downgrade(config, "0001")
    with fresh_engine.connect() as connection:
        rows = connection.execute(text("SELECT domain, timezone, owner_id FROM sites"))
        assert rows.all() == [("kept.example", "Europe/Paris", None)]


def test_migrations_match_the_models(fresh_database_url, fresh_engine):
    """What `alembic revision --autogenerate` would find missing: nothing."""
    _upgraded(fresh_database_url)
    with fresh_engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, SQLModel.metadata) == []


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("Example.com", "example.com"),
        ("https://www.example.com/path?q=1", "example.com"),
        ("http://blog.example.co.uk:8080/", "blog.example.co.uk"),
        ("bücher.example", "xn--bcher-kva.example"),
        ("  example.org.  ", "example.org"),
    ],
)
def test_normalize_domain(raw, normalized):
    assert normalize_domain(raw) == normalized


@pytest.mark.parametrize(
    "raw", ["", "localhost", "exa mple.com", "example\n.com", "-bad.com", "a..b", "x" * 300]
)
def test_invalid_domains_are_rejected(raw):
    with pytest.raises(InvalidInput):
        normalize_domain(raw)


async def test_sites_are_unique_and_found(services, site_domain):
    with pytest.raises(Conflict):
        await add_site(services.sessions, f"https://www.{site_domain}/")
    assert (await get_site(services.sessions, site_domain)).domain == site_domain
    with pytest.raises(NotFound):
        await get_site(services.sessions, "missing.example")
