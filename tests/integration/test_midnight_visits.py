"""A visit that crosses midnight in the site's time zone, on real chDB, by hand.

Berlin is UTC+1 in November: the visit's first page view at 23:50 local on 17 November is
22:50 UTC, its second at 00:10 local on the 18th is 23:10 UTC, so in UTC both fall on the 17th.
The rollups and the raw events file events under the site's local hour and day (`utc_offset`).

The metrics add up what each event contributes to its visit (`session_start`, `session_bounce`,
`session_seconds`): a visit counts on the day it begins, and a day shows at most as many
visitors as visits. A range that holds only the first day sees the visit as it stood then (one
page, a bounce, no duration); a range that holds only the second sees its second page view but
no visit; a range over both sees one visit of two pages and twenty minutes.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest

from app.analytics.queries import stats
from app.analytics.queries.filters import Filter
from app.analytics.queries.periods import resolve_period
from app.services import Services
from tests.integration.site_rows import site_id_of

pytestmark = pytest.mark.db

ZONE = "Europe/Berlin"
NOW = dt.datetime(2026, 11, 25, 12, tzinfo=dt.UTC)
FIRST, SECOND = dt.date(2026, 11, 17), dt.date(2026, 11, 18)
KEEP_ALL = Filter("hostname", "is_not", ("nowhere.example",))  # the same numbers, from raw events
ROWS = [
    # UTC time, session_start, session_bounce, session_seconds
    (dt.datetime(2026, 11, 17, 22, 50, tzinfo=dt.UTC), 1, 1, 0),
    (dt.datetime(2026, 11, 17, 23, 10, tzinfo=dt.UTC), 0, -1, 1200),
]
METRICS = ("visitors", "visits", "pageviews", "bounce_rate", "visit_duration")


@pytest.fixture
async def site_id(services: Services, site_domain: str) -> int:
    found = await site_id_of(services, site_domain)
    events: dict[str, list[Any]] = {
        "site_id": [found] * 2,
        "timestamp": [int(at.timestamp()) for at, *_ in ROWS],
        "event_id": [found << 32 | index for index in range(2)],
        "name": ["pageview"] * 2,
        "visitor_id": [7, 7],
        "session_id": [70, 70],
        "session_start": [row[1] for row in ROWS],
        "session_bounce": [row[2] for row in ROWS],
        "session_seconds": [row[3] for row in ROWS],
        "pathname": ["/late", "/later"],
        "hostname": ["example.com"] * 2,
        "utc_offset": [60, 60],
    }
    services.clickhouse.insert(
        "events", list(events), list(events.values()), token=f"midnight:{uuid.uuid4()}"
    )
    return found


def _numbers(services: Services, site: int, first: dt.date, last: dt.date, *filters: Filter):
    interval = "day" if first != last else None
    period = resolve_period("custom", ZONE, NOW, start_date=first, end_date=last, interval=interval)
    summary = stats.summary(services.clickhouse, stats.Scope(site, period, filters))
    totals = tuple(summary.totals[name] for name in METRICS)
    days = [
        (point["bucket"].date(), point["visits"], point["pageviews"]) for point in summary.series
    ]
    return totals, days


@pytest.mark.parametrize("filters", [(), (KEEP_ALL,)], ids=["rollups", "raw events"])
async def test_a_visit_across_local_midnight(services, site_id, filters):
    both = _numbers(services, site_id, FIRST, SECOND, *filters)
    #             visitors visits views bounce% seconds
    assert both == ((1, 1, 2, 0, 1200), [(FIRST, 1, 1), (SECOND, 0, 1)])
    assert _numbers(services, site_id, FIRST, FIRST, *filters)[0] == (1, 1, 1, 100, 0)
    assert _numbers(services, site_id, SECOND, SECOND, *filters)[0] == (0, 0, 1, 0, 0)


async def test_entry_and_exit_pages_of_the_visit_are_its_first_and_last(services, site_id):
    period = resolve_period("custom", ZONE, NOW, start_date=FIRST, end_date=SECOND)
    scope = stats.Scope(site_id, period)
    entry = stats.breakdown(services.clickhouse, scope, "entry_page")
    exit_ = stats.breakdown(services.clickhouse, scope, "exit_page")
    assert [(row["value"], row["visitors"]) for row in entry] == [("/late", 1)]
    assert [(row["value"], row["visitors"]) for row in exit_] == [("/later", 1)]
