"""Demo data: realistic, self-consistent sessions, and the same data for the same seed."""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

import pytest

from app.analytics.clickhouse.gateway import ClickHouse
from app.analytics.ingest.limits import MAX_ENGAGED_MS
from app.analytics.queries import stats
from app.analytics.queries.periods import resolve_period
from app.cli.demo import generate
from app.dashboard.cards import CARDS, Options

NOW = dt.datetime(2025, 11, 20, 15, 30, tzinfo=dt.UTC)
EVENTS = 20_000
DAYS = 30
SEED = 20251120


def _site_id() -> int:
    return secrets.randbelow(10**6) + 10**6


def _one(clickhouse: ClickHouse, sql: str, site_id: int) -> dict[str, Any]:
    return clickhouse.query("test_demo", sql, {"site": site_id})[0]


@pytest.fixture(scope="module")
def demo_site(clickhouse: ClickHouse) -> tuple[int, int, list[int]]:
    site_id = _site_id()
    progress: list[int] = []
    written = generate(
        clickhouse,
        site_id,
        days=DAYS,
        events=EVENTS,
        seed=SEED,
        now=NOW,
        on_progress=progress.append,
    )
    return site_id, written, progress


def _scope(site_id: int) -> stats.Scope:
    return stats.Scope(site_id, resolve_period("30d", "UTC", NOW))


def test_counts_and_time_range(clickhouse, demo_site):
    site_id, written, progress = demo_site
    row = _one(
        clickhouse,
        "SELECT count() AS n, min(timestamp) AS first, max(timestamp) AS last "
        "FROM events WHERE site_id = {site:UInt32}",
        site_id,
    )
    assert written == row["n"] == sum(progress) == EVENTS
    now = NOW.replace(tzinfo=None)  # ClickHouse answers naive UTC times
    assert now - dt.timedelta(hours=1) < row["last"] <= now
    assert now - dt.timedelta(days=DAYS) < row["first"] < now - dt.timedelta(days=DAYS - 1)


def test_sessions_are_consistent(clickhouse, demo_site):
    site_id, _, _ = demo_site
    per_session = """
        SELECT session_id, uniqExact(visitor_id) AS visitors, min(event_id) AS first_id,
               min(timestamp) AS started, max(timestamp) AS ended,
               countIf(name = 'pageview') AS pageviews,
               arrayMax(arrayDifference(arraySort(groupArray(toUInt32(timestamp))))) AS max_gap,
               argMin(name, event_id) AS first_name,
               countIf(referrer != '') AS referrers, uniqExact(referrer_source) AS sources,
               uniqExact(utm_campaign) AS campaigns
        FROM events WHERE site_id = {site:UInt32} GROUP BY session_id
    """
    row = _one(
        clickhouse,
        f"""
        SELECT count() AS sessions,
               countIf(visitors != 1) AS shared,
               countIf(session_id != first_id) AS not_first_id,
               countIf(ended - started > pageviews * 300) AS too_long,
               countIf(max_gap > 1800) AS gaps,
               countIf(first_name != 'pageview') AS custom_first,
               countIf(referrers > 1) AS many_referrers,
               countIf(sources != 1 OR campaigns != 1) AS mixed_sources
        FROM ({per_session})
    """,
        site_id,
    )
    assert row["sessions"] > EVENTS / 4
    assert {key: value for key, value in row.items() if key != "sessions"} == {
        "shared": 0,
        "not_first_id": 0,
        "too_long": 0,
        "gaps": 0,
        "custom_first": 0,
        "many_referrers": 0,
        "mixed_sources": 0,
    }


def test_visits_of_one_visitor_are_separate_sessions(clickhouse, demo_site):
    site_id, _, _ = demo_site
    row = _one(
        clickhouse,
        """
        SELECT count() AS visitors, countIf(length(starts) > 1) AS returning,
               countIf(arrayExists((s, e) -> s - e <= 1800,
                                   arrayPopFront(starts), arrayPopBack(ends))) AS overlapping
        FROM (
            SELECT visitor_id, arrayMap(x -> x.1, sorted) AS starts,
                   arrayMap(x -> x.2, sorted) AS ends
            FROM (
                SELECT visitor_id,
                       arraySort(groupArray((toUInt32(started), toUInt32(ended)))) AS sorted
                FROM (SELECT visitor_id, session_id, min(timestamp) AS started,
                             max(timestamp) AS ended
                      FROM events WHERE site_id = {site:UInt32}
                      GROUP BY visitor_id, session_id)
                GROUP BY visitor_id
            )
        )
    """,
        site_id,
    )
    assert row["overlapping"] == 0
    assert row["returning"] > 0.02 * row["visitors"]


def test_dashboard_numbers_look_like_a_real_site(clickhouse, demo_site):
    site_id, _, _ = demo_site
    scope = _scope(site_id)
    overview = stats.overview(clickhouse, scope)
    assert 30 <= overview["bounce_rate"] <= 60
    assert overview["visits"] <= overview["pageviews"] < overview["events"]
    pages = stats.breakdown(clickhouse, scope, "page", limit=100)
    assert len(pages) >= 10
    assert pages[0]["value"] == "/"
    sources = {row["value"] for row in stats.breakdown(clickhouse, scope, "source", limit=100)}
    assert {"", "Google", "Hacker News", "Newsletter"} <= sources
    devices = {row["value"] for row in stats.breakdown(clickhouse, scope, "device")}
    assert {"Desktop", "Mobile"} <= devices
    vitals = stats.web_vitals(clickhouse, scope)
    assert (vitals["samples"] or 0) > 0.4 * overview["pageviews"]
    assert vitals["lcp"] is not None
    assert 1500 <= vitals["lcp"] <= 3500
    assert vitals["inp"] is not None
    assert 80 <= vitals["inp"] <= 300


def test_custom_events_carry_props_and_revenue(clickhouse, demo_site):
    site_id, _, _ = demo_site
    rows = clickhouse.query(
        "test_demo",
        """
        SELECT name, count() AS n, groupUniqArray(mapKeys(props)) AS keys,
               sum(revenue) AS revenue, groupUniqArray(revenue_currency) AS currencies
        FROM events WHERE site_id = {site:UInt32} AND name != 'pageview'
        GROUP BY name ORDER BY name
    """,
        {"site": site_id},
    )
    by_name = {row["name"]: row for row in rows}
    assert set(by_name) == {"Download", "Outbound Link: Click", "Signup"}
    assert 0.02 * EVENTS < sum(row["n"] for row in rows) < 0.1 * EVENTS
    assert by_name["Signup"]["keys"] == [["plan"]]
    assert by_name["Signup"]["revenue"] > 0
    assert {"USD", "EUR"} <= set(by_name["Signup"]["currencies"])
    assert by_name["Download"]["revenue"] == 0


def test_browser_os_and_device_combinations_are_consistent(clickhouse, demo_site):
    site_id, _, _ = demo_site
    sql = "SELECT DISTINCT browser, os, device FROM events WHERE site_id = {site:UInt32}"
    rows = clickhouse.query("test_demo", sql, {"site": site_id})
    combos = {(row["browser"], row["os"], row["device"]) for row in rows}
    assert ("Chrome", "Windows", "Desktop") in combos
    assert ("Mobile Safari", "iOS", "Mobile") in combos
    assert all(device == "Desktop" for _, os, device in combos if os in ("Windows", "Mac OS X"))
    assert all(device != "Desktop" for _, os, device in combos if os in ("iOS", "Android"))


_CHECKSUM = """
    SELECT count() AS n, sum(cityHash64(timestamp, event_id, name, visitor_id, session_id,
               pathname, referrer, referrer_source, utm_source, utm_campaign, country_code,
               browser, os, device, toString(props), toString(revenue))) AS events,
           (SELECT sum(cityHash64(timestamp, event_id, pathname, lcp, inp, cls, ttfb))
            FROM performance WHERE site_id = {site:UInt32}) AS performance
    FROM events WHERE site_id = {site:UInt32}
"""


def test_same_seed_same_data(clickhouse, demo_site):
    site_id, _, _ = demo_site
    again = _site_id()
    generate(clickhouse, again, days=DAYS, events=EVENTS, seed=SEED, now=NOW)
    assert _one(clickhouse, _CHECKSUM, again) == _one(clickhouse, _CHECKSUM, site_id)
    other = _site_id()
    generate(clickhouse, other, days=DAYS, events=EVENTS, seed=SEED + 1, now=NOW)
    assert _one(clickhouse, _CHECKSUM, other) != _one(clickhouse, _CHECKSUM, site_id)


def test_engagement_beacons_and_screen_sizes(clickhouse, demo_site):
    """About nine page views in ten send a beacon, of a visit the events have, on the page
    viewed; screen sizes agree with devices; the Pages card shows time on page and depth."""
    site_id, _, _ = demo_site
    row = _one(
        clickhouse,
        """
        SELECT count() AS beacons,
               countIf((session_id, visitor_id, pathname) NOT IN (
                   SELECT session_id, visitor_id, pathname FROM events
                   WHERE site_id = {site:UInt32} AND name = 'pageview')) AS strays,
               (SELECT countIf(name = 'pageview') FROM events WHERE site_id = {site:UInt32})
                   AS pageviews,
               max(scroll_depth) AS deepest, max(engaged_ms) AS longest, min(engaged_ms) AS least
        FROM engagement WHERE site_id = {site:UInt32}
        """,
        site_id,
    )
    assert 0.85 < row["beacons"] / row["pageviews"] < 0.95
    assert row["strays"] == 0
    assert row["deepest"] == 100
    assert row["least"] >= 0
    assert row["longest"] <= MAX_ENGAGED_MS
    sizes = clickhouse.query(
        "test_demo",
        "SELECT device, groupUniqArray(screen_size) AS sizes FROM events "
        "WHERE site_id = {site:UInt32} GROUP BY device ORDER BY device",
        {"site": site_id},
    )
    assert {r["device"]: sorted(r["sizes"]) for r in sizes} == {
        "Desktop": ["Desktop", "Laptop"],
        "Mobile": ["Mobile"],
        "Tablet": ["Tablet"],
    }
    pages = CARDS["pages"].build(clickhouse, _scope(site_id), Options(tab=CARDS["pages"].tab("")))
    assert pages["engagement"]
    assert all(r["time_on_page"] > 0 and 0 < r["scroll_depth"] < 100 for r in pages["rows"])
