"""Fuzzing the Stats API's request parser and engine: whatever the body, an answer or a 400.

`msgspec.convert` plays Litestar's part (a `ValidationError` becomes a 400 naming the field),
`parse_query` may refuse with `InvalidInput`, and a parsed query runs on real chDB, where any
other exception (a ClickHouse error above all) would be a 5xx. The strategies mix the API's
vocabulary with garbage: known and unknown metrics and dimensions, ranges of every form,
filter trees of any depth with SQL-looking, unicode and very long values.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from app.analytics.clickhouse.gateway import ClickHouse
from app.analytics.queries.filters import OPERATORS
from app.dashboard import stats_api
from app.dashboard.stats_api import QueryRequest, parse_query, run_query
from app.errors import InvalidInput
from app.models import Site
from tests.integration.test_filtered_queries import EVENTS

FUZZ = settings(
    max_examples=150,
    deadline=None,  # no timing assertions: the machine is shared
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    database=None,
)
NOW = dt.datetime(2026, 11, 20, 15, 30, tzinfo=dt.UTC)
SITE_ID = 3_000_000_000 + secrets.randbelow(1_000_000)  # apart from the sites other tests make

words = st.text(max_size=30) | st.sampled_from(
    ["'; DROP TABLE events; --", "{site_id:UInt32}", "\\", "%", "ü\u0000", "x" * 3000, "(", ".*"]
)
metrics = st.sampled_from([*stats_api.METRICS, *stats_api.NOT_YET]) | words
dimensions = (
    st.sampled_from([*stats_api.DIMENSIONS, *stats_api.TIME_DIMENSIONS, "event:goal"])
    | st.builds(lambda name: f"event:props:{name}", words)
    | words
)
day = st.dates(dt.date(1999, 12, 25), dt.date(2101, 1, 5)).map(dt.date.isoformat)
moment = st.datetimes(dt.datetime(1999, 12, 31), dt.datetime(2101, 1, 1)).map(
    lambda value: value.isoformat()
)
date_ranges = (
    st.sampled_from([*stats_api.NAMED_RANGES, "24h", "realtime"])
    | st.lists(day | moment | words, min_size=0, max_size=3)
    | words
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | words,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(words, inner, max_size=3),
    max_leaves=8,
)
leaf_filters = st.tuples(
    st.sampled_from(OPERATORS) | words,
    dimensions,
    st.lists(words | st.integers() | st.booleans(), max_size=4) | json_values,
).map(list)
filters = st.recursive(
    leaf_filters,
    lambda inner: (
        st.tuples(st.sampled_from(["and", "or"]), st.lists(inner, max_size=3)).map(list)
        | st.tuples(st.just("not"), inner).map(list)
    ),
    max_leaves=6,
)
bodies = st.fixed_dictionaries(
    {
        "site_id": st.just("fuzz.example"),
        "metrics": st.lists(metrics, min_size=1, max_size=4),
        "date_range": date_ranges,
    },
    optional={
        "dimensions": st.lists(dimensions, max_size=3),
        "filters": st.lists(filters, max_size=3) | json_values,
        "order_by": st.lists(
            st.tuples(metrics | dimensions, st.sampled_from(["asc", "desc"]) | words).map(list),
            max_size=2,
        ),
        "include": st.fixed_dictionaries(
            {}, optional={"total_rows": st.booleans(), "time_labels": st.booleans()}
        ),
        "pagination": st.fixed_dictionaries(
            {}, optional={"limit": st.integers(-5, 2000), "offset": st.integers(-5, 10**7)}
        ),
        "extra": json_values,
    },
)

# Mostly well-formed queries, so that most reach ClickHouse: valid names, hostile values.
# (goals and country names have their own rules: below, and a 400 for a country-name filter)
SPECIAL = {stats_api.GOAL, stats_api.COUNTRY_NAME}
SPECIAL_METRICS = (*stats_api.GOAL_METRICS, *stats_api.ENGAGEMENT_METRICS)
good_dimensions = st.sampled_from(
    [*(d for d in stats_api.DIMENSIONS if d not in SPECIAL), "event:props:plan"]
)
PLAIN_OPERATORS = [op for op in OPERATORS if not op.startswith("matches")]  # no bad patterns
good_filters = st.recursive(
    st.tuples(
        st.sampled_from(PLAIN_OPERATORS), good_dimensions, st.lists(words, min_size=1, max_size=3)
    ).map(list),
    lambda inner: (
        st.tuples(st.sampled_from(["and", "or"]), st.lists(inner, min_size=1, max_size=3)).map(list)
        | st.tuples(st.just("not"), inner).map(list)
    ),
    max_leaves=5,
)


def _good_bodies(
    metrics: list[str], dimensions: st.SearchStrategy[list[str]]
) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "site_id": st.just("fuzz.example"),
            "metrics": st.lists(st.sampled_from(metrics), min_size=1, max_size=4, unique=True),
            "date_range": st.sampled_from(["7d", "30d", "month", "6mo", "all", "day"])
            | st.just(["2026-11-01", "2026-11-20"])
            | st.just(["2026-11-18T09:30:00+01:00", "2026-11-18T12:10:00Z"]),
        },
        optional={
            "dimensions": dimensions,
            "filters": st.lists(good_filters, max_size=3),
            "pagination": st.fixed_dictionaries(
                {"limit": st.integers(1, 1000), "offset": st.integers(0, 20)}
            ),
            "include": st.fixed_dictionaries({"total_rows": st.booleans()}),
        },
    )


# Time on page and scroll depth are answered as aggregates and by page only.
good_bodies = _good_bodies(
    [m for m in stats_api.METRICS if m not in ("percentage", *SPECIAL_METRICS)],
    st.lists(good_dimensions, max_size=2, unique=True)
    | st.sampled_from([["time"], ["time:day"], ["time:day", "visit:device"]]),
) | _good_bodies(
    ["visitors", "pageviews", *stats_api.ENGAGEMENT_METRICS],
    st.sampled_from([[], ["event:page"]]),
)


@pytest.fixture(scope="module")
def fuzz_site(clickhouse: ClickHouse) -> Site:
    """A site with the hand-counted visits, known to ClickHouse only (no app database needed)."""
    columns = [*EVENTS[0], "event_id", "site_id"]
    data = [[event[column] for event in EVENTS] for column in EVENTS[0]]
    data += [[SITE_ID << 20 | n for n in range(len(EVENTS))], [SITE_ID] * len(EVENTS)]
    clickhouse.insert("events", columns, data, token=f"fuzz:{SITE_ID}")
    return Site(id=SITE_ID, domain="fuzz.example", timezone="Europe/Berlin")


def _answer(clickhouse: ClickHouse, site: Site, body: Any) -> dict[str, Any] | str:
    """The answer, or the message of a refusal (a 400); anything else raised is a failure."""
    try:
        request = msgspec.convert(body, QueryRequest)
        query = parse_query(request)
        answer = run_query(clickhouse, site, query, NOW)
    except (msgspec.ValidationError, InvalidInput) as exc:
        return str(exc)
    return dict(json.loads(msgspec.json.encode(answer)))


@FUZZ
@given(body=bodies)
@example(body={"site_id": "x", "metrics": ["visitors"], "date_range": "7d", "filters": [["not"]]})
@example(
    body={
        "site_id": "x",
        "metrics": ["visitors", "percentage"],
        "date_range": ["2026-11-18T10:00:00", "2026-11-18T10:00:00"],
        "dimensions": ["event:props:plan", "visit:exit_page", "time:hour"],
        "filters": [
            ["or", [["is", "event:props:plan", ["pro"]], ["is", "visit:entry_page", ["/"]]]]
        ],
        "order_by": [["percentage", "desc"]],
        "pagination": {"limit": 1, "offset": 5},
        "include": {"total_rows": True, "time_labels": True},
    }
)
def test_any_body_gets_an_answer_or_a_refusal(clickhouse, fuzz_site, body):
    answer = _answer(clickhouse, fuzz_site, body)
    if not isinstance(answer, str):
        assert set(answer) == {"results", "meta", "query"}
        for row in answer["results"]:
            assert len(row["metrics"]) == len(body["metrics"])
            assert len(row["dimensions"]) == len(body.get("dimensions", []))


@FUZZ
@given(body=good_bodies)
def test_well_formed_queries_with_hostile_values_are_answered(clickhouse, fuzz_site, body):
    answer = _answer(clickhouse, fuzz_site, body)
    if isinstance(answer, str):  # only a value too long, or a range too long to chart by day
        assert "at most 2000 characters" in answer or "does not fit" in answer, answer
        return
    assert answer["query"]["metrics"] == body["metrics"]


goal_filters = st.tuples(
    st.sampled_from(["is", "is_not"]),
    st.just(stats_api.GOAL),
    st.lists(words, min_size=1, max_size=3),
).map(list)
goal_bodies = st.fixed_dictionaries(
    {
        "site_id": st.just("fuzz.example"),
        "metrics": st.lists(
            st.sampled_from(stats_api.GOAL_ROW_METRICS), min_size=1, max_size=4, unique=True
        ),
        "date_range": st.sampled_from(["7d", "30d", "all"]) | st.just(["2026-11-01", "2026-11-20"]),
        "filters": st.lists(good_filters, max_size=2).flatmap(
            lambda others: goal_filters.map(lambda goal: [goal, *others])
        ),
    },
    optional={
        "dimensions": st.just([stats_api.GOAL])
        | st.lists(good_dimensions | st.just("visit:country_name"), max_size=2, unique=True)
        | st.just(["time:day"]),
    },
)


@FUZZ
@given(body=goal_bodies)
def test_goal_metrics_of_hostile_goals_are_answered(clickhouse, fuzz_site, body):
    answer = _answer(clickhouse, fuzz_site, body)
    if isinstance(answer, str):
        assert "at most 2000 characters" in answer, answer
        return
    assert answer["query"]["metrics"] == body["metrics"]
    for row in answer["results"]:
        for name, value in zip(body["metrics"], row["metrics"], strict=True):
            if name in stats_api.REVENUE_METRICS:
                assert value is None or set(value) == {"short", "long", "value", "currency"}
            elif name.endswith("conversion_rate"):
                assert 0 <= value <= 100


@FUZZ
@given(body=json_values)
def test_any_json_value_gets_a_refusal_or_an_answer(clickhouse, fuzz_site, body):
    _answer(clickhouse, fuzz_site, body)


def test_filters_nested_deeper_than_allowed_are_refused(clickhouse, fuzz_site):
    tree: list[Any] = ["is", "event:page", ["/"]]
    for _ in range(2000):
        tree = ["not", tree]
    body = {"site_id": "x", "metrics": ["visitors"], "date_range": "7d", "filters": [tree]}
    with pytest.raises(InvalidInput, match="nest at most"):
        parse_query(msgspec.convert(body, QueryRequest))
