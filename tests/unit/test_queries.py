"""Query building: scope, allowlists, periods; SQL never contains caller values."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from app.analytics.queries import stats
from app.analytics.queries.filters import DIMENSIONS
from app.analytics.queries.periods import resolve_period
from app.errors import InvalidInput

NOW = dt.datetime(2026, 3, 29, 12, 30, tzinfo=dt.UTC)  # the day Europe moves to summer time


class RecordingGateway:
    """Captures the SQL and parameters a named query sends (no engine involved)."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows
        self.calls: list[tuple[str, str, dict[str, Any]]] = []

    def query(self, name: str, sql: str, params: Any = None) -> list[dict[str, Any]]:
        self.calls.append((name, sql, dict(params or {})))
        return self.rows


def test_scope_requires_a_site():
    with pytest.raises(ValueError, match="site"):
        stats.Scope(0, resolve_period("7d", "UTC", NOW))


def test_periods_resolve_in_the_site_timezone():
    today = resolve_period("today", "Europe/Berlin", NOW)
    assert today.start == dt.datetime(2026, 3, 28, 23, 0, tzinfo=dt.UTC)
    assert today.end == dt.datetime(2026, 3, 29, 22, 0, tzinfo=dt.UTC)  # 23-hour day
    assert today.bucket == "hour"
    assert len(today.buckets()) == 24  # naive local hours (the skipped hour is still listed)
    month = resolve_period("30d", "UTC", NOW)
    assert (month.start, month.end) == (
        dt.datetime(2026, 2, 28, tzinfo=dt.UTC),
        dt.datetime(2026, 3, 30, tzinfo=dt.UTC),
    )
    assert len(month.buckets()) == 30
    with pytest.raises(InvalidInput):
        resolve_period("1y", "UTC", NOW)


def test_breakdown_binds_values_and_allowlists_columns():
    gateway = RecordingGateway([{"value": "/", "visitors": 1, "pageviews": 2}])
    scope = stats.Scope(42, resolve_period("7d", "UTC", NOW))
    stats.breakdown(gateway, scope, "page", limit=5)  # type: ignore[arg-type]
    [(name, sql, params)] = gateway.calls
    assert name == "breakdown_page"
    assert "{site_id:UInt32}" in sql
    assert "{limit:UInt32}" in sql
    assert "42" not in sql
    assert params["site_id"] == 42
    assert params["limit"] == 5
    with pytest.raises(InvalidInput):
        stats.breakdown(gateway, scope, "pathname; DROP TABLE events")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        stats.breakdown(gateway, scope, "page", limit=0)  # type: ignore[arg-type]


def test_every_named_query_starts_from_site_and_range():
    gateway = RecordingGateway(
        [
            {
                "visitors": 0,
                "pageviews": 0,
                "events": 0,
                "visits": 0,
                "bounce_rate": 0,
                "visit_duration": 0,
                "samples": 0,
                "bucket": NOW.date(),
                **dict.fromkeys(stats.VITALS),
            }
        ]
    )
    scope = stats.Scope(7, resolve_period("30d", "Europe/Berlin", NOW))
    stats.summary(gateway, scope)  # type: ignore[arg-type]
    stats.web_vitals(gateway, scope)  # type: ignore[arg-type]
    for dimension in DIMENSIONS:
        if dimension != "goal":  # counted by `conversions` (tests/integration/test_goals.py)
            stats.breakdown(gateway, scope, dimension)  # type: ignore[arg-type]
    for _name, sql, params in gateway.calls:
        assert "site_id = {site_id:UInt32}" in sql
        assert params["site_id"] == 7
        assert "Europe/Berlin" not in sql
        assert stats.NO_JIT in sql  # no compile to machine code inside a card's request


def test_scope_binds_the_local_wall_clock_range():
    """Rollups file events under local hours and days; the 23-hour day is still one day."""
    params = stats.Scope(3, resolve_period("today", "Europe/Berlin", NOW)).params()
    assert params["local_start"] == int(dt.datetime(2026, 3, 29, tzinfo=dt.UTC).timestamp())
    assert params["local_end"] == int(dt.datetime(2026, 3, 30, tzinfo=dt.UTC).timestamp())
    assert params["first_day"] == params["last_day"] == "2026-03-29"
    week = stats.Scope(3, resolve_period("7d", "America/New_York", NOW)).params()
    assert (week["first_day"], week["last_day"]) == ("2026-03-23", "2026-03-29")


def test_summary_splits_the_rollup_total_from_zero_filled_buckets():
    metrics = dict.fromkeys(stats.OVERVIEW_METRICS, 0)
    gateway = RecordingGateway(
        [
            {**metrics, "bucket": dt.date(2026, 3, 29), "visitors": 3, "pageviews": 4},
            {**metrics, "bucket": None, "visitors": 3, "pageviews": 4, "visits": 2},
        ]
    )
    summary = stats.summary(gateway, stats.Scope(1, resolve_period("7d", "UTC", NOW)))  # type: ignore[arg-type]
    assert [point["visitors"] for point in summary.series] == [0, 0, 0, 0, 0, 0, 3]
    assert (summary.totals["visitors"], summary.totals["visits"]) == (3, 2)
    [(_name, sql, _params)] = gateway.calls
    assert "ROLLUP" in sql
    nothing = RecordingGateway([])
    today = stats.Scope(1, resolve_period("today", "UTC", NOW))
    empty = stats.summary(nothing, today)  # type: ignore[arg-type]
    assert empty.totals == metrics
    assert len(empty.series) == 24
    remote = RecordingGateway([{**metrics, "bucket": "2026-03-29T12:00:00+00:00", "visitors": 5}])
    hours = stats.summary(remote, today)  # type: ignore[arg-type]
    assert hours.series[12]["visitors"] == 5  # ISO strings, as through a running instance


@pytest.mark.parametrize(
    ("peak", "axis"),
    [(0, 0), (1, 1), (3, 3), (7, 8), (11, 15), (550, 600), (1000, 1000), (1001, 1500)],
)
def test_chart_axis_is_round_and_tight(peak, axis):
    from app.dashboard.cards import nice_ceiling

    assert nice_ceiling(peak) == axis


def test_a_details_search_is_bound_and_its_sort_allowlisted():
    gateway = RecordingGateway([{"value": "/", "visitors": 1, "pageviews": 2, "total": 7}])
    scope = stats.Scope(42, resolve_period("7d", "UTC", NOW))
    hostile = "'; DROP TABLE events; --"
    search = stats.Search(text=hostile, sort="pageviews", offset=100, size=100)
    found = stats.breakdown_page(gateway, scope, "channel", search)  # type: ignore[arg-type]
    assert (found.total, found.rows) == (7, [{"value": "/", "visitors": 1, "pageviews": 2}])
    [(name, sql, params)] = gateway.calls
    assert name == "breakdown_channel_details"  # from the rollup of its inputs
    assert "FROM breakdowns_daily" in sql
    assert hostile not in sql
    assert "ORDER BY pageviews DESC" in sql
    assert (params["search"], params["offset"], params["limit"]) == (hostile, 100, 100)
    assert "chatgpt" not in sql  # the channel lists are bound too
    for bad in ({"sort": "visitors; DROP"}, {"size": 0}, {"offset": -1}, {"text": "x" * 201}):
        with pytest.raises(InvalidInput):
            stats.Search(**bad)
