"""`ursa backup` and `ursa restore` as a user runs them, stopped and while `ursa serve` runs.

Every command runs as its own process (like `test_serve.py`): one process can open one chDB
directory only, and these tests use three. ClickHouse is read back independently of the backup
code through `chdb_tool.py inspect`: rows per table of the site, and the dashboard's numbers.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis

from app.analytics.buffer.stream import GROUP
from app.cli.backup import BackupError, wait_flushed
from tests.conftest import RedisProcess, free_port
from tests.integration.test_serve import Served, _env, _post, _run

DOMAIN = "backup.example"
CHDB_TOOL = str(Path(__file__).with_name("chdb_tool.py"))
COUNTS = {  # rows of the site per table; rollups merged, so background merges cannot change them
    "events": "SELECT count() AS n FROM events WHERE site_id = {site_id:UInt32}",
    "performance": "SELECT count() AS n FROM performance WHERE site_id = {site_id:UInt32}",
    "engagement": "SELECT count() AS n FROM engagement WHERE site_id = {site_id:UInt32}",
    "totals_hourly": "SELECT count() AS n FROM totals_hourly FINAL WHERE site_id = {site_id:UInt32}",
    "breakdowns_daily": (
        "SELECT count() AS n FROM breakdowns_daily FINAL WHERE site_id = {site_id:UInt32}"
    ),
    "vitals_daily": "SELECT count() AS n FROM vitals_daily FINAL WHERE site_id = {site_id:UInt32}",
}
TABLES = "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"


def _ok(env: dict[str, str], *args: str) -> str:
    result = _run(env, *args)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def _installation(env: dict[str, str]) -> int:
    """A user, their site and a week of demo traffic; returns the site id."""
    _ok(
        {**env, "URSA_PASSWORD": "correct horse battery staple"},
        "users",
        "create",
        "--email",
        "owner@example.com",
    )
    _ok(env, "sites", "add", DOMAIN, "--owner", "owner@example.com")
    _ok(env, "demo-data", DOMAIN, "--days", "7", "--events", "3000", "--seed", "11")
    site_id, domain, _ = _ok(env, "sites", "list").split()
    assert domain == DOMAIN
    return int(site_id)


def _dashboard(env: dict[str, str]) -> list[dict[str, Any]]:
    return [json.loads(_ok(env, "stats", DOMAIN, "--period", p, "--json")) for p in ("7d", "30d")]


def _analytics(chdb_dir: Path, site_id: int, work: Path) -> dict[str, Any]:
    """Rows per table and the overview of the site, read straight from a chDB directory."""
    now = int(time.time())
    request = {"site_id": site_id, "start": now - 40 * 86400, "end": now + 86400, "queries": COUNTS}
    (work / "request.json").write_text(json.dumps(request))
    subprocess.run(
        [
            sys.executable,
            CHDB_TOOL,
            "inspect",
            str(chdb_dir),
            str(work / "request.json"),
            str(work / "result.json"),
        ],
        check=True,
        timeout=120,
    )
    before = json.loads((work / "result.json").read_text())["before"]
    return {"overview": before["overview"], **{table: before[table][0]["n"] for table in COUNTS}}


def _app_rows(database: Path) -> dict[str, int]:
    with closing(sqlite3.connect(database)) as conn:
        tables = [row[0] for row in conn.execute(TABLES)]
        return {
            table: conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0] for table in tables
        }


def _restore(
    folder: Path, backup: Path, *extra: str
) -> tuple[dict[str, str], subprocess.CompletedProcess[str]]:
    env = _env(folder, free_port(), free_port())
    return env, _run(env, "restore", str(backup), *extra)


@dataclass
class Original:
    """An installation, what it showed before its backup, and the backup's output."""

    env: dict[str, str]
    data_dir: Path
    site_id: int
    dashboard: list[dict[str, Any]]
    analytics: dict[str, Any]
    app_rows: dict[str, int]
    backup: Path
    output: str


@pytest.fixture(scope="module")
def original(tmp_path_factory: pytest.TempPathFactory) -> Original:
    folder = tmp_path_factory.mktemp("original")
    env = _env(folder / "data", free_port(), free_port())
    site_id = _installation(env)
    dashboard = _dashboard(env)
    analytics = _analytics(folder / "data" / "clickhouse", site_id, folder)
    app_rows = _app_rows(folder / "data" / "ursa.db")
    output = _ok(env, "backup", str(folder / "backup"))
    return Original(
        env, folder / "data", site_id, dashboard, analytics, app_rows, folder / "backup", output
    )


@pytest.mark.slow
def test_backup_holds_a_manifest_of_rows(original):
    assert original.analytics["events"] == 3000
    assert original.app_rows["users"] == original.app_rows["sites"] == 1
    assert f"backup written to {original.backup}" in original.output
    assert original.backup.stat().st_mode & 0o777 == 0o700
    manifest = json.loads((original.backup / "manifest.json").read_text())
    assert manifest["format"] == 1
    assert manifest["created_at"]
    assert manifest["clickhouse"]["events"] == 3000
    assert manifest["app_database"] == original.app_rows
    again = _run(original.env, "backup", str(original.backup))  # never over another backup
    assert again.returncode == 2
    assert "not an empty directory" in again.stderr


@pytest.mark.slow
def test_round_trip_into_an_empty_data_dir(original, tmp_path):
    restored, result = _restore(tmp_path / "data", original.backup)
    assert result.returncode == 0, result.stderr[-3000:]
    assert _app_rows(tmp_path / "data" / "ursa.db") == original.app_rows
    assert _analytics(tmp_path / "data" / "clickhouse", original.site_id, tmp_path) == (
        original.analytics
    )
    assert _dashboard(restored) == original.dashboard
    secrets = {p.name: p.read_text() for p in (original.data_dir / "secrets").iterdir()}
    assert {p.name: p.read_text() for p in (tmp_path / "data" / "secrets").iterdir()} == secrets


@pytest.mark.slow
def test_restore_refuses_a_data_dir_that_is_not_empty(original, tmp_path):
    occupied = tmp_path / "data"
    occupied.mkdir()
    (occupied / "ursa.db").write_bytes(b"someone else's database")
    _, refused = _restore(occupied, original.backup)
    assert refused.returncode == 2
    assert "is not empty" in refused.stderr
    assert "--force" in refused.stderr
    assert [p.name for p in occupied.iterdir()] == ["ursa.db"]
    assert (occupied / "ursa.db").read_bytes() == b"someone else's database"

    _, not_a_backup = _restore(tmp_path / "empty", original.data_dir)
    assert not_a_backup.returncode == 2
    assert "is not an Ursa backup (no manifest.json)" in not_a_backup.stderr

    env, forced = _restore(occupied, original.backup, "--force")
    assert forced.returncode == 0, forced.stderr[-3000:]
    assert _dashboard(env) == original.dashboard


@pytest.mark.slow
def test_backup_while_serving_includes_the_buffered_events(tmp_path):
    port = free_port()
    source = _env(tmp_path / "data", port, free_port())
    site_id = _installation(source)
    served = Served(source, port)
    try:
        assert [_post(served.url, DOMAIN, f"/live/{n}") for n in range(20)] == [202] * 20
        _ok(source, "backup", str(tmp_path / "backup"))  # at once: the events may be buffered
        at_backup = _dashboard(source)
    finally:
        code, stderr = served.stop()
    assert code == 0, stderr
    manifest = json.loads((tmp_path / "backup" / "manifest.json").read_text())
    assert manifest["clickhouse"]["events"] == 3000 + 20

    restored, result = _restore(tmp_path / "restored", tmp_path / "backup")
    assert result.returncode == 0, result.stderr[-3000:]
    assert _dashboard(restored) == at_backup
    assert _analytics(tmp_path / "restored" / "clickhouse", site_id, tmp_path)["events"] == 3020


def test_backup_waits_until_the_flusher_acknowledged_what_was_buffered(redis_process: RedisProcess):
    client = redis.Redis.from_url(redis_process.url)
    stream = f"ursa:test:backup:{uuid.uuid4().hex[:8]}"
    client.xgroup_create(stream, GROUP, id="0", mkstream=True)
    ids = [client.xadd(stream, {"n": str(n)}) for n in range(3)]
    waiter = threading.Thread(target=wait_flushed, args=(client, stream, 30.0))
    waiter.start()
    client.xreadgroup(GROUP, "flusher", {stream: ">"}, count=2)  # a first batch
    client.xack(stream, GROUP, ids[0], ids[1])
    time.sleep(0.5)
    assert waiter.is_alive()  # the third event is not in ClickHouse yet
    client.xadd(stream, {"n": "after the backup started"})
    client.xreadgroup(GROUP, "flusher", {stream: ">"}, count=1)
    assert waiter.is_alive()  # delivered but not acknowledged
    client.xack(stream, GROUP, ids[2])
    waiter.join(timeout=5)
    assert not waiter.is_alive()  # the entry added after the start is not waited for
    client.xadd(stream, {"n": "never flushed"})
    with pytest.raises(BackupError, match="did not flush its event buffer"):
        wait_flushed(client, stream, 0.3)
    client.delete(stream)
    client.close()
