"""The Stats API on real chDB, against the numbers of `test_filtered_queries` worked out by hand.

The site holds the visits A, B, C of 18 November 2026 and D of 10 November (see that module);
each request asks for 12–18 November (or a day of it) so that today's date does not matter.
"""

from __future__ import annotations

import datetime as dt
import secrets
import uuid
from decimal import Decimal
from typing import Any

import httpx
import pytest

from app.accounts import api_keys
from app.analytics.queries.channels import classify
from app.cache.ratelimit import Rule, Scope
from app.dashboard.cards import CARDS, Options, site_scope
from app.dashboard.view import View
from app.models import Role, User
from app.services import Services
from app.sites.registry import get_site, update_site
from tests.conftest import join, make_client, new_user
from tests.integration.org_helpers import own_organization, set_plan
from tests.integration.site_rows import site_id_of
from tests.integration.test_filtered_queries import EVENTS

pytestmark = pytest.mark.db
WEEK = ["2026-11-12", "2026-11-18"]
ALL = ["visitors", "visits", "pageviews", "events", "bounce_rate", "visit_duration"]


def insert_events(services: Services, site_id: int, events: list[dict[str, Any]]) -> None:
    columns = list(events[0])
    data = [[event[column] for event in events] for column in columns]
    columns += ["event_id", "site_id"]
    data += [[site_id << 32 | secrets.randbits(30) for _ in events], [site_id] * len(events)]
    services.clickhouse.insert("events", columns, data, token=f"api:{uuid.uuid4()}")


@pytest.fixture
async def site_id(services: Services, site_domain: str, owner: User) -> int:
    found = await site_id_of(services, site_domain)
    insert_events(services, found, EVENTS)
    return found


@pytest.fixture
async def key(services: Services, owner: User) -> str:
    """A key of the owner, whose organization is on Premium (the Stats API comes with it)."""
    await set_plan(services, await own_organization(services, owner), "premium")
    return (await api_keys.create_key(services.sessions, owner, "tests"))[1]


@pytest.fixture
async def api(services: Services, key: str) -> Any:
    async with make_client(services) as http:
        http.headers["Authorization"] = f"Bearer {key}"
        yield http


async def query(http: httpx.AsyncClient, site: str, **body: Any) -> httpx.Response:
    return await http.post("/api/v2/query", json={"site_id": site, **body})


def rows(response: httpx.Response) -> list[tuple[Any, ...]]:
    assert response.status_code == 200, response.text
    return [(*row["dimensions"], *row["metrics"]) for row in response.json()["results"]]


async def test_aggregate_numbers(api, site_domain, site_id):
    answer = await query(api, site_domain, metrics=[*ALL, "views_per_visit"], date_range=WEEK)
    assert rows(answer) == [(3, 3, 5, 6, 33, 140, 1.67)]
    assert answer.headers["cache-control"] == "no-store"
    assert "set-cookie" not in answer.headers
    echo = answer.json()["query"]
    assert echo["date_range"] == ["2026-11-12T00:00:00+00:00", "2026-11-18T23:59:59+00:00"]
    assert echo["metrics"] == [*ALL, "views_per_visit"]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ([["is", "visit:source", ["Google"]]], (2, 2, 4, 5, 0, 210)),
        ([["is", "event:page", ["/pricing"]]], (2, 2, 2, 3, 50, 60)),
        ([["not", ["is", "visit:country", ["US"]]]], (1, 1, 2, 3, 0, 120)),
        # an event dimension anywhere in the tree: the events that match it, whole visits
        (
            [["or", [["is", "visit:country", ["DE"]], ["is", "event:page", ["/blog/a"]]]]],
            (2, 2, 3, 4, 0, 210),
        ),
        (
            [["and", [["is", "visit:browser", ["Chrome"]], ["contains", "event:page", ["blog"]]]]],
            (1, 1, 1, 1, 0, 300),
        ),
        ([["is", "event:props:plan", ["pro"]]], (1, 1, 0, 1, 0, 120)),
        ([["is", "visit:entry_page", ["/blog/a"]]], (1, 1, 2, 2, 0, 300)),
        ([["is", "visit:source", ["Direct / None"]]], (1, 1, 1, 1, 100, 0)),
        ([["matches", "event:page", ["^/pri"]]], (2, 2, 2, 3, 50, 60)),
        ([["is", "event:page", ["'; DROP TABLE events; --", "ü" * 500]]], (0, 0, 0, 0, 0, 0)),
    ],
)
async def test_filtered_aggregates(api, site_domain, site_id, filters, expected):
    answer = await query(api, site_domain, metrics=ALL, date_range=WEEK, filters=filters)
    assert rows(answer) == [expected]


async def test_breakdown_by_page_counts_whole_visits(api, site_domain, site_id):
    answer = await query(
        api,
        site_domain,
        metrics=["visitors", "pageviews", "visits", "bounce_rate", "visit_duration", "percentage"],
        date_range=WEEK,
        dimensions=["event:page"],
        include={"total_rows": True},
    )
    assert rows(answer) == [
        ("/", 2, 2, 2, 0, 210, 66.7),
        ("/pricing", 2, 2, 2, 50, 60, 66.7),
        ("/blog/a", 1, 1, 1, 0, 300, 33.3),
    ]
    assert answer.json()["meta"] == {"total_rows": 3}


async def test_breakdowns_of_visits_pages_and_properties(api, site_domain, site_id):
    sources = await query(
        api, site_domain, metrics=["visitors", "bounce_rate"], date_range=WEEK,
        dimensions=["visit:source"], order_by=[["visitors", "asc"]],
    )  # fmt: skip
    assert rows(sources) == [("Direct / None", 1, 100), ("Google", 2, 0)]
    entries = await query(
        api, site_domain, metrics=["visits", "pageviews"], date_range=WEEK,
        dimensions=["visit:entry_page", "visit:exit_page"],
    )  # fmt: skip
    assert sorted(rows(entries)) == [
        ("/", "/pricing", 1, 2),
        ("/blog/a", "/", 1, 2),
        ("/pricing", "/pricing", 1, 1),
    ]
    props = await query(
        api, site_domain, metrics=["visitors", "events"], date_range=WEEK,
        dimensions=["event:props:plan", "event:name"],
    )  # fmt: skip
    assert rows(props) == [("pro", "Signup", 1, 1)]
    paged = await query(
        api, site_domain, metrics=["visitors"], date_range=WEEK, dimensions=["event:page"],
        pagination={"limit": 1, "offset": 1}, include={"total_rows": True},
    )  # fmt: skip
    assert rows(paged) == [("/pricing", 2)]
    assert paged.json()["meta"]["total_rows"] == 3
    channels = await query(
        api, site_domain, metrics=["visitors", "visits"], date_range=WEEK,
        dimensions=["visit:channel"],
    )  # fmt: skip
    # A and C came from Google (organic search by the channel table), B directly
    assert sorted(rows(channels)) == sorted([("Direct", 1, 1), (classify("Google"), 2, 2)])
    named = await query(
        api, site_domain, metrics=["visitors"], date_range=WEEK,
        dimensions=["visit:country_name", "visit:country"],
    )  # fmt: skip
    assert rows(named) == [("United States", "US", 2), ("Germany", "DE", 1)]


async def test_region_and_city_names_are_the_stored_names(api, services, site_domain, site_id):
    day = dt.datetime(2026, 11, 15, 9, tzinfo=dt.UTC)
    visits = [("Île-de-France", "Paris", 7001), ("Île-de-France", "Lyon", 7002), ("", "", 7003)]
    insert_events(
        services,
        site_id,
        [
            {**EVENTS[0], "timestamp": int(day.timestamp()) + visitor, "visitor_id": visitor,
             "session_id": visitor, "region": region, "city": city}
            for region, city, visitor in visits
        ],
    )  # fmt: skip
    names = await query(
        api, site_domain, metrics=["visitors"], date_range=["2026-11-15", "2026-11-15"],
        dimensions=["visit:region_name", "visit:city_name"], order_by=[["visit:city_name", "asc"]],
    )  # fmt: skip
    assert rows(names) == [("", "", 1), ("Île-de-France", "Lyon", 1), ("Île-de-France", "Paris", 1)]
    paris = await query(
        api, site_domain, metrics=["visitors"], date_range=["2026-11-15", "2026-11-15"],
        dimensions=["visit:region"], filters=[["is", "visit:city_name", ["Paris"]]],
    )  # fmt: skip
    assert rows(paris) == [("Île-de-France", 1)]


async def test_time_series_and_labels(api, site_domain, site_id):
    series = await query(
        api, site_domain, metrics=["visitors", "pageviews"], date_range=WEEK,
        dimensions=["time:day"], include={"time_labels": True},
    )  # fmt: skip
    assert rows(series) == [("2026-11-18", 3, 5)]
    labels = series.json()["meta"]["time_labels"]
    assert labels[0] == "2026-11-12"
    assert len(labels) == 7
    hours = await query(
        api, site_domain, metrics=["visitors"], date_range=["2026-11-18", "2026-11-18"],
        dimensions=["time:hour", "visit:device"],
    )  # fmt: skip
    assert rows(hours) == [
        ("2026-11-18 10:00:00", "Desktop", 1),
        ("2026-11-18 11:00:00", "Mobile", 1),
        ("2026-11-18 12:00:00", "Desktop", 1),
    ]
    window = await query(
        api, site_domain, metrics=["pageviews"],
        date_range=["2026-11-18T10:00:30+00:00", "2026-11-18T11:30:00+00:00"],
    )  # fmt: skip
    assert rows(window) == [(2,)]  # /pricing at 10:01 and 11:00, not / at 10:00


async def test_the_api_and_the_dashboard_give_the_same_numbers(api, services, site_domain, site_id):
    site = await get_site(services.sessions, site_domain)
    for filters, dashboard_filters in (
        ([], []),
        ([["is", "visit:source", ["Google"]]], ["source:is:Google"]),
        ([["contains", "event:page", ["pric"]]], ["page:contains:pric"]),
        ([["is_not", "visit:country", ["DE"]]], ["country:is_not:DE"]),
    ):
        view = View.from_query(
            {"period": ["custom"], "from": [WEEK[0]], "to": [WEEK[1]], "f": dashboard_filters}
        )
        scope = site_scope(services.clickhouse, site, view)
        overview = CARDS["overview"].build(services.clickhouse, scope, Options())["stats"]
        answer = await query(api, site_domain, metrics=ALL, date_range=WEEK, filters=filters)
        assert rows(answer) == [tuple(overview[name] for name in ALL)], filters
        for card, dimension in (("pages", "event:page"), ("sources", "visit:source")):
            options = Options(tab=CARDS[card].tab(None))
            shown = CARDS[card].build(services.clickhouse, scope, options)["rows"]
            broken_down = await query(
                api, site_domain, metrics=["visitors", "pageviews"], date_range=WEEK,
                filters=filters, dimensions=[dimension],
            )  # fmt: skip
            assert [(value, n, views) for value, n, views in rows(broken_down)] == [
                (row["value"] or "Direct / None", row["visitors"], row["pageviews"])
                for row in shown
            ], (card, filters)


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"metrics": ["profit"]}, "metrics: unknown metric 'profit'"),
        ({"metrics": ["conversion_rate"]}, "conversion_rate needs an event:goal filter"),
        ({"metrics": ["total_revenue"], "dimensions": ["visit:source"]}, "needs an event:goal"),
        ({"metrics": ["exit_rate"]}, "'exit_rate' is not supported yet"),
        (
            {"metrics": ["time_on_page"], "dimensions": ["visit:source"]},
            "aggregates or by event:page",
        ),
        (
            {
                "metrics": ["scroll_depth"],
                "dimensions": ["event:page"],
                "order_by": [["scroll_depth", "desc"]],
            },
            "order_by[0]: time_on_page and scroll_depth cannot order",
        ),
        ({"metrics": []}, "metrics: name at least one"),
        ({"metrics": ["visitors", "visitors"]}, "named twice"),
        ({"metrics": ["percentage"]}, "percentage needs a dimension"),
        ({"dimensions": ["event:planet"]}, "dimensions: unknown dimension 'event:planet'"),
        ({"filters": [["is", "visit:country_name", ["Germany"]]]}, "filter on visit:country"),
        ({"metrics": ["pageviews"], "dimensions": ["event:goal"]}, "pageviews is not counted per"),
        ({"dimensions": ["event:goal", "visit:source"]}, "event:goal is not combined"),
        ({"filters": [["contains", "event:goal", ["Sign"]]]}, "a goal filter is `is` or"),
        ({"dimensions": ["time:minute"]}, "unknown dimension"),
        ({"dimensions": ["time:hour"], "date_range": "30d"}, "interval 'hour' does not fit"),
        ({"date_range": "forever"}, "date_range: unknown range 'forever'"),
        ({"date_range": ["2026-02-01", "2026-01-01"]}, "date_range: the start is after"),
        ({"date_range": ["2026-02-01"]}, "date_range: give [start, end]"),
        ({"date_range": ["2026-13-01", "2026-12-31"]}, "is not a date"),
        ({"date_range": ["1900-01-01", "2026-01-01"]}, "dates lie between"),
        ({"filters": [["resembles", "event:page", ["/"]]]}, "filters[0]: unknown filter operator"),
        ({"filters": [["is", "event:planet", ["x"]]]}, "filters[0][1]: unknown dimension"),
        ({"filters": [["is", "event:page", "/"]]}, "filters[0]: a filter is"),
        ({"filters": [["is", "event:page", []]]}, "filters[0]: a filter takes 1 to"),
        ({"filters": [["matches", "event:page", ["("]]]}, "bad pattern"),
        ({"filters": [["not", [["is", "event:page", ["/"]]]]]}, "filters[0][1]: a filter is"),
        ({"filters": [["or", []]]}, "filters[0]: or takes a list"),
        ({"filters": "page"}, "filters"),
        ({"order_by": [["pageviews", "desc"]]}, "order_by[0]: order by one of"),
        ({"pagination": {"limit": 0}}, "pagination.limit"),
        ({"include": {"imports": True}}, "imports"),
        ({"colour": "red"}, "colour"),
        ({"metrics": "visitors"}, "metrics"),
    ],
)
async def test_bad_queries_are_a_400_naming_the_field(api, site_domain, body, needle):
    answer = await query(api, site_domain, **{"metrics": ["visitors"], "date_range": "7d", **body})
    assert answer.status_code == 400, answer.text
    assert needle in answer.json()["error"]


async def test_a_body_that_is_not_json_is_a_400(api):
    answer = await api.post(
        "/api/v2/query", content=b"{nope", headers={"Content-Type": "application/json"}
    )
    assert answer.status_code == 400
    assert "error" in answer.json()


async def test_keys_reach_only_their_users_sites(services, site_domain, site_id, owner):
    await set_plan(services, await own_organization(services, owner), "premium")
    body = {"site_id": site_domain, "metrics": ["visitors"], "date_range": WEEK}
    stranger = (await api_keys.create_key(services.sessions, await new_user(services), "x"))[1]
    viewer = await new_user(services)
    await join(services, viewer, site_domain, Role.VIEWER)
    member = (await api_keys.create_key(services.sessions, viewer, "x"))[1]
    revoked_key, revoked = await api_keys.create_key(services.sessions, owner, "old")
    assert owner.id is not None
    assert revoked_key.id is not None
    await api_keys.revoke_key(services.sessions, owner.id, revoked_key.id)
    async with make_client(services) as http:

        async def status(secret: str | None, path: str = "/api/v2/query") -> int:
            headers = {"Authorization": f"Bearer {secret}"} if secret else {}
            return (await http.post(path, json=body, headers=headers)).status_code

        assert await status(member) == 200
        assert await status(stranger) == 404
        assert await status(revoked) == 401
        assert await status(None) == 401
        assert await status("ursa_" + "x" * 43) == 401
        unknown_site = {**body, "site_id": "nowhere.example"}
        answer = await http.post(
            "/api/v2/query", json=unknown_site, headers={"Authorization": f"Bearer {member}"}
        )
        assert answer.status_code == 404
        assert "set-cookie" not in answer.headers


async def test_a_key_past_its_rate_limit_gets_429_with_retry_after(
    services, site_domain, key, monkeypatch
):
    rule = Rule(f"test-api-{secrets.token_hex(4)}", Scope.KEY, 2, 600, fail_open=True)
    monkeypatch.setattr("app.main.API_PER_KEY", rule)
    body = {"site_id": site_domain, "metrics": ["visitors"], "date_range": "day"}
    async with make_client(services) as http:
        http.headers["Authorization"] = f"Bearer {key}"
        codes = [(await http.post("/api/v2/query", json=body)).status_code for _ in range(2)]
        refused = await http.post("/api/v2/query", json=body)
        legacy = await http.get(f"/api/v1/stats/aggregate?site_id={site_domain}")
    assert codes == [200, 200]
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) > 0
    assert refused.json()["retry_after"] == int(refused.headers["retry-after"])
    assert legacy.status_code == 429  # one budget per key, whichever version


# --- v1 --------------------------------------------------------------------------------------


async def test_v1_aggregate_timeseries_and_breakdown(api, site_domain, site_id):
    common = f"site_id={site_domain}&period=custom&date=2026-11-12,2026-11-18"
    aggregate = await api.get(
        f"/api/v1/stats/aggregate?{common}&metrics=visitors,pageviews,bounce_rate"
        "&filters=visit:source%3D%3DGoogle&compare=previous_period"
    )
    assert aggregate.status_code == 200, aggregate.text
    assert aggregate.json() == {
        "results": {
            "visitors": {"value": 2, "change": 100},
            "pageviews": {"value": 4, "change": 100},
            "bounce_rate": {"value": 0, "change": 0},
        }
    }
    previous = await api.get(
        f"/api/v1/stats/aggregate?site_id={site_domain}&period=7d&date=2026-11-11"
    )
    assert previous.json() == {"results": {"visitors": {"value": 1}}}  # D, on 10 November
    series = await api.get(f"/api/v1/stats/timeseries?{common}&metrics=visitors,visits")
    assert series.status_code == 200, series.text
    points = series.json()["results"]
    assert len(points) == 7
    assert points[-1] == {"date": "2026-11-18", "visitors": 3, "visits": 3}
    assert points[0] == {"date": "2026-11-12", "visitors": 0, "visits": 0}
    pages = await api.get(
        f"/api/v1/stats/breakdown?{common}&property=event:page&metrics=visitors,bounce_rate"
        "&limit=2&page=1"
    )
    assert pages.json() == {
        "results": [
            {"page": "/", "visitors": 2, "bounce_rate": 0},
            {"page": "/pricing", "visitors": 2, "bounce_rate": 50},
        ]
    }
    second = await api.get(
        f"/api/v1/stats/breakdown?{common}&property=visit:country&filters="
        "visit:country!%3DDE%7CFR&limit=5&page=1"
    )
    assert second.json() == {"results": [{"country": "US", "visitors": 2}]}


async def test_v1_realtime_visitors(api, services, site_domain, site_id):
    now = dt.datetime.now(dt.UTC)
    recent = [
        {
            **EVENTS[0],
            "visitor_id": 90 + n,
            "session_id": 900 + n,
            "timestamp": int(now.timestamp()),
        }
        for n in range(2)
    ]
    insert_events(services, site_id, recent)
    answer = await api.get(f"/api/v1/stats/realtime/visitors?site_id={site_domain}")
    assert answer.status_code == 200
    assert answer.json() == 2


@pytest.mark.parametrize(
    "query_string",
    [
        "period=forever",
        "period=custom&date=2026-01-01",
        "period=7d&date=yesterday",
        "metrics=profit",
        "filters=visit:planet%3D%3Dx",
        "filters=event:page",
        "compare=year_over_year",
    ],
)
async def test_v1_bad_parameters_are_a_400(api, site_domain, query_string):
    answer = await api.get(f"/api/v1/stats/aggregate?site_id={site_domain}&{query_string}")
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]


async def test_v1_breakdown_needs_a_known_property_and_a_sane_page(api, site_domain):
    for extra in ("", "&property=visit:planet", "&property=event:page&limit=5000", "&page=0"):
        answer = await api.get(f"/api/v1/stats/breakdown?site_id={site_domain}{extra}")
        assert answer.status_code == 400, (extra, answer.text)
    not_a_number = await api.get(
        f"/api/v1/stats/breakdown?site_id={site_domain}&property=event:page&limit=ten"
    )
    assert not_a_number.status_code == 400
    assert "limit" in not_a_number.json()["error"]


# --- documentation ---------------------------------------------------------------------------


async def test_the_openapi_schema_describes_the_api_only(client):
    schema = (await client.get("/api/schema/openapi.json")).json()
    assert set(schema["paths"]) == {
        "/api/v2/query",
        "/api/v1/stats/realtime/visitors",
        "/api/v1/stats/aggregate",
        "/api/v1/stats/timeseries",
        "/api/v1/stats/breakdown",
    }
    body = schema["paths"]["/api/v2/query"]["post"]["requestBody"]["content"]
    reference = body["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    fields = schema["components"]["schemas"][reference]["properties"]
    assert {"site_id", "metrics", "date_range", "dimensions", "filters"} <= set(fields)
    assert schema["components"]["securitySchemes"]["ApiKey"]["scheme"] == "bearer"
    for path, operations in schema["paths"].items():
        for operation in operations.values():
            assert {"400", "401", "402", "404", "429"} <= set(operation["responses"]), path
    plan = schema["paths"]["/api/v2/query"]["post"]["responses"]["402"]["content"]
    shape = plan["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert set(schema["components"]["schemas"][shape]["properties"]) == {
        "error",
        "plan",
        "upgrade_url",
    }


async def test_the_docs_page_has_curl_examples(client, services):
    page = await client.get("/api/docs")
    assert page.status_code == 200
    assert f"curl -X POST {services.settings.BASE_URL}/api/v2/query" in page.text
    assert "Authorization: Bearer" in page.text


async def test_a_visit_across_an_hour_counts_where_it_begins(api, services, site_domain, site_id):
    day = dt.datetime(2026, 11, 19, tzinfo=dt.UTC)
    visit = {**EVENTS[0], "visitor_id": 7, "session_id": 701, "device": "Tablet"}
    insert_events(
        services,
        site_id,
        [
            {**visit, "timestamp": int(day.replace(hour=13, minute=50).timestamp()),
             "session_start": 1, "session_bounce": 1},
            {**visit, "timestamp": int(day.replace(hour=14, minute=10).timestamp()),
             "pathname": "/pricing", "session_start": 0, "session_bounce": -1,
             "session_seconds": 1200},
        ],
    )  # fmt: skip
    same_day = ["2026-11-19", "2026-11-19"]
    metrics = ["visitors", "visits", "pageviews", "visit_duration"]
    by_hour = await query(
        api, site_domain, metrics=metrics, date_range=same_day, dimensions=["time:hour"]
    )
    by_hour_and_device = await query(
        api, site_domain, metrics=metrics, date_range=same_day,
        dimensions=["time:hour", "visit:device"],
    )  # fmt: skip
    # The visit counts in the hour it began; its seconds land where its events are, and an hour
    # shows at most as many visitors as visits (as the dashboard's chart counts them).
    assert rows(by_hour) == [
        ("2026-11-19 13:00:00", 1, 1, 1, 0),
        ("2026-11-19 14:00:00", 0, 0, 1, 0),
    ]
    assert rows(by_hour_and_device) == [
        ("2026-11-19 13:00:00", "Tablet", 1, 1, 1, 0),
        ("2026-11-19 14:00:00", "Tablet", 0, 0, 1, 0),
    ]


async def test_a_body_nested_far_too_deep_is_a_400(api, site_domain):
    depth = 200_000  # past msgspec's recursion limit, well under any body-size limit
    body = (
        f'{{"site_id": "{site_domain}", "metrics": ["visitors"], "date_range": "7d", '
        f'"filters": [{"[" * depth}{"]" * depth}]}}'
    )
    answer = await api.post(
        "/api/v2/query", content=body.encode(), headers={"Content-Type": "application/json"}
    )
    assert answer.status_code == 400
    assert "nested" in answer.json()["error"]


async def test_every_path_of_a_breakdown_gives_the_same_visitors_and_pageviews(
    api, site_domain, site_id
):
    """Rollup (unfiltered), raw events (a filter that keeps everything), and raw events
    joined to whole visits (a visit metric asked): the same counts."""
    keep_all = [["is_not", "event:hostname", ["nowhere.example"]]]
    for dimension in ("event:page", "visit:source", "visit:country"):
        answers = [
            rows(
                await query(
                    api,
                    site_domain,
                    metrics=metrics,
                    date_range=WEEK,
                    dimensions=[dimension],
                    filters=filters,
                )
            )
            for metrics, filters in (
                (["visitors", "pageviews"], []),
                (["visitors", "pageviews"], keep_all),
                (["visitors", "pageviews", "bounce_rate"], keep_all),
            )
        ]
        assert answers[0] == answers[1] == [row[:3] for row in answers[2]], dimension


PURCHASES = [
    {**event, "name": "Purchase", "revenue": Decimal(amount), "revenue_currency": "EUR"}
    for event, amount in ((EVENTS[3], "9.50"), (EVENTS[5], "20.50"))  # B's and C's visits
]
GOALS = ["Signup", "Purchase", "Visit /pricing"]


@pytest.fixture
async def goals_site(services, site_domain, site_id):
    insert_events(services, site_id, PURCHASES)
    site = await get_site(services.sessions, site_domain)
    await update_site(services.sessions, site, goals=GOALS)
    return site_id


def money(value: float) -> dict[str, Any]:
    return {"short": f"€{value:.1f}", "long": f"€{value:,.2f}", "value": value, "currency": "EUR"}


async def test_conversion_rate_and_revenue_of_a_goal_filter(api, site_domain, goals_site):
    purchase = [["is", "event:goal", ["Purchase"]]]
    metrics = ["visitors", "events", "conversion_rate", "total_revenue", "average_revenue"]
    # B and C bought (9.50 + 20.50) of the week's three visitors A, B, C.
    answer = await query(api, site_domain, metrics=metrics, date_range=WEEK, filters=purchase)
    assert rows(answer) == [(2, 2, 66.7, money(30.0), money(15.0))]
    by_source = await query(
        api, site_domain, metrics=["visitors", "conversion_rate", "group_conversion_rate"],
        date_range=WEEK, filters=purchase, dimensions=["visit:source"],
    )  # fmt: skip
    # Direct: B of B alone; Google: C of A and C; both of all three visitors.
    assert rows(by_source) == [("Direct / None", 1, 33.3, 100.0), ("Google", 1, 33.3, 50.0)]
    by_day = await query(
        api, site_domain, metrics=["visitors", "conversion_rate"], date_range=WEEK,
        filters=[["is", "event:goal", ["Signup"]]], dimensions=["time:day"],
    )  # fmt: skip
    assert rows(by_day) == [("2026-11-18", 1, 33.3)]


async def test_a_breakdown_by_goal_counts_what_the_goals_card_counts(
    api, owner_client, site_domain, goals_site
):
    metrics = ["visitors", "events", "conversion_rate", "total_revenue"]
    answer = await query(
        api, site_domain, metrics=metrics, date_range=WEEK, dimensions=["event:goal"]
    )
    # /pricing was viewed by A and B; only A signed up.
    assert rows(answer) == [
        ("Purchase", 2, 2, 66.7, money(30.0)),
        ("Visit /pricing", 2, 2, 66.7, None),
        ("Signup", 1, 1, 33.3, None),
    ]
    only = await query(
        api, site_domain, metrics=["visitors"], date_range=WEEK, dimensions=["event:goal"],
        filters=[["is", "event:goal", ["Signup", "Purchase"]], ["is", "visit:country", ["US"]]],
    )  # fmt: skip
    assert rows(only) == [("Purchase", 2)]  # A, the one who signed up, is in DE
    card = await owner_client.get(
        f"/{site_domain}/cards/goals?period=custom&from=2026-11-12&to=2026-11-18"
    )
    assert ">Purchase<" in card.text
    assert "66.7" in card.text
