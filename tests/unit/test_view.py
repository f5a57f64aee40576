"""The dashboard view in its URL: filters with several values survive a round trip."""

from __future__ import annotations

from urllib.parse import parse_qs

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.analytics.queries.filters import Filter
from app.dashboard.view import View, join_values, split_values
from app.errors import InvalidInput


@given(st.lists(st.text(max_size=20), min_size=1, max_size=5))
def test_values_joined_into_a_url_are_split_back(values):
    assert split_values(join_values(values)) == tuple(values)


def test_alternatives_and_escapes():
    assert split_values("/a|/b") == ("/a", "/b")
    assert split_values(r"a\|b") == ("a|b",)
    assert split_values(r"a\\|b") == ("a\\", "b")
    assert split_values("") == ("",)
    with pytest.raises(InvalidInput, match="lone backslash"):
        split_values("a\\")


def test_a_filter_with_two_values_stays_one_filter_through_a_link():
    view = View.from_query({"f": ["page:is:/pricing|/about|a\\|b"]})
    assert view.filters == (Filter("page", "is", ("/pricing", "/about", "a|b")),)
    again = View.from_query(parse_qs(view.link().removeprefix("?")))
    assert again.filters == view.filters


def test_each_cards_tab_survives_a_link_and_bad_tabs_are_refused():
    view = View.from_query({"t": ["sources:channels", "properties:plan:a"]})
    assert view.tab_for("sources") == "channels"
    assert view.tab_for("properties") == "plan:a"  # a property's name may hold a colon
    assert view.tab_for("pages") is None
    moved = view.with_tab("sources", "utm_source")
    again = View.from_query(parse_qs(moved.link().removeprefix("?")))
    assert again.tabs == (("properties", "plan:a"), ("sources", "utm_source"))
    for bad in (
        ["sources"],
        ["Sources:x"],
        ["pages:a", "pages:b"],
        ["x:y"] * 21,
        ["a:" + "b" * 301],
    ):
        with pytest.raises(InvalidInput):
            View.from_query({"t": bad})
