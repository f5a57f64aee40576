"""Filters from URLs and the where-builder: values are always bound, never written into SQL."""

from __future__ import annotations

import re
from urllib.parse import parse_qs

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.analytics.queries.filters import (
    DIMENSIONS,
    PAGE_GOAL_PREFIX,
    Combination,
    Filter,
    combine,
    where,
)
from app.dashboard.view import View, filter_label, parse_filter
from app.errors import InvalidInput

BASE = "site_id = {site_id:UInt32}"


def test_event_filters_keep_whole_visits_and_visit_filters_are_plain_conditions():
    built = where([Filter("page", "is", ("/pricing",)), Filter("source", "is", ("Google",))], BASE)
    assert built.events == "(pathname IN {f0:Array(String)})"
    assert "referrer_source IN {f1:Array(String)}" in built.visits
    assert f"session_id IN (SELECT session_id FROM events WHERE {BASE} AND" in built.visits
    assert built.params == {"f0": ["/pricing"], "f1": ["Google"]}


def test_matching_selects_the_counted_events_without_the_subquery_for_their_visits():
    built = where([Filter("page", "is", ("/pricing",)), Filter("source", "is", ("Google",))], BASE)
    assert built.matching == (
        "(referrer_source IN {f1:Array(String)}) AND (pathname IN {f0:Array(String)})"
    )
    assert "session_id" not in built.matching
    assert where([], BASE).matching == "1"


def test_entry_and_exit_pages_select_visits_by_their_first_and_last_page():
    built = where(
        [Filter("entry_page", "is", ("/a",)), Filter("exit_page", "is_not", ("/b",))], BASE
    )
    assert "session_start = 1 AND pathname IN {f0:Array(String)}" in built.visits
    assert "HAVING NOT argMax(pathname, timestamp) IN {f1:Array(String)}" in built.visits
    assert built.events == "1"


def test_a_property_name_is_a_parameter_too():
    built = where([Filter("prop:plan'); DROP", "is", ("pro",))], BASE)
    assert "DROP" not in built.events
    assert built.params["f0"] == "plan'); DROP"


def test_no_filter_restricts_nothing():
    assert (where([], BASE).visits, where([], BASE).events) == ("1", "1")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("page", "dimension:operator:value"),
        ("planet:is:earth", "unknown filter dimension"),
        ("page:equals:/", "unknown filter operator"),
        ("page:matches:(", "bad pattern"),
        ("page:matches:(?=x)", "lookarounds"),
        ("prop::is:x", "bad property name"),
        ("page:is:" + "x" * 2001, "at most 2000"),
    ],
)
def test_bad_filters_say_what_is_wrong(raw, message):
    with pytest.raises(InvalidInput, match=re.escape(message)):
        parse_filter(raw)


def test_the_url_holds_the_whole_view_and_reads_back_the_same():
    view = View.from_query(
        {
            "period": ["custom"],
            "from": ["2026-01-01"],
            "to": ["2026-01-31"],
            "comparison": ["year_over_year"],
            "match_day_of_week": ["true"],
            "f": ["page:is:/a", "page:is:/b:c", "prop:plan:is:pro"],
            "metric": ["pageviews"],
        }
    )
    assert view.filters == (
        Filter("page", "is", ("/a", "/b:c")),
        Filter("prop:plan", "is", ("pro",)),
    )
    again = View.from_query(_params(view.link()))
    assert again == view
    assert filter_label(view.filters[0]) == "Page is /a or /b:c"
    removed = View.from_query(_params(view.without_filter(0)))
    assert removed.filters == (Filter("prop:plan", "is", ("pro",)),)


def test_repeated_or_bad_view_parameters_are_refused():
    for params in ({"period": ["7d", "30d"]}, {"period": ["1y"]}, {"from": ["2026-13-01"]}):
        with pytest.raises(InvalidInput):
            View.from_query(params)


def _params(query: str) -> dict[str, list[str]]:
    return parse_qs(query.removeprefix("?"), keep_blank_values=True)


def _stand_ins(values: list[str]) -> tuple[str, ...]:
    """Other values of the same shape: equal where they were, a page goal stays a page goal."""
    other = {value: f"x{index}" for index, value in enumerate(dict.fromkeys(values))}
    return tuple(
        f"{PAGE_GOAL_PREFIX}/{other[v]}" if v.startswith(PAGE_GOAL_PREFIX) else other[v]
        for v in values
    )


@given(
    name=st.sampled_from(sorted(DIMENSIONS)),
    operator=st.sampled_from(["is", "is_not", "contains", "contains_not"]),
    values=st.lists(st.text(max_size=50), min_size=1, max_size=5),
)
def test_any_value_is_bound_and_never_reaches_the_sql(name, operator, values):
    if name == "goal" and operator not in ("is", "is_not"):
        with pytest.raises(InvalidInput):
            where(combine([Filter(name, operator, tuple(values))]), BASE)
        return
    built = where(combine([Filter(name, operator, tuple(values))]), BASE)
    other = where(combine([Filter(name, operator, _stand_ins(values))]), BASE)
    # The SQL is the same whatever the values: they only ever reach the parameters.
    assert (built.visits, built.events) == (other.visits, other.events)
    assert all(re.fullmatch(r"f\d+|channel_\d+_[ms]", key) for key in built.params)
    bound = {v for value in built.params.values() for v in _flat(value)}
    plain = {v for v in values if not (name == "goal" and v.startswith(PAGE_GOAL_PREFIX))}
    assert plain <= bound


def _flat(value: object) -> list[object]:
    return list(value) if isinstance(value, list) else [value]


@given(st.text(max_size=200))
def test_parsing_any_text_either_gives_a_filter_or_a_clear_error(raw):
    try:
        parsed = parse_filter(raw)
    except InvalidInput as exc:
        message = str(exc)
    else:
        message = ""
        assert raw.endswith(parsed.values[0])
    assert message or parsed


def test_a_tree_with_an_event_dimension_restricts_events_by_the_whole_tree():
    tree = Combination(
        "or",
        (
            Filter("country", "is", ("DE",)),
            Combination("not", (Filter("page", "contains", ("'; DROP",)),)),
        ),
    )
    built = where([tree], BASE)
    assert built.events == (
        "((country_code IN {f0:Array(String)}) OR (NOT (arrayExists(v -> "
        "positionUTF8(lowerUTF8(pathname), v) > 0, {f2:Array(String)}))))"
    )
    assert (
        built.visits
        == f"(session_id IN (SELECT session_id FROM events WHERE {BASE} AND {built.events}))"
    )
    assert built.params == {"f0": ["DE"], "f1": ["'; DROP"], "f2": ["'; drop"]}
    assert "DROP" not in built.events + built.visits


def test_a_tree_of_visit_dimensions_only_restricts_visits():
    tree = Combination(
        "and", (Filter("device", "is", ("Mobile",)), Filter("entry_page", "is", ("/",)))
    )
    built = where([tree], BASE)
    assert built.events == "1"
    assert built.visits.startswith("((device IN {f0:Array(String)}) AND (session_id IN (")


@pytest.mark.parametrize(
    ("operator", "items", "message"),
    [
        ("not", (), "exactly one"),
        ("or", (), "at least one"),
        ("xor", (Filter("page", "is", ("/",)),), "unknown filter combination"),
    ],
)
def test_bad_trees_are_refused(operator, items, message):
    with pytest.raises(InvalidInput, match=message):
        Combination(operator, items)


def test_trees_are_bounded_in_depth_and_size():
    leaf = Filter("page", "is", ("/",))
    tree: Combination | Filter = leaf
    for _ in range(5):
        tree = Combination("not", (tree,))
    with pytest.raises(InvalidInput, match="levels deep"):
        Combination("not", (tree,))
    with pytest.raises(InvalidInput, match="at most 20 filters"):
        Combination("or", (leaf,) * 21)
