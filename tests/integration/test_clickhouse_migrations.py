"""ClickHouse migrations applied to an installation that already holds data (real chDB)."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Sequence
from pathlib import Path

from app.analytics.clickhouse import schema
from app.analytics.clickhouse.child import ChildClickHouse
from app.analytics.queries import stats
from app.analytics.queries.periods import resolve_period
from app.cli.demo import generate

SITE_ID = 7
RAW = """
SELECT uniqExact(visitor_id) AS visitors, countIf(name = 'pageview') AS pageviews,
       count() AS events, sum(session_start) AS visits
FROM events WHERE site_id = {site_id:UInt32}
"""
RAW_PAGES = """
SELECT pathname AS value, uniqExact(visitor_id) AS visitors, count() AS pageviews
FROM events WHERE site_id = {site_id:UInt32} AND name = 'pageview'
GROUP BY pathname ORDER BY visitors DESC, value
"""
ROLLUP_SUMS = """
SELECT (SELECT sum(pageviews) FROM totals_hourly) AS hourly_pageviews,
       (SELECT sum(session_starts) FROM totals_hourly) AS starts,
       (SELECT sum(pageviews) FROM breakdowns_daily) AS daily_pageviews
"""
VISITOR_COLUMNS = """
SELECT table, name, type FROM system.columns
WHERE database = currentDatabase() AND name LIKE '%visitors' AND table != 'events'
ORDER BY table
"""
EXACT = "AggregateFunction(uniqCombined(18), UInt64)"


def _first_migration(tmp_path: Path) -> Path:
    folder = tmp_path / "migrations"
    folder.mkdir()
    [(_, first), *_] = schema.migration_files()
    shutil.copy(first, folder)
    return folder


def _raw(gateway: ChildClickHouse) -> dict[str, int]:
    return {k: int(v) for k, v in gateway.query("raw", RAW, {"site_id": SITE_ID})[0].items()}


def test_exact_visitors_migration_rebuilds_the_visitor_counts_of_existing_rollups(tmp_path):
    gateway = ChildClickHouse(f"chdb:///{tmp_path / 'chdb'}")
    try:
        schema.migrate(gateway, _first_migration(tmp_path))
        generate(gateway, SITE_ID, days=3, events=6_000, seed=11)
        sums = gateway.query("sums", ROLLUP_SUMS)
        scope = stats.Scope(SITE_ID, resolve_period("7d", "UTC", dt.datetime.now(dt.UTC)))

        assert schema.migrate(gateway) == ["0002_exact_visitors.sql"]
        assert gateway.query("sums", ROLLUP_SUMS) == sums  # the pass adds visitors only
        rollups = ["breakdowns_daily", "breakdowns_daily_mv", "totals_hourly", "totals_hourly_mv"]
        assert gateway.query("columns", VISITOR_COLUMNS) == [
            {"table": table, "name": "unique_visitors", "type": EXACT} for table in rollups
        ]
        raw = _raw(gateway)
        assert raw["visitors"] > 256  # past the exact range of the old precision
        numbers = stats.overview(gateway, scope)
        assert {name: numbers[name] for name in raw} == raw
        pages = gateway.query("raw_pages", RAW_PAGES, {"site_id": SITE_ID})
        assert stats.breakdown(gateway, scope, "page", limit=1000) == pages

        generate(gateway, SITE_ID, days=3, events=3_000, seed=12)  # through the altered views
        numbers = stats.overview(gateway, scope)
        assert {name: numbers[name] for name in raw} == _raw(gateway) != raw
    finally:
        gateway.close()


EVENT_COLUMNS = ["site_id", "timestamp", "event_id", "name", "visitor_id", "pathname"]


def _pageviews(count: int) -> list[Sequence[object]]:
    now = int(dt.datetime.now(dt.UTC).timestamp())
    ids = list(range(count))
    return [[SITE_ID] * count, [now] * count, ids, ["pageview"] * count, ids, ["/"] * count]


def test_a_batch_replayed_after_a_kill_that_followed_the_migrations_is_written_once(tmp_path):
    # `ursa serve` migrates and flushes in one process. Killed after a batch's insert but
    # before its acknowledgement, it replays the batch with the same token when it starts
    # again: the rollups must drop the copy as the events table does.
    dsn = f"chdb:///{tmp_path / 'chdb'}"
    first = ChildClickHouse(dsn)
    schema.migrate(first)
    first.insert("events", EVENT_COLUMNS, _pageviews(27), token="batch-1")
    first._process.kill()  # SIGKILL: no orderly close of chDB
    first._process.join()
    again = ChildClickHouse(dsn)
    try:
        again.insert("events", EVENT_COLUMNS, _pageviews(27), token="batch-1")
        assert again.query("sums", ROLLUP_SUMS + " , (SELECT count() FROM events) AS rows") == [
            {"hourly_pageviews": 27, "starts": 0, "daily_pageviews": 27 * 10, "rows": 27}
        ]
    finally:
        again.close()
