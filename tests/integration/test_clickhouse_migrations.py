"""ClickHouse migrations applied to an installation that already holds data (real chDB)."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from app.analytics.buffer.enrich import EVENT_COLUMNS as ALL_EVENT_COLUMNS
from app.analytics.buffer.enrich import PERFORMANCE_COLUMNS
from app.analytics.clickhouse import schema
from app.analytics.clickhouse.child import ChildClickHouse
from app.analytics.queries import engagement, stats
from app.analytics.queries.filters import Filter
from app.analytics.queries.periods import resolve_period
from app.cli.demo import Traffic, generate, ordered

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


def _first_migrations(tmp_path: Path, count: int = 1) -> Path:
    folder = tmp_path / f"migrations-{count}"
    folder.mkdir(parents=True)
    for _, path in schema.migration_files()[:count]:
        shutil.copy(path, folder)
    return folder


# The events columns of the schema before 0003 (which added `screen_size`).
EARLY_EVENT_COLUMNS = [name for name in ALL_EVENT_COLUMNS if name != "screen_size"]


def _early_demo(gateway: ChildClickHouse, events: int, seed: int) -> None:
    """Demo events and page loads as an installation before 0003 stored them."""
    traffic = Traffic(SITE_ID, days=3, events=events, seed=seed)
    for number, batch in enumerate(traffic.batches()):
        data = ordered({k: batch.events[k] for k in EARLY_EVENT_COLUMNS}, EARLY_EVENT_COLUMNS)
        gateway.insert("events", EARLY_EVENT_COLUMNS, data, token=f"early:{seed}:{number}")
        loads = ordered(batch.performance, PERFORMANCE_COLUMNS)
        gateway.insert("performance", PERFORMANCE_COLUMNS, loads, token=f"early:{seed}:{number}:p")


def _raw(gateway: ChildClickHouse) -> dict[str, int]:
    return {k: int(v) for k, v in gateway.query("raw", RAW, {"site_id": SITE_ID})[0].items()}


def test_exact_visitors_migration_rebuilds_the_visitor_counts_of_existing_rollups(tmp_path):
    gateway = ChildClickHouse(f"chdb:///{tmp_path / 'chdb'}")
    try:
        schema.migrate(gateway, _first_migrations(tmp_path))
        _early_demo(gateway, 6_000, seed=11)
        sums = gateway.query("sums", ROLLUP_SUMS)
        scope = stats.Scope(SITE_ID, resolve_period("7d", "UTC", dt.datetime.now(dt.UTC)))

        migrated = schema.migrate(gateway, _first_migrations(tmp_path, 3))
        assert migrated == ["0002_exact_visitors.sql", "0003_engagement.sql"]
        assert gateway.query("sums", ROLLUP_SUMS) == sums  # the pass adds visitors only
        rollups = ["breakdowns_daily", "breakdowns_daily_mv", "totals_hourly", "totals_hourly_mv"]
        assert gateway.query("columns", VISITOR_COLUMNS) == [
            {"table": table, "name": "unique_visitors", "type": EXACT} for table in rollups
        ]
        raw = _raw(gateway)
        assert raw["visitors"] > 256  # past the exact range of the old precision
        schema.migrate(gateway)  # the overview of whole days reads 0004's daily totals
        numbers = stats.overview(gateway, scope)
        assert {name: numbers[name] for name in raw} == raw
        pages = gateway.query("raw_pages", RAW_PAGES, {"site_id": SITE_ID})
        assert stats.breakdown(gateway, scope, "page", limit=1000) == pages

        generate(gateway, SITE_ID, days=3, events=3_000, seed=12)  # through the altered views
        numbers = stats.overview(gateway, scope)
        assert {name: numbers[name] for name in raw} == _raw(gateway) != raw
    finally:
        gateway.close()


def test_engagement_migration_keeps_the_events_and_adds_the_beacons(tmp_path):
    gateway = ChildClickHouse(f"chdb:///{tmp_path / 'chdb'}")
    try:
        schema.migrate(gateway, _first_migrations(tmp_path, 2))
        _early_demo(gateway, 3_000, seed=13)
        scope = stats.Scope(SITE_ID, resolve_period("7d", "UTC", dt.datetime.now(dt.UTC)))
        today = replace(scope, period=scope.period.with_interval("hour"))  # the hourly totals
        before = stats.overview(gateway, today)

        assert schema.migrate(gateway, _first_migrations(tmp_path, 3)) == ["0003_engagement.sql"]
        assert stats.overview(gateway, today) == before
        sizes = gateway.query("sizes", "SELECT DISTINCT screen_size FROM events")
        assert sizes == [{"screen_size": ""}]  # events stored before it sent no width
        assert engagement.overall(gateway, scope) == engagement.NONE

        generate(gateway, SITE_ID, days=3, events=3_000, seed=14)  # today's demo: beacons too
        found = engagement.overall(gateway, scope)
        assert found.visitors > 0
        assert found.time_on_page is not None
        assert found.time_on_page > 0
        assert schema.migrate(gateway, _first_migrations(tmp_path / "again", 3)) == []
    finally:
        gateway.close()


# The dimensions 0004 gave rollups to (they read the raw events before it).
ROLLED_UP_BY_0004 = (
    "entry_page",
    "channel",
    "utm_content",
    "utm_term",
    "region",
    "city",
    "browser_version",
    "os_version",
    "screen_size",
    "prop:plan",  # the demo's custom properties
    "prop:url",
)


def _rollups_and_raw_agree(gateway: ChildClickHouse, scope: stats.Scope) -> None:
    # A filter every event passes sends the same questions to the raw events.
    raw = replace(scope, filters=(Filter("hostname", "is_not", ("nowhere.example",)),))
    assert not scope.reads_raw
    assert raw.reads_raw
    for name in ROLLED_UP_BY_0004:
        rolled_up = stats.breakdown(gateway, scope, name, limit=1000)
        assert rolled_up == stats.breakdown(gateway, raw, name, limit=1000), name
    assert {row["value"] for row in stats.breakdown(gateway, scope, "channel")} >= {
        "Direct",
        "Organic Search",
    }
    assert stats.summary(gateway, scope) == stats.summary(gateway, raw)
    names = stats.property_names(gateway, scope)
    assert names == stats.property_names(gateway, raw)
    assert {"plan", "url"} <= set(names)


def test_more_rollups_migration_fills_them_with_what_the_raw_events_count(tmp_path):
    gateway = ChildClickHouse(f"chdb:///{tmp_path / 'chdb'}")
    try:
        schema.migrate(gateway, _first_migrations(tmp_path, 3))
        generate(gateway, SITE_ID, days=5, events=8_000, seed=15)
        scope = stats.Scope(SITE_ID, resolve_period("7d", "UTC", dt.datetime.now(dt.UTC)))
        hourly = replace(scope, period=scope.period.with_interval("hour"))
        before = stats.summary(gateway, hourly)

        assert schema.migrate(gateway) == ["0004_more_rollups.sql"]
        assert stats.summary(gateway, hourly) == before
        daily = stats.summary(gateway, scope)
        assert daily.totals == before.totals
        assert sum(row["pageviews"] for row in daily.series) == before.totals["pageviews"]
        _rollups_and_raw_agree(gateway, scope)

        generate(gateway, SITE_ID, days=2, events=4_000, seed=16)  # through the new views
        _rollups_and_raw_agree(gateway, scope)
        assert stats.summary(gateway, scope).totals != daily.totals
    finally:
        gateway.close()


EVENT_COLUMNS = ["site_id", "timestamp", "event_id", "name", "visitor_id", "pathname"]
BEACON_COLUMNS = ["site_id", "timestamp", "event_id", "visitor_id", "pathname", "engaged_ms"]


def _pageviews(count: int) -> list[Sequence[object]]:
    now = int(dt.datetime.now(dt.UTC).timestamp())
    ids = list(range(count))
    return [[SITE_ID] * count, [now] * count, ids, ["pageview"] * count, ids, ["/"] * count]


def _beacons(count: int) -> list[Sequence[object]]:
    now = int(dt.datetime.now(dt.UTC).timestamp())
    ids = list(range(count))
    return [[SITE_ID] * count, [now] * count, ids, ids, ["/"] * count, [1_000] * count]


def test_a_batch_replayed_after_a_kill_that_followed_the_migrations_is_written_once(tmp_path):
    # `ursa serve` migrates and flushes in one process. Killed after a batch's insert but
    # before its acknowledgement, it replays the batch with the same token when it starts
    # again: the rollups must drop the copy as the events table does.
    dsn = f"chdb:///{tmp_path / 'chdb'}"
    first = ChildClickHouse(dsn)
    schema.migrate(first)
    first.insert("events", EVENT_COLUMNS, _pageviews(27), token="batch-1")
    first.insert("engagement", BEACON_COLUMNS, _beacons(27), token="batch-1:engagement")
    first._process.kill()  # SIGKILL: no orderly close of chDB
    first._process.join()
    again = ChildClickHouse(dsn)
    try:
        again.insert("events", EVENT_COLUMNS, _pageviews(27), token="batch-1")
        again.insert("engagement", BEACON_COLUMNS, _beacons(27), token="batch-1:engagement")
        rows = " , (SELECT count() FROM events) AS rows"
        beacons = " , (SELECT count() FROM engagement) AS beacons"
        days = " , (SELECT sum(pageviews) FROM totals_daily) AS day_pageviews"
        assert again.query("sums", ROLLUP_SUMS + rows + beacons + days) == [
            {
                "hourly_pageviews": 27,
                "starts": 0,
                "daily_pageviews": 27 * 18,  # every dimension but entry pages (no visit start)
                "rows": 27,
                "beacons": 27,
                "day_pageviews": 27,
            }
        ]
    finally:
        again.close()
