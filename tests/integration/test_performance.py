"""The web-performance view's queries on real chDB, against hand-computed page loads."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest

from app.analytics.queries import performance, stats
from app.analytics.queries.filters import Filter
from app.analytics.queries.periods import resolve_period
from app.errors import InvalidInput
from app.services import Services
from tests.integration.site_rows import site_id_of

pytestmark = pytest.mark.db

NOW = dt.datetime(2026, 11, 20, 15, 30, tzinfo=dt.UTC)
DAY = dt.datetime(2026, 11, 18, 10, tzinfo=dt.UTC)
FAST = {"pathname": "/fast", "browser": "Chrome", "device": "Desktop", "country_code": "DE",
        "lcp": 1000, "cls": 0.05, "ttfb": 200, "inp": None}  # fmt: skip
MID = {"pathname": "/mid", "browser": "Chrome", "device": "Mobile", "country_code": "US",
       "lcp": 3000, "cls": 0.05, "ttfb": 900, "inp": None}  # fmt: skip
SLOW = {"pathname": "/slow", "browser": "Firefox", "device": "Mobile", "country_code": "US",
        "lcp": 5000, "cls": 0.3, "ttfb": 2000, "inp": None}  # fmt: skip
LOADS = [FAST, FAST, FAST, FAST, MID, MID, SLOW, {**SLOW, "inp": 300}]


@pytest.fixture
async def site_id(services: Services, site_domain: str) -> int:
    found = await site_id_of(services, site_domain)
    columns = ["pathname", "browser", "device", "country_code", "lcp", "cls", "ttfb", "inp"]
    data: list[list[Any]] = [[load[column] for load in LOADS] for column in columns]
    columns += ["site_id", "event_id", "timestamp"]
    data += [
        [found] * len(LOADS),
        [found << 32 | index for index in range(len(LOADS))],
        [int(DAY.timestamp()) + index for index in range(len(LOADS))],
    ]
    services.clickhouse.insert("performance", columns, data, token=f"loads:{uuid.uuid4()}")
    return found


def _scope(site_id: int, *filters: Filter) -> stats.Scope:
    return stats.Scope(site_id, resolve_period("7d", "UTC", NOW), filters)


def test_percentiles_and_web_dev_shares(services, site_id):
    found = performance.vitals(services.clickhouse, _scope(site_id))
    lcp = found["lcp"]
    assert lcp["samples"] == 8
    assert lcp["shares"] == {"good": 50.0, "needs-improvement": 25.0, "poor": 25.0}
    assert lcp["p95"] == 5000
    assert 1000 <= lcp["p50"] <= 3000
    assert found["inp"]["samples"] == 1  # only one load had an interaction
    assert found["inp"]["p75"] == 300
    assert found["inp"]["shares"] == {"good": 0.0, "needs-improvement": 100.0, "poor": 0.0}
    assert found["cls"]["shares"]["poor"] == 25.0
    assert found["page_load"] == {"samples": 0, "p50": None, "p75": None, "p95": None}


def test_pages_slowest_first_and_by_samples(services, site_id):
    rows = performance.vitals_by(services.clickhouse, _scope(site_id), "page", sort="lcp")
    assert [(r["value"], r["samples"], r["lcp"]) for r in rows] == [
        ("/slow", 2, 5000),
        ("/mid", 2, 3000),
        ("/fast", 4, 1000),
    ]
    assert [r["inp"] for r in rows] == [300, None, None]
    by_inp = performance.vitals_by(services.clickhouse, _scope(site_id), "page", sort="inp")
    assert by_inp[0]["value"] == "/slow"  # the pages without an INP sample come after it
    by_samples = performance.vitals_by(services.clickhouse, _scope(site_id), "page", "samples")
    assert by_samples[0]["value"] == "/fast"
    devices = performance.vitals_by(services.clickhouse, _scope(site_id), "device", "ttfb")
    assert [(r["value"], r["samples"]) for r in devices] == [("Mobile", 4), ("Desktop", 4)]


def test_filters_on_page_load_dimensions_apply_and_others_are_named(services, site_id):
    firefox = _scope(site_id, Filter("browser", "is", ("Firefox",)))
    assert performance.vitals(services.clickhouse, firefox)["lcp"]["samples"] == 2
    us = _scope(site_id, Filter("country", "is", ("US",)), Filter("page", "is_not", ("/mid",)))
    rows = performance.vitals_by(services.clickhouse, us, "page")
    assert [r["value"] for r in rows] == ["/slow"]
    source = Filter("source", "is", ("Google",))
    assert performance.page_loads(_scope(site_id, source)).ignored == (source,)
    assert performance.vitals(services.clickhouse, _scope(site_id, source))["lcp"]["samples"] == 8


def test_series_per_day_and_histogram(services, site_id):
    series = performance.vitals_series(services.clickhouse, _scope(site_id), "lcp")
    assert len(series) == 7
    filled = [point for point in series if point["samples"]]
    assert [(p["bucket"], p["samples"], p["p95"]) for p in filled] == [
        (dt.datetime(2026, 11, 18), 8, 5000)
    ]
    assert all(point["p75"] is None for point in series if not point["samples"])
    bins = performance.vitals_histogram(services.clickhouse, _scope(site_id), "lcp")
    assert len(bins) == 41
    assert bins[-1]["to"] is None
    assert {b["from"]: b["loads"] for b in bins if b["loads"]} == {1000: 4, 3000: 2, 5000: 2}


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda g, s: performance.vitals_series(g, s, "speed"), "unknown vital"),
        (lambda g, s: performance.vitals_histogram(g, s, "lcp; DROP TABLE events"), "unknown"),
        (lambda g, s: performance.vitals_by(g, s, "referrer"), "unknown grouping"),
        (lambda g, s: performance.vitals_by(g, s, "page", sort="value"), "unknown sort"),
        (lambda g, s: performance.vitals_by(g, s, "page", limit=0), "limit"),
    ],
)
def test_bad_arguments_are_refused(services, site_id, call, message):
    with pytest.raises(InvalidInput, match=message):
        call(services.clickhouse, _scope(site_id))


RANGE = "period=custom&from=2026-11-14&to=2026-11-20"


async def test_the_page_shows_percentiles_slowest_pages_and_the_distribution(
    owner_client, site_domain, site_id
):
    page = await owner_client.get(f"/{site_domain}/performance?{RANGE}")
    assert page.status_code == 200
    text = page.text
    assert "p50 1.00 s · p95 5.00 s" in text  # the LCP of all 8 loads
    assert text.index(">/slow</a>") < text.index(">/mid</a>") < text.index(">/fast</a>")
    assert (
        f'href="/{site_domain}/performance?{RANGE.replace("&", "&amp;")}&amp;f=page%3Ais%3A%2Fslow"'
        in text
    )
    assert "1.00 s – 1.25 s" in text  # the histogram bin of the four fast loads
    assert 'aria-sort="descending"' in text

    by_device = await owner_client.get(f"/{site_domain}/performance?{RANGE}&by=device&sort=samples")
    assert by_device.status_code == 200
    assert "Slowest devices" in by_device.text
    assert ">Mobile<" in by_device.text


async def test_a_page_detail_is_the_page_filtered_and_other_filters_are_named(
    owner_client, site_domain, site_id
):
    detail = await owner_client.get(f"/{site_domain}/performance?{RANGE}&f=page:is:/fast")
    assert '<span class="vital-value" data-vital="lcp">1.00 s</span>' in detail.text
    assert ">/slow</a>" not in detail.text
    aside = await owner_client.get(f"/{site_domain}/performance?{RANGE}&f=source:is:Google")
    assert "Left aside here: Source is Google." in aside.text
    assert "p50 1.00 s · p95 5.00 s" in aside.text  # all 8 loads still


@pytest.mark.parametrize(
    "query", ["vital=speed", "by=referrer", "sort=value", "vital=lcp&vital=cls", "period=1y"]
)
async def test_bad_page_parameters_are_a_400(owner_client, site_domain, query):
    response = await owner_client.get(f"/{site_domain}/performance?{query}")
    assert response.status_code == 400


async def test_an_empty_range_says_so(owner_client, site_domain):
    page = await owner_client.get(f"/{site_domain}/performance?period=7d")
    assert page.status_code == 200
    assert "No performance data in this period." in page.text
    assert "No page loads in this period." in page.text
