"""Process start-up shared by the CLI commands: secrets, Redis, migrations, services."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import redis
from alembic import command
from alembic.config import Config

from app.analytics.clickhouse import schema
from app.analytics.clickhouse.gateway import Gateway
from app.observability import logging as observability_logging
from app.observability.logging import Stream
from app.server.embedded_redis import EmbeddedRedis
from app.settings import Settings

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
MIGRATE_LOCK_KEY = "ursa:lock:migrate"
MIGRATE_LOCK_SECONDS = 300
# What an `ursa` process creates is for its user alone, whatever umask it was started with:
# files 0600, folders 0700. The data dir holds password hashes, emails, session records and
# buffered events (SQLite, the embedded Redis's AOF, chDB's folders, secrets, the outbox).
PRIVATE_UMASK = 0o077


class ConfigurationError(RuntimeError):
    """The environment does not allow this command to start; the message says what to set."""


def configure_logging(level: str, stream: Stream = "stderr") -> None:
    """Structured, token-redacted logs at `level` (`app.observability.logging`).

    Commands log to stderr, so that their stdout stays their output; service processes (web,
    worker, scheduler, serve) call this again with `"stdout"`, where the platform reads logs.
    """
    observability_logging.configure_logging(level, stream)


def keep_files_private(settings: Settings) -> None:
    """Create everything from now on with `PRIVATE_UMASK` (inherited by the embedded
    redis-server and the HTTP helpers, applied by SQLite and chDB), and, in embedded mode, warn
    when the data dir or an entry of it (made by an earlier version, or by hand) lets the group
    or others in. Distributed processes keep no data there: their volume's modes are the
    platform's (an `emptyDir` is 0777)."""
    os.umask(PRIVATE_UMASK)
    data_dir = settings.data_dir
    exposed = _exposed(data_dir) if settings.embedded else []
    if exposed:
        log.warning(
            "the data dir %s is readable by other users: %s; run: chmod -R go-rwx %s",
            data_dir,
            ", ".join(exposed),
            data_dir,
        )


def _exposed(data_dir: Path) -> list[str]:
    """`data_dir` and its entries whose mode grants the group or others anything, as
    `<path> (<mode>)`: under a folder of 0700, deeper files are out of their reach anyway."""
    if not data_dir.is_dir():
        return []
    exposed = []
    for path in (data_dir, *data_dir.iterdir()):
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
        except FileNotFoundError:  # removed meanwhile, or a dangling link
            continue
        if mode & PRIVATE_UMASK:
            exposed.append(f"{path} ({mode:04o})")
    return exposed


def start_embedded_redis(settings: Settings) -> tuple[Settings, EmbeddedRedis | None]:
    """Start our own redis-server unless `REDIS_URL` points at one."""
    if settings.REDIS_URL:
        return settings, None
    server = EmbeddedRedis(settings.data_dir / "redis", maxmemory=settings.REDIS_MAXMEMORY)
    log.info("starting redis-server in %s…", server.folder)
    url = server.start()
    return settings.model_copy(update={"REDIS_URL": url}), server


def require_redis(settings: Settings) -> None:
    if not settings.REDIS_URL:
        raise ConfigurationError(
            "REDIS_URL is not set: separate web/worker/scheduler processes share one Redis "
            "(or run `ursa serve`, which starts its own)"
        )


def migrate_app_db(settings: Settings) -> None:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("sqlalchemy.url", settings.database_url)
    command.upgrade(config, "head")


def migrate_all(settings: Settings, gateway: Gateway) -> None:
    """App DB (Alembic) and ClickHouse schema, under a Redis lock so processes never race."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    try:
        with client.lock(MIGRATE_LOCK_KEY, timeout=MIGRATE_LOCK_SECONDS, blocking_timeout=600):
            log.info("migrating the app database…")
            migrate_app_db(settings)
            log.info("opening ClickHouse at %s…", settings.clickhouse_location)
            applied = schema.migrate(gateway, cluster=settings.CLICKHOUSE_CLUSTER)
    finally:
        client.close()
    log.info("migrations done (%d ClickHouse migrations applied)", len(applied))
