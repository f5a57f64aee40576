"""Backups of an embedded installation, and restoring one into an empty data dir.

A backup is a directory, readable by its owner only (it holds password hashes and secrets), of
`manifest.json`, `ursa.db`, `clickhouse/` and `secrets/`; what each holds, and why no Redis data
is kept, is in docs/DISASTER.md ("Embedded installations").
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import json
import shutil
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
from sqlalchemy.engine import make_url

from app.analytics.buffer.flush import LOCK_TTL_MS, Flusher
from app.analytics.buffer.lease import Lease
from app.analytics.buffer.stream import GROUP
from app.analytics.clickhouse import schema
from app.analytics.clickhouse.gateway import ClickHouse, Gateway
from app.errors import AppError
from app.server.embedded_redis import EmbeddedRedis, start_embedded_redis
from app.server.instance import open_gateway, running_instance_url
from app.server.migrate import migrate_app_db
from app.settings import Settings
from app.store import keys
from app.store.clients import sync_client

FORMAT = 1
MANIFEST = "manifest.json"
APP_DB = "ursa.db"
CLICKHOUSE_DIR = "clickhouse"
SECRETS_DIR = "secrets"  # the generated SECRET_KEY, HASH_KEY and INTERNAL_TOKEN of the data dir
# chDB's `backups.allowed_path` (relative to its directory), set by the gateway: chDB writes
# backups only below it, so a backup is written there and then moved into place, and a restore
# stages the copy there. While `ursa serve` runs it holds the chDB directory, so the statements
# go through its internal port and it performs them.
ENGINE_BACKUPS = "backups"
DATABASE = "default"
FLUSH_WAIT_SECONDS = 120.0
LEASE_WAIT_SECONDS = 60.0
POLL_SECONDS = 0.2

BACKUP_STEPS = ("flush the event buffer", "back up the analytics", "back up the app database")
RESTORE_STEPS = ("restore the app database", "restore the analytics", "compare row counts")

OnStep = Callable[[str], None]

_TABLES = """
SELECT name, engine FROM system.tables
WHERE database = currentDatabase() AND engine LIKE '%MergeTree' AND name != 'schema_migrations'
ORDER BY name
"""
_SQLITE_TABLES = (
    "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
)
_STATUS = "SELECT status, error FROM system.backups WHERE id = {id:String}"
_DONE = {"BACKUP_CREATED", "RESTORED"}
_FAILED = {"BACKUP_FAILED", "RESTORE_FAILED", "BACKUP_CANCELLED", "RESTORE_CANCELLED"}


class BackupError(AppError):
    """A backup or restore cannot go on; the message says why and what to do."""


@dataclass
class Manifest:
    """What `manifest.json` records about a backup: written last, so a directory without it is
    an interrupted backup."""

    created_at: str
    ursa_version: str
    app_database: dict[str, int]
    clickhouse: dict[str, int]
    format: int = FORMAT

    def write(self, folder: Path) -> None:
        (folder / MANIFEST).write_text(json.dumps(self.__dict__, indent=2, sort_keys=True) + "\n")

    @classmethod
    def read(cls, folder: Path) -> Manifest:
        try:
            data = json.loads((folder / MANIFEST).read_text())
        except FileNotFoundError:
            raise BackupError(f"{folder} is not an Ursa backup (no {MANIFEST})") from None
        except ValueError as exc:
            raise BackupError(f"{folder / MANIFEST} is not valid JSON: {exc}") from None
        if data.get("format") != FORMAT:
            raise BackupError(f"{folder} has backup format {data.get('format')}, not {FORMAT}")
        return cls(**data)


# ----- backup -------------------------------------------------------------------------------


def backup(settings: Settings, target: Path, on_step: OnStep = lambda _: None) -> Manifest:
    """Back up the embedded installation of `settings` into the new directory `target`."""
    settings = _embedded(settings).with_secrets()
    database = _sqlite_path(settings)
    if not database.exists():
        raise BackupError(f"nothing to back up: {database} does not exist")
    _prepare_target(target)
    try:
        manifest = _write_backup(settings, database, target, on_step)
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)  # no half backups: it was new or empty
        raise
    return manifest


def _write_backup(settings: Settings, database: Path, target: Path, on_step: OnStep) -> Manifest:
    with _buffer_redis(settings) as client, _gateway(settings) as gateway:
        on_step(BACKUP_STEPS[0])
        _flush_buffer(settings, client, gateway)
        on_step(BACKUP_STEPS[1])
        with _flusher_paused(client) as lease:
            counts = clickhouse_counts(gateway)
            _clickhouse_backup(settings, gateway, target / CLICKHOUSE_DIR, lease.renew)
    on_step(BACKUP_STEPS[2])
    _sqlite_copy(database, target / APP_DB)
    _copy_secrets(settings.data_dir / SECRETS_DIR, target / SECRETS_DIR)
    manifest = Manifest(
        created_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        ursa_version=importlib.metadata.version("ursa"),
        app_database=sqlite_counts(target / APP_DB),
        clickhouse=counts,
    )
    manifest.write(target)
    return manifest


def _embedded(settings: Settings) -> Settings:
    if not settings.embedded:
        raise BackupError(
            "backup and restore are for embedded mode; with CLICKHOUSE_URL set, back up "
            "ClickHouse and the app database with their own tools (docs/DISASTER.md)"
        )
    if not settings.database_url.startswith("sqlite"):
        raise BackupError("DATABASE_URL names a database server: back it up with its own tools")
    return settings


def _sqlite_path(settings: Settings) -> Path:
    return Path(make_url(settings.database_url).database or "").resolve()


def _prepare_target(target: Path) -> None:
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise BackupError(f"{target} already exists and is not an empty directory")
    target.mkdir(parents=True, exist_ok=True, mode=0o700)
    target.chmod(0o700)


@contextmanager
def _gateway(settings: Settings) -> Iterator[Gateway]:
    gateway = open_gateway(settings)
    try:
        yield gateway
    finally:
        gateway.close()


@contextmanager
def _buffer_redis(settings: Settings) -> Iterator[redis.Redis]:
    """The buffer's Redis: the running instance's, else one started here on the data dir."""
    server: EmbeddedRedis | None = None
    url = settings.REDIS_URL
    if not url and running_instance_url(settings):
        url = EmbeddedRedis(settings.data_dir / "redis").url
    elif not url:
        settings, server = start_embedded_redis(settings)
        url = settings.REDIS_URL
    client = sync_client(url)
    try:
        yield client
    finally:
        client.close()
        if server is not None:
            server.stop()


def _flush_buffer(settings: Settings, client: redis.Redis, gateway: Gateway) -> None:
    """Get every event accepted so far into ClickHouse (or fail saying why not)."""
    if running_instance_url(settings):
        wait_flushed(client, settings.BUFFER_STREAM, FLUSH_WAIT_SECONDS)
        return
    flusher = Flusher(client, gateway, settings.BUFFER_STREAM, batch_size=settings.FLUSH_BATCH_SIZE)
    while flusher.drain().batches:  # nothing else flushes: this process holds the engine
        pass


def wait_flushed(client: redis.Redis, stream: str, timeout: float) -> None:
    """Wait until the running flusher has acknowledged every entry now in `stream`."""
    mark = _last_id(client, stream)
    deadline = time.monotonic() + timeout
    while mark is not None and not _flushed_past(client, stream, mark):
        if time.monotonic() > deadline:
            raise BackupError(
                f"the running instance did not flush its event buffer within {timeout:.0f} s; "
                "check its log for flush errors (is ClickHouse healthy?) and try again"
            )
        time.sleep(POLL_SECONDS)


def _stream_id(value: bytes | str) -> tuple[int, int]:
    text = value.decode() if isinstance(value, bytes) else value
    millis, _, sequence = text.partition("-")
    return int(millis), int(sequence or 0)


def _last_id(client: redis.Redis, stream: str) -> tuple[int, int] | None:
    try:
        info = client.xinfo_stream(stream)
    except redis.ResponseError:  # no such stream: nothing was ever buffered
        return None
    return _stream_id(info["last-generated-id"]) if info["length"] else None


def _flushed_past(client: redis.Redis, stream: str, mark: tuple[int, int]) -> bool:
    groups = [g for g in client.xinfo_groups(stream) if g["name"] in (GROUP, GROUP.encode())]
    if not groups:
        return False  # the flusher has not read the stream yet
    if _stream_id(groups[0]["last-delivered-id"]) < mark:
        return False
    if not groups[0]["pending"]:
        return True
    return _stream_id(client.xpending(stream, GROUP)["min"]) > mark


@contextmanager
def _flusher_paused(client: redis.Redis) -> Iterator[Lease]:
    """Hold the flusher's lease, so no batch lands in ClickHouse meanwhile."""
    lease = Lease(client, keys.FLUSH_LOCK, LOCK_TTL_MS)
    deadline = time.monotonic() + LEASE_WAIT_SECONDS
    while not lease.acquire():
        if time.monotonic() > deadline:
            raise BackupError("the flusher's lease stayed taken for a minute; try again")
        time.sleep(POLL_SECONDS)
    try:
        yield lease
    finally:
        lease.release()


def _clickhouse_backup(
    settings: Settings, gateway: Gateway, destination: Path, keep_alive: Callable[[], object]
) -> None:
    name = f"ursa-{uuid.uuid4().hex}"
    run_engine_job(gateway, f"BACKUP DATABASE {DATABASE} TO File('{name}')", name, keep_alive)
    shutil.move(_engine_backups(settings) / name, destination)


def _engine_backups(settings: Settings) -> Path:
    return settings.data_dir / CLICKHOUSE_DIR / ENGINE_BACKUPS


def run_engine_job(
    gateway: Gateway,
    statement: str,
    job_id: str,
    keep_alive: Callable[[], object] = lambda: None,
) -> None:
    """Run a BACKUP or RESTORE in the background; wait for it, calling `keep_alive` meanwhile."""
    gateway.command(f"{statement} SETTINGS id = '{job_id}' ASYNC")
    while _job_status(gateway, job_id) not in _DONE:
        keep_alive()
        time.sleep(POLL_SECONDS)


def _job_status(gateway: Gateway, job_id: str) -> str:
    rows = gateway.query("backup_status", _STATUS, {"id": job_id})
    if not rows:
        raise BackupError(f"ClickHouse lost track of job {job_id}")
    status, error = str(rows[0]["status"]), str(rows[0]["error"])
    if status in _FAILED:
        raise BackupError(_failure(status, error))
    return status


def _failure(status: str, error: str) -> str:
    """A one-line explanation of a failed BACKUP or RESTORE (no server stack trace)."""
    if "backups.allowed_path" in error:
        return (
            "the embedded ClickHouse was started without a backups path "
            "(backups.allowed_path); if `ursa serve` runs an older version, restart it"
        )
    return f"ClickHouse answered {status}: {error.partition(', Stack trace')[0]}"


def _sqlite_copy(source: Path, destination: Path) -> None:
    """Copy a SQLite database with the online backup API (consistent while others write)."""
    with closing(sqlite3.connect(source)) as src, closing(sqlite3.connect(destination)) as dst:
        src.backup(dst)


def _copy_secrets(source: Path, destination: Path) -> None:
    if source.is_dir():
        shutil.copytree(source, destination)


def sqlite_counts(database: Path) -> dict[str, int]:
    """Rows per table of a SQLite database."""
    with closing(sqlite3.connect(database)) as conn:
        names = [row[0] for row in conn.execute(_SQLITE_TABLES)]
        return {
            name: conn.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0]  # noqa: S608
            for name in names  # (names from sqlite_master)
        }


def clickhouse_counts(gateway: Gateway) -> dict[str, int]:
    """Rows per ClickHouse table; rollups counted after merging (`FINAL`), so merges agree."""
    counts = {}
    for table in gateway.query("backup_tables", _TABLES):
        final = "" if table["engine"] == "MergeTree" else " FINAL"
        sql = f"SELECT count() AS n FROM `{table['name']}`{final}"  # noqa: S608 (system.tables)
        counts[str(table["name"])] = int(gateway.query("backup_count", sql)[0]["n"])
    return counts


# ----- restore ------------------------------------------------------------------------------


def restore(
    settings: Settings, source: Path, force: bool = False, on_step: OnStep = lambda _: None
) -> Manifest:
    """Restore the backup in `source` into the (empty, or with `force` replaced) data dir."""
    settings = _embedded(settings)
    manifest = Manifest.read(source)
    _prepare_data_dir(settings, force)
    on_step(RESTORE_STEPS[0])
    database = _sqlite_path(settings)
    database.parent.mkdir(parents=True, exist_ok=True)
    _sqlite_copy(source / APP_DB, database)
    _copy_secrets(source / SECRETS_DIR, settings.data_dir / SECRETS_DIR)
    migrate_app_db(settings)  # a backup of an older version gets the newer migrations
    on_step(RESTORE_STEPS[1])
    gateway = ClickHouse(settings.clickhouse_dsn)
    try:
        _clickhouse_restore(settings, gateway, source / CLICKHOUSE_DIR)
        on_step(RESTORE_STEPS[2])
        _compare("app database", manifest.app_database, sqlite_counts(database))
        _compare("ClickHouse", manifest.clickhouse, clickhouse_counts(gateway))
    finally:
        gateway.close()
    return manifest


def _prepare_data_dir(settings: Settings, force: bool) -> None:
    data_dir = settings.data_dir
    if running_instance_url(settings):
        raise BackupError(f"Ursa is running on {data_dir}: stop it before restoring")
    in_use = [path for path in _restored_paths(settings) if path.exists()]
    occupied = data_dir.exists() and any(data_dir.iterdir())
    if (occupied or in_use) and not force:
        raise BackupError(
            f"{data_dir} is not empty: restore into an empty data dir, or pass --force to "
            "replace its database, analytics, buffer and secrets"
        )
    for path in in_use:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)


def _restored_paths(settings: Settings) -> list[Path]:
    """What a forced restore replaces: the app database, chDB, the buffer's AOF, secrets."""
    database = _sqlite_path(settings)
    data_dir = settings.data_dir
    return [
        database,
        database.with_name(database.name + "-wal"),
        database.with_name(database.name + "-shm"),
        data_dir / CLICKHOUSE_DIR,
        data_dir / "redis",
        data_dir / SECRETS_DIR,
        data_dir / "instance.json",
    ]


def _clickhouse_restore(settings: Settings, gateway: Gateway, source: Path) -> None:
    name = f"ursa-restore-{uuid.uuid4().hex}"
    staged = _engine_backups(settings) / name
    shutil.copytree(source, staged)
    try:
        run_engine_job(gateway, f"RESTORE DATABASE {DATABASE} FROM File('{name}')", name)
    finally:
        shutil.rmtree(staged)
    schema.migrate(gateway)  # a backup of an older version gets the newer migrations


def _compare(store: str, expected: dict[str, int], found: dict[str, Any]) -> None:
    wrong = [
        f"{table}: {rows} in the backup, {found.get(table)} restored"
        for table, rows in expected.items()
        if found.get(table) != rows
    ]
    if wrong:
        raise BackupError(f"the restored {store} differs from the backup: {'; '.join(wrong)}")
