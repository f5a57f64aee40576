"""Migrations: Alembic for the app database, `schema` for ClickHouse, retired Redis keys."""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config

from app.analytics.clickhouse import schema
from app.analytics.clickhouse.gateway import Gateway
from app.settings import Settings
from app.store import keys
from app.store.clients import sync_client
from app.store.upgrade import drop_retired_keys

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]


MIGRATE_LOCK_SECONDS = 300


def migrate_app_db(settings: Settings) -> None:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("sqlalchemy.url", settings.database_url)
    command.upgrade(config, "head")


def migrate_all(settings: Settings, gateway: Gateway) -> None:
    """App DB (Alembic) and ClickHouse schema, under a Redis lock so processes never race."""
    client = sync_client(settings.REDIS_URL)
    try:
        with client.lock(keys.MIGRATE_LOCK, timeout=MIGRATE_LOCK_SECONDS, blocking_timeout=600):
            log.info("migrating the app database…")
            migrate_app_db(settings)
            log.info("opening ClickHouse at %s…", settings.clickhouse_location)
            applied = schema.migrate(gateway, cluster=settings.CLICKHOUSE_CLUSTER)
            dropped = drop_retired_keys(client)
    finally:
        client.close()
    log.info(
        "migrations done (%d ClickHouse migrations applied, %d retired Redis keys dropped)",
        len(applied),
        dropped,
    )
