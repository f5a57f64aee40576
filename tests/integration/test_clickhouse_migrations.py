"""ClickHouse migrations applied to an installation that already holds data (real chDB)."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from app.analytics.buffer.enrich import ENGAGEMENT_COLUMNS, PERFORMANCE_COLUMNS
from app.analytics.buffer.enrich import EVENT_COLUMNS as ALL_EVENT_COLUMNS
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
# A filter every event and beacon passes: the same questions, asked of the raw rows.
EVERYTHING = Filter("hostname", "is_not", ("nowhere.example",))


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


# The engagement columns of the schema before 0005 (which added the worker's stamps).
EARLY_BEACON_COLUMNS = [c for c in ENGAGEMENT_COLUMNS if c not in ("first_beacon", "depth_gain")]


def _demo_before_0005(gateway: ChildClickHouse, *, days: int, events: int, seed: int) -> None:
    """Demo traffic (with its beacons) as an installation between 0003 and 0005 stored it."""
    traffic = Traffic(SITE_ID, days=days, events=events, seed=seed)
    for number, batch in enumerate(traffic.batches()):
        token = f"before-0005:{seed}:{number}"
        events_data = ordered(batch.events, ALL_EVENT_COLUMNS)
        gateway.insert("events", ALL_EVENT_COLUMNS, events_data, token=token)
        early = {name: batch.engagement[name] for name in EARLY_BEACON_COLUMNS}
        beacons = ordered(early, EARLY_BEACON_COLUMNS)
        gateway.insert("engagement", EARLY_BEACON_COLUMNS, beacons, token=f"{token}:engagement")


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
        raw = replace(scope, filters=(EVERYTHING,))  # the beacons (their rollup comes in 0005)
        assert engagement.overall(gateway, raw) == engagement.NONE

        _demo_before_0005(gateway, days=3, events=3_000, seed=14)  # beacons too
        found = engagement.overall(gateway, raw)
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
    raw = replace(scope, filters=(EVERYTHING,))
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
        _demo_before_0005(gateway, days=5, events=8_000, seed=15)
        scope = stats.Scope(SITE_ID, resolve_period("7d", "UTC", dt.datetime.now(dt.UTC)))
        hourly = replace(scope, period=scope.period.with_interval("hour"))
        before = stats.summary(gateway, hourly)

        assert schema.migrate(gateway, _first_migrations(tmp_path, 4)) == ["0004_more_rollups.sql"]
        assert stats.summary(gateway, hourly) == before
        daily = stats.summary(gateway, scope)
        assert daily.totals == before.totals
        assert sum(row["pageviews"] for row in daily.series) == before.totals["pageviews"]
        _rollups_and_raw_agree(gateway, scope)

        _demo_before_0005(gateway, days=2, events=4_000, seed=16)  # through the new views
        _rollups_and_raw_agree(gateway, scope)
        assert stats.summary(gateway, scope).totals != daily.totals
    finally:
        gateway.close()


def _engagement_of_both(
    gateway: ChildClickHouse, scope: stats.Scope
) -> tuple[dict[str, engagement.Engagement], engagement.Engagement]:
    """Time on page and scroll depth per page and overall, after checking that the daily sums
    (the unfiltered scope) and the raw beacons (a filter every beacon passes) agree."""
    raw = replace(scope, filters=(EVERYTHING,))
    pages = [row["value"] for row in stats.breakdown(gateway, scope, "page", limit=1000)]
    by_page = engagement.by_page(gateway, scope, pages)
    assert by_page == engagement.by_page(gateway, raw, pages)
    overall = engagement.overall(gateway, scope)
    assert overall == engagement.overall(gateway, raw)
    return by_page, overall


def test_the_engagement_rollup_migration_fills_it_with_what_the_raw_beacons_give(tmp_path):
    gateway = ChildClickHouse(f"chdb:///{tmp_path / 'chdb'}")
    try:
        schema.migrate(gateway, _first_migrations(tmp_path, 4))
        _demo_before_0005(gateway, days=5, events=8_000, seed=17)
        scope = stats.Scope(SITE_ID, resolve_period("7d", "UTC", dt.datetime.now(dt.UTC)))

        assert schema.migrate(gateway, _first_migrations(tmp_path, 5)) == [
            "0005_engagement_daily.sql"
        ]
        by_page, overall = _engagement_of_both(gateway, scope)
        assert len(by_page) > 3
        assert overall.visitors > 100

        generate(gateway, SITE_ID, days=3, events=4_000, seed=18)  # stamped, through the view
        more_pages, more = _engagement_of_both(gateway, scope)
        assert more.visitors > overall.visitors
        assert more_pages != by_page
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
        engaged = " , (SELECT sum(engaged_ms) FROM engagement_daily) AS engaged_ms"
        assert again.query("sums", ROLLUP_SUMS + rows + beacons + days + engaged) == [
            {
                "hourly_pageviews": 27,
                "starts": 0,
                "daily_pageviews": 27 * 18,  # every dimension but entry pages (no visit start)
                "rows": 27,
                "beacons": 27,
                "day_pageviews": 27,
                "engaged_ms": 27_000,
            }
        ]
    finally:
        again.close()


PATH_TYPES = """
SELECT table, type FROM system.columns
WHERE database = currentDatabase() AND name = 'pathname' ORDER BY table
"""


def test_page_paths_become_low_cardinality_with_the_same_values(tmp_path):
    gateway = ChildClickHouse(f"chdb:///{tmp_path / 'chdb'}")
    try:
        schema.migrate(gateway, _first_migrations(tmp_path, 5))
        generate(gateway, SITE_ID, days=3, events=4_000, seed=19)
        params = {"site_id": SITE_ID}
        pages = gateway.query("pages", RAW_PAGES, params)
        vitals = (
            "SELECT pathname, count() AS n FROM performance GROUP BY pathname ORDER BY pathname"
        )
        loads = gateway.query("loads", vitals)

        assert schema.migrate(gateway) == ["0006_pathname_low_cardinality.sql"]
        types = {row["table"]: row["type"] for row in gateway.query("types", PATH_TYPES)}
        assert types == {
            "engagement": "String",
            "engagement_daily": "String",
            "engagement_daily_mv": "String",
            "events": "LowCardinality(String)",
            "performance": "LowCardinality(String)",
        }
        assert gateway.query("pages", RAW_PAGES, params) == pages
        assert gateway.query("loads", vitals) == loads
        generate(gateway, SITE_ID, days=1, events=2_000, seed=20)  # through the views again
        scope = stats.Scope(SITE_ID, resolve_period("7d", "UTC", dt.datetime.now(dt.UTC)))
        _rollups_and_raw_agree(gateway, scope)
    finally:
        gateway.close()
