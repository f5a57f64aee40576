"""Filtered queries on real chDB against numbers worked out by hand from a few visits.

Three visits on 18 November 2026 (UTC site), each event with what the worker's sessionization
adds to its visit (`session_start`, `session_bounce`, `session_seconds`):

    A (Google, DE, Firefox, Desktop): / 10:00 → /pricing 10:01 → "Signup" on /pricing 10:02
                                      (props plan=pro); 1 visit, no bounce, 120 s
    B (direct, US, Chrome, Mobile):   /pricing 11:00; a bounce, 0 s
    C (Google, US, Chrome, Desktop):  /blog/a 12:00 → / 12:05; no bounce, 300 s

and one earlier visit D (direct) on 10 November, in the previous 7 days.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest

from app.analytics.queries import stats
from app.analytics.queries.filters import Filter
from app.analytics.queries.periods import compare, resolve_period
from app.services import Services
from tests.integration.site_rows import site_id_of

pytestmark = pytest.mark.db

NOW = dt.datetime(2026, 11, 20, 15, 30, tzinfo=dt.UTC)
DAY = dt.datetime(2026, 11, 18, tzinfo=dt.UTC)
A = {"visitor_id": 1, "session_id": 101, "referrer_source": "Google", "country_code": "DE",
     "browser": "Firefox", "device": "Desktop"}  # fmt: skip
B = {"visitor_id": 2, "session_id": 201, "referrer_source": "", "country_code": "US",
     "browser": "Chrome", "device": "Mobile"}  # fmt: skip
C = {"visitor_id": 3, "session_id": 301, "referrer_source": "Google", "country_code": "US",
     "browser": "Chrome", "device": "Desktop"}  # fmt: skip
D = {"visitor_id": 4, "session_id": 401, "referrer_source": "", "country_code": "FR",
     "browser": "Safari", "device": "Desktop"}  # fmt: skip


def _event(visit: dict[str, Any], at: dt.datetime, path: str, **extra: Any) -> dict[str, Any]:
    return {
        **visit,
        "timestamp": int(at.timestamp()),
        "name": "pageview",
        "pathname": path,
        "hostname": "example.com",
        "session_start": 0,
        "session_bounce": 0,
        "session_seconds": 0,
        "props": {},
        **extra,
    }


def _minute(hour: int, minute: int = 0, day: dt.datetime = DAY) -> dt.datetime:
    return day.replace(hour=hour, minute=minute)


EVENTS = [
    _event(A, _minute(10), "/", session_start=1, session_bounce=1),
    _event(A, _minute(10, 1), "/pricing", session_bounce=-1, session_seconds=60),
    _event(A, _minute(10, 2), "/pricing", name="Signup", props={"plan": "pro"}, session_seconds=60),
    _event(B, _minute(11), "/pricing", session_start=1, session_bounce=1),
    _event(C, _minute(12), "/blog/a", session_start=1, session_bounce=1),
    _event(C, _minute(12, 5), "/", session_bounce=-1, session_seconds=300),
    _event(D, _minute(9, day=dt.datetime(2026, 11, 10, tzinfo=dt.UTC)), "/", session_start=1,
           session_bounce=1),
]  # fmt: skip


@pytest.fixture
async def site_id(services: Services, site_domain: str) -> int:
    found = await site_id_of(services, site_domain)
    columns = list(EVENTS[0])
    data = [[event[column] for event in EVENTS] for column in columns]
    columns += ["event_id"]
    data += [[found << 32 | index for index in range(len(EVENTS))]]
    columns += ["site_id"]
    data += [[found] * len(EVENTS)]
    services.clickhouse.insert("events", columns, data, token=f"filtered:{uuid.uuid4()}")
    return found


def _numbers(services: Services, site_id: int, *filters: Filter) -> dict[str, int]:
    scope = stats.Scope(site_id, resolve_period("7d", "UTC", NOW), filters)
    return stats.overview(services.clickhouse, scope)


def _is(dimension: str, *values: str, operator: str = "is") -> Filter:
    return Filter(dimension, operator, values)


def _main(numbers: dict[str, int]) -> tuple[int, ...]:
    return tuple(
        numbers[name]
        for name in ("visitors", "visits", "pageviews", "events", "bounce_rate", "visit_duration")
    )


async def test_unfiltered_numbers_from_the_rollups(services, site_id):
    #                                 visitors visits views events bounce% seconds
    assert _main(_numbers(services, site_id)) == (3, 3, 5, 6, 33, 140)


async def test_a_filter_that_keeps_everything_reads_raw_events_with_the_same_numbers(
    services, site_id
):
    keep_all = _is("hostname", "nowhere.example", operator="is_not")
    assert _numbers(services, site_id, keep_all) == _numbers(services, site_id)


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        # The visits that viewed /pricing, as whole visits: A keeps its 120 s, B bounced.
        # Its page views and events are those on /pricing (the Signup happened there).
        ([_is("page", "/pricing")], (2, 2, 2, 3, 50, 60)),
        ([_is("page", "PRIC", operator="contains")], (2, 2, 2, 3, 50, 60)),
        ([_is("page", "/pricing", operator="is_not")], (2, 2, 3, 3, 0, 210)),
        ([_is("page", "/blog/a", "/")], (2, 2, 3, 3, 0, 210)),  # two values: either
        ([_is("page", r"^/blog/.*", operator="matches")], (1, 1, 1, 1, 0, 300)),
        ([_is("source", "Google")], (2, 2, 4, 5, 0, 210)),
        ([_is("source", "Google", operator="is_not")], (1, 1, 1, 1, 100, 0)),
        ([_is("country", "US"), _is("browser", "Chrome")], (2, 2, 3, 3, 50, 150)),
        ([_is("country", "US"), _is("device", "Mobile")], (1, 1, 1, 1, 100, 0)),
        ([_is("entry_page", "/blog/a")], (1, 1, 2, 2, 0, 300)),
        ([_is("exit_page", "/pricing")], (2, 2, 3, 4, 50, 60)),  # A's last page view
        ([_is("exit_page", "/")], (1, 1, 2, 2, 0, 300)),
        ([_is("event", "Signup")], (1, 1, 0, 1, 0, 120)),
        ([_is("prop:plan", "pro")], (1, 1, 0, 1, 0, 120)),
        ([_is("prop:plan", "free")], (0, 0, 0, 0, 0, 0)),
        ([_is("page", "/pricing"), _is("source", "Google")], (1, 1, 1, 2, 0, 120)),
    ],
)
async def test_filters_give_the_hand_computed_numbers(services, site_id, filters, expected):
    assert _main(_numbers(services, site_id, *filters)) == expected


@pytest.mark.parametrize(
    "value",
    [
        "'; DROP TABLE events; --",
        "{site_id:UInt32}",
        "/\u00fcn\u00ef/\U0001f642",
        "\\",
        "%_*",
        "x" * 2000,
    ],
)
async def test_hostile_values_are_bound_and_match_nothing(services, site_id, value):
    for operator in ("is", "contains"):
        assert _numbers(services, site_id, _is("page", value, operator=operator))["visitors"] == 0
    assert _numbers(services, site_id)["pageviews"] == 5  # the table is still there


async def test_breakdowns_obey_the_filters(services, site_id):
    scope = stats.Scope(site_id, resolve_period("7d", "UTC", NOW), (_is("source", "Google"),))
    pages = stats.breakdown(services.clickhouse, scope, "page")
    assert [(r["value"], r["visitors"], r["pageviews"]) for r in pages] == [
        ("/", 2, 2),
        ("/blog/a", 1, 1),
        ("/pricing", 1, 1),
    ]
    countries = stats.breakdown(services.clickhouse, scope, "country")
    assert [(r["value"], r["visitors"]) for r in countries] == [("DE", 1), ("US", 1)]


async def test_entry_exit_and_property_breakdowns_are_per_visit(services, site_id):
    scope = stats.Scope(site_id, resolve_period("7d", "UTC", NOW))
    entries = stats.breakdown(services.clickhouse, scope, "entry_page")
    assert sorted((r["value"], r["visitors"]) for r in entries) == [
        ("/", 1),
        ("/blog/a", 1),
        ("/pricing", 1),
    ]
    exits = stats.breakdown(services.clickhouse, scope, "exit_page")
    assert [(r["value"], r["visitors"]) for r in exits] == [("/pricing", 2), ("/", 1)]
    plans = stats.breakdown(services.clickhouse, scope, "prop:plan")
    assert [(r["value"], r["visitors"]) for r in plans] == [("pro", 1)]


async def test_the_comparison_period_is_summed_beside_the_period(services, site_id):
    period = resolve_period("7d", "UTC", NOW)
    compared = compare(period, "previous_period")
    assert compared is not None
    assert (compared.first_day, compared.last_day) == (dt.date(2026, 11, 7), dt.date(2026, 11, 13))
    summary = stats.summary(services.clickhouse, stats.Scope(site_id, period, (), compared))
    assert summary.totals["visitors"] == 3
    assert summary.compared is not None
    assert summary.compared_series is not None
    assert (summary.compared["visitors"], summary.compared["visits"]) == (1, 1)
    assert len(summary.compared_series) == len(summary.series) == 7
    assert [point["visitors"] for point in summary.compared_series] == [0, 0, 0, 1, 0, 0, 0]


async def test_realtime_buckets_the_last_30_minutes_by_minute(services, site_id):
    realtime = resolve_period("realtime", "UTC", _minute(12, 10))
    scope = stats.Scope(site_id, realtime, (_is("source", "Google"),))
    summary = stats.summary(services.clickhouse, scope)
    assert len(summary.series) == 30
    assert summary.totals["pageviews"] == 2  # C's; A's came at 10:00, before the last 30 min
    busy = [point["bucket"] for point in summary.series if point["pageviews"]]
    assert busy == [dt.datetime(2026, 11, 18, 12), dt.datetime(2026, 11, 18, 12, 5)]
