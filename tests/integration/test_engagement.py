"""Engagement on real chDB: beacons through the whole event path leave visits alone, and time
on page and scroll depth per page, filtered, on the Pages card and in the Stats API, against
numbers worked out by hand.

Three visits on 18 November 2026 (UTC site), one visitor each, and their beacons:

    V1  Google, DE   /a → /b   /a: 10 s at 40 %, then 5 s at 70 %   /b: 30 s at 100 %
    V2  direct, US   /a        /a: 5 s at 20 %
    V3  Google, US   /b        /b: 6 s at 50 %, then 4 s at 30 %
    (and a beacon of V1 on /a on 10 November: outside the range, never counted)

Per page (visitors' engaged time added up, divided by the visitors; the average of each
visitor's deepest scroll): /a (15 + 5) / 2 = 10 s, (70 + 20) / 2 = 45 %; /b (30 + 10) / 2 = 20 s,
(100 + 50) / 2 = 75 %. The average page (four pairs of page and visitor): 60 / 4 = 15 s,
(70 + 20 + 100 + 50) / 4 = 60 %.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import uuid
import zipfile
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from app.accounts import api_keys
from app.analytics.buffer import engaged
from app.analytics.queries import engagement, stats
from app.analytics.queries.engagement import Engagement
from app.analytics.queries.filters import Filter
from app.analytics.queries.periods import resolve_period
from app.dashboard.cards import CARDS, Options
from app.models import User
from app.services import Services
from tests.conftest import make_client
from tests.integration.helpers import post_event, stored
from tests.integration.org_helpers import own_organization, set_plan
from tests.integration.site_rows import site_id_of
from tests.integration.test_stats_api import query, rows

pytestmark = pytest.mark.db

NOW = dt.datetime(2026, 11, 20, 15, 30, tzinfo=dt.UTC)
DAY = dt.datetime(2026, 11, 18, 9, tzinfo=dt.UTC)
WEEK = ["2026-11-12", "2026-11-18"]
VISITS = {  # visitor: (source, country, pages)
    1: ("Google", "DE", ("/a", "/b")),
    2: ("", "US", ("/a",)),
    3: ("Google", "US", ("/b",)),
}
BEACONS = [  # visitor, page, engaged ms, scroll depth, day
    (1, "/a", 10_000, 40, DAY),
    (1, "/a", 5_000, 70, DAY),
    (1, "/b", 30_000, 100, DAY),
    (2, "/a", 5_000, 20, DAY),
    (3, "/b", 6_000, 50, DAY),
    (3, "/b", 4_000, 30, DAY),
    (1, "/a", 100_000, 100, DAY - dt.timedelta(days=8)),
]


def _insert(services: Services, table: str, rows: list[dict[str, Any]]) -> None:
    columns = list(rows[0])
    data = [[row[column] for row in rows] for column in columns]
    services.clickhouse.insert(table, columns, data, token=f"engagement:{uuid.uuid4()}")


def _fixture_rows(site: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    events: list[dict[str, Any]] = []
    for visitor, (source, country, pages) in VISITS.items():
        for step, page in enumerate(pages):
            events.append(
                {
                    "site_id": site,
                    "timestamp": int((DAY + dt.timedelta(minutes=10 * visitor + step)).timestamp()),
                    "event_id": site << 32 | len(events),
                    "name": "pageview",
                    "visitor_id": visitor,
                    "session_id": 100 + visitor,
                    "session_start": int(step == 0),
                    "session_bounce": int(len(pages) == 1 and step == 0),
                    "session_seconds": 60 * step,
                    "pathname": page,
                    "hostname": "example.com",
                    "referrer_source": source,
                    "country_code": country,
                }
            )
    beacons: list[dict[str, Any]] = []
    daily: dict[dt.datetime, engaged.Depths] = {}  # the worker's state: visitor ids are daily
    for index, (visitor, page, engaged_ms, depth, day) in enumerate(BEACONS):
        source, country, _ = VISITS[visitor]
        [first], [gain] = engaged.stamp([((site, visitor, page), depth)], daily.setdefault(day, {}))
        beacons.append(
            {
                "site_id": site,
                "timestamp": int((day + dt.timedelta(minutes=10 * visitor + 1)).timestamp()),
                "event_id": site << 32 | 1_000 + index,
                "session_id": 100 + visitor,
                "visitor_id": visitor,
                "pathname": page,
                "hostname": "example.com",
                "scroll_depth": depth,
                "engaged_ms": engaged_ms,
                "first_beacon": first,
                "depth_gain": gain,
                "referrer_source": source,
                "country_code": country,
            }
        )
    return events, beacons


@pytest.fixture
async def site_id(services: Services, site_domain: str) -> int:
    found = await site_id_of(services, site_domain)
    events, beacons = _fixture_rows(found)
    _insert(services, "events", events)
    _insert(services, "engagement", beacons)
    return found


def _scope(site: int, *filters: Filter) -> stats.Scope:
    return stats.Scope(site, resolve_period("7d", "UTC", NOW), filters)


def _pages(services: Services, scope: stats.Scope) -> dict[str, tuple[int | None, int | None]]:
    found = engagement.by_page(services.clickhouse, scope, ["/a", "/b", "/none"])
    return {page: (e.time_on_page, e.scroll_depth) for page, e in found.items()}


async def test_time_on_page_and_scroll_depth_per_page_and_overall(services, site_id):
    scope = _scope(site_id)
    assert _pages(services, scope) == {"/a": (10, 45), "/b": (20, 75)}
    assert engagement.overall(services.clickhouse, scope) == Engagement(15, 60, 4)
    assert engagement.by_page(services.clickhouse, scope, []) == {}
    visits = stats.overview(services.clickhouse, scope)
    assert (visits["visits"], visits["pageviews"], visits["bounce_rate"]) == (3, 4, 67)


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ((Filter("country", "is", ("DE",)),), {"/a": (15, 70), "/b": (30, 100)}),
        ((Filter("source", "is", ("Google",)),), {"/a": (15, 70), "/b": (20, 75)}),
        ((Filter("channel", "is", ("Direct",)),), {"/a": (5, 20)}),
        ((Filter("entry_page", "is", ("/b",)),), {"/b": (10, 50)}),
        ((Filter("exit_page", "is", ("/b",)),), {"/a": (15, 70), "/b": (20, 75)}),
        ((Filter("page", "is", ("/a",)),), {"/a": (10, 45)}),
        ((Filter("page", "contains", ("B",)), Filter("country", "is", ("US",))), {"/b": (10, 50)}),
        ((Filter("event", "is", ("Signup",)),), {}),  # no visit had one
        ((Filter("country", "is_not", ("DE", "US")),), {}),
    ],
)
async def test_filters_keep_the_beacons_of_the_pages_and_visits_they_keep(
    services, site_id, filters, expected
):
    assert _pages(services, _scope(site_id, *filters)) == expected


async def test_the_top_pages_tab_shows_them(services, site_id):
    card = CARDS["pages"]
    data = card.build(services.clickhouse, _scope(site_id), Options(tab=card.tab("pages")))
    assert data["engagement"] is True
    shown = [
        (r["value"], r["visitors"], r["time_on_page"], r["scroll_depth"]) for r in data["rows"]
    ]
    assert shown == [("/a", 2, 10, 45), ("/b", 2, 20, 75)]
    entry = card.build(services.clickhouse, _scope(site_id), Options(tab=card.tab("entry")))
    assert "engagement" not in entry
    assert "time_on_page" not in entry["rows"][0]


@pytest.fixture
async def api(services: Services, owner: User) -> AsyncIterator[httpx.AsyncClient]:
    await set_plan(services, await own_organization(services, owner), "premium")  # the API's plan
    key = (await api_keys.create_key(services.sessions, owner, "engagement"))[1]
    async with make_client(services) as http:
        http.headers["Authorization"] = f"Bearer {key}"
        yield http


async def test_the_stats_api_answers_them(api, site_domain, site_id):
    metrics = ["visitors", "time_on_page", "scroll_depth"]
    assert rows(await query(api, site_domain, metrics=metrics, date_range=WEEK)) == [(3, 15, 60)]
    by_page = await query(
        api, site_domain, metrics=metrics, date_range=WEEK, dimensions=["event:page"]
    )
    assert rows(by_page) == [("/a", 2, 10, 45), ("/b", 2, 20, 75)]
    german = await query(
        api,
        site_domain,
        metrics=["time_on_page"],
        date_range=WEEK,
        dimensions=["event:page"],
        filters=[["is", "visit:country", ["DE"]]],
    )
    assert rows(german) == [("/a", 15), ("/b", 30)]
    empty = await query(api, site_domain, metrics=metrics, date_range=["2026-11-01", "2026-11-02"])
    assert rows(empty) == [(0, None, None)]
    screens = await query(
        api, site_domain, metrics=["visitors"], date_range=WEEK, dimensions=["visit:screen"]
    )
    assert rows(screens) == [("", 3)]  # these events sent no width


async def test_a_beacon_after_a_single_page_view_leaves_a_bounced_visit(
    client, services, site_domain
):
    site = await site_id_of(services, site_domain)
    url = f"https://{site_domain}/pricing"
    pageview = {"n": "pageview", "u": url, "d": site_domain, "w": 1280}
    beacon = {"n": "engagement", "u": url, "d": site_domain, "sd": 64, "e": 12_400, "w": 1280}
    for body in (pageview, beacon):
        response = await post_event(client, body)
        assert response.status_code == 202
        assert "x-ursa-dropped" not in response.headers
    drained = services.flusher.drain()
    assert (drained.events, drained.engagement) == (1, 1)

    [event] = stored(services.clickhouse, site)
    [row] = stored(services.clickhouse, site, "engagement")
    assert (row["session_id"], row["visitor_id"]) == (event["session_id"], event["visitor_id"])
    assert (row["pathname"], row["scroll_depth"], row["engaged_ms"]) == ("/pricing", 64, 12_400)
    assert (row["country_code"], row["browser"], row["screen_size"]) == ("GB", "Chrome", "Laptop")
    assert event["screen_size"] == "Laptop"
    scope = stats.Scope(site, resolve_period("today", "UTC", dt.datetime.now(dt.UTC)))
    numbers = stats.overview(services.clickhouse, scope)
    assert (numbers["visits"], numbers["pageviews"], numbers["events"]) == (1, 1, 1)
    assert numbers["bounce_rate"] == 100
    filtered = stats.overview(services.clickhouse, _filtered(scope))
    assert (filtered["visits"], filtered["bounce_rate"]) == (1, 100)  # raw events, too
    assert engagement.by_page(services.clickhouse, scope, ["/pricing"]) == {
        "/pricing": Engagement(12, 64, 1)
    }


def _filtered(scope: stats.Scope) -> stats.Scope:
    return stats.Scope(scope.site_id, scope.period, (Filter("page", "is", ("/pricing",)),))


async def test_the_v1_api_answers_them_as_aggregates_and_by_page(api, site_domain, site_id):
    common = f"site_id={site_domain}&period=custom&date={','.join(WEEK)}"
    aggregate = await api.get(
        f"/api/v1/stats/aggregate?{common}&metrics=visitors,time_on_page,scroll_depth"
        "&compare=previous_period"
    )
    assert aggregate.status_code == 200, aggregate.text
    # the week before holds only V1's beacon of 10 November: 100 s at 100 %
    assert aggregate.json() == {
        "results": {
            "visitors": {"value": 3, "change": 100},
            "time_on_page": {"value": 15, "change": -85},
            "scroll_depth": {"value": 60, "change": -40},
        }
    }
    pages = await api.get(
        f"/api/v1/stats/breakdown?{common}&property=event:page&metrics=time_on_page,scroll_depth"
        "&filters=visit:country%3D%3DDE"
    )
    assert pages.json() == {
        "results": [
            {"page": "/a", "time_on_page": 15, "scroll_depth": 70},
            {"page": "/b", "time_on_page": 30, "scroll_depth": 100},
        ]
    }
    for path in (
        f"timeseries?{common}&metrics=time_on_page",
        f"breakdown?{common}&property=visit:country&metrics=scroll_depth",
    ):
        refused = await api.get(f"/api/v1/stats/{path}")
        assert refused.status_code == 400
        assert "time_on_page and scroll_depth" in refused.json()["error"]


async def test_the_export_has_them_in_pages_csv(owner_client, site_domain, site_id):
    week = f"period=custom&from={WEEK[0]}&to={WEEK[1]}"
    response = await owner_client.get(f"/{site_domain}/export.zip?{week}")
    assert response.status_code == 200, response.text
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        pages = list(csv.reader(io.StringIO(archive.read("pages.csv").decode())))
    assert pages == [
        ["page", "visitors", "pageviews", "time_on_page_seconds", "scroll_depth_percent"],
        ["/a", "2", "2", "10", "45"],
        ["/b", "2", "2", "20", "75"],
    ]


async def test_the_worker_stamps_each_pair_across_batches_and_the_daily_sums_agree(
    client, services, site_domain
):
    site = await site_id_of(services, site_domain)
    url = f"https://{site_domain}/pricing"
    batches = [
        [{"n": "pageview", "u": url, "d": site_domain}, _beacon(url, site_domain, 40, 1_000)],
        [  # the next drain: the pair's state comes back from Redis
            _beacon(url, site_domain, 70, 2_000),
            _beacon(url, site_domain, 55, 500),
            _beacon(f"https://{site_domain}/docs", site_domain, 30, 4_000),
        ],
    ]
    for bodies in batches:
        for body in bodies:
            assert (await post_event(client, body)).status_code == 202
        services.flusher.drain()
    rows = sorted(stored(services.clickhouse, site, "engagement"), key=lambda row: row["event_id"])
    assert [(r["pathname"], r["first_beacon"], r["depth_gain"]) for r in rows] == [
        ("/pricing", 1, 40), ("/pricing", 0, 30), ("/pricing", 0, 0), ("/docs", 1, 30),
    ]  # fmt: skip
    scope = stats.Scope(site, resolve_period("7d", "UTC", dt.datetime.now(dt.UTC)))
    from_rollup = engagement.by_page(services.clickhouse, scope, ["/pricing", "/docs"])
    assert from_rollup == {"/pricing": Engagement(4, 70, 1), "/docs": Engagement(4, 30, 1)}
    everything = Filter("hostname", "is_not", ("nowhere.example",))  # the raw beacons
    raw = stats.Scope(scope.site_id, scope.period, (everything,))
    assert engagement.by_page(services.clickhouse, raw, ["/pricing", "/docs"]) == from_rollup
    assert engagement.overall(services.clickhouse, scope) == Engagement(4, 50, 2)
    assert engagement.overall(services.clickhouse, raw) == Engagement(4, 50, 2)


def _beacon(url: str, domain: str, depth: int, engaged_ms: int) -> dict[str, Any]:
    return {"n": "engagement", "u": url, "d": domain, "sd": depth, "e": engaged_ms}
