"""What the dashboard page and its cards are rendered with, for members and read-only views.

The links of the page (ranges, arrows, comparison, filter chips, a row's filter) are computed
here from the `View`, so templates only place them.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from litestar import Request

from app.analytics.queries.filters import DIMENSIONS, Filter, combine
from app.analytics.queries.periods import COMPARISONS, PERIODS, Period
from app.analytics.queries.stats import MAX_SEARCH_LENGTH, SORTS
from app.dashboard.cards import CARDS, Card, DetailsQuery, Tab, site_period
from app.dashboard.performance import Shown
from app.dashboard.view import (
    MAX_PARAM_LENGTH,
    OPERATOR_LABELS,
    View,
    filter_label,
    parse_filter,
)
from app.errors import InvalidInput
from app.models import Site

MAX_PAGE = 10_000

# The range menu, in groups as it is shown (a separator between groups).
RANGE_GROUPS = (
    ("realtime", "today", "yesterday", "24h"),
    ("7d", "28d", "30d", "91d"),
    ("month", "last_month", "year", "12mo"),
    ("all",),
)

# Keyboard shortcuts of the range menu (the page's help popover lists them).
SHORTCUTS = {
    "today": "T",
    "yesterday": "Y",
    "realtime": "R",
    "24h": "D",
    "7d": "W",
    "30d": "F",
    "month": "M",
    "last_month": "N",
    "12mo": "L",
    "all": "A",
}


def view_of(request: Request[Any, Any, Any]) -> View:
    """The view a request's query string names (`InvalidInput` → 400 when it is wrong)."""
    return View.from_query(_query(request))


def shown_of(request: Request[Any, Any, Any]) -> Shown:
    """What the performance page shows of the view (`InvalidInput` → 400 when it is wrong)."""
    return Shown.from_query(_query(request))


def _query(request: Request[Any, Any, Any]) -> dict[str, list[str]]:
    params = request.query_params
    return {name: params.getall(name) for name in params}


def _one(request: Request[Any, Any, Any], name: str) -> str:
    values = request.query_params.getall(name, [])
    if len(values) > 1:
        raise InvalidInput(f"{name} is given more than once")
    value = values[0] if values else ""
    if len(value) > MAX_PARAM_LENGTH:
        raise InvalidInput(f"{name} is too long")
    return value


def tab_of(request: Request[Any, Any, Any], card: Card, view: View) -> Tab | None:
    """The card's tab `?tab=` or the view's `t=card:tab` names (its first when neither); 400
    for one it does not have."""
    return card.tab(_one(request, "tab") or view.tab_for(card.name))


def details_of(request: Request[Any, Any, Any]) -> DetailsQuery:
    """A Details list's search (`q`), sort and page; `InvalidInput` (400) when one is wrong
    (the sort itself is checked against the metric columns by the query)."""
    search = _one(request, "q").strip()
    if len(search) > MAX_SEARCH_LENGTH:
        raise InvalidInput(f"a search is at most {MAX_SEARCH_LENGTH} characters")
    sort = _one(request, "sort") or "visitors"
    if sort not in SORTS:
        raise InvalidInput(f"unknown sort {sort!r}; use one of {', '.join(SORTS)}")
    page_text = _one(request, "page") or "1"
    if not page_text.isdigit() or not 1 <= int(page_text) <= MAX_PAGE:
        raise InvalidInput(f"page must be a number from 1 to {MAX_PAGE}")
    return DetailsQuery(search, sort, int(page_text))


def dashboard_context(site: Site, view: View) -> dict[str, Any]:
    for name, tab in view.tabs:  # a bad `t=` is the page's 400, not one card's error
        if name not in CARDS:
            raise InvalidInput(f"no card named {name}")
        CARDS[name].tab(tab)
    period = site_period(site, view)
    now = dt.datetime.now(dt.UTC)
    compared = view.resolve(site.timezone, now)[1] if view.comparison != "off" else None
    earlier, later = period.shifted(-1), period.shifted(1)
    today = now.astimezone(ZoneInfo(site.timezone)).date()
    return {
        "site": site,
        "view": view,
        "period": period,
        "compared": compared,
        "cards": CARDS,
        "ranges": [
            [
                {
                    "key": key,
                    "label": PERIODS[key],
                    "link": view.range_link(key),
                    "shortcut": SHORTCUTS.get(key),
                }
                for key in group
            ]
            for group in RANGE_GROUPS
        ],
        "comparisons": COMPARISONS,
        "earlier": None if earlier is None else view.custom_link(*earlier),
        "later": None if later is None or later[0] > today else view.custom_link(*later),
        "chips": chips(view),
        "segments": segment_links(site, view),
        "filter_dimensions": {name: spec.label for name, spec in DIMENSIONS.items()},
        "filter_operators": OPERATOR_LABELS,
        "query": view.link(),
        "compare_toggle": view.link(comparison="off" if compared else "previous_period"),
    }


def card_context(
    card: Card,
    site: Site,
    view: View,
    period: Period,
    base: str,
    tab: Tab | None = None,
    geo_database: bool = True,
) -> dict[str, Any]:
    """What every card template gets besides its numbers: `filter_link(dimension, value)`
    adds a filter to the page's view, `metric_link` plots another top stat, `tab_link(name)`
    is the partial of another tab, `details_link` the full list of this one and
    `details_of(name)` that of another."""

    def filter_link(dimension: str, value: str) -> str:
        return base + view.with_filter(Filter(dimension, "is", (value,)))

    def details_of(name: str) -> str | None:
        chosen = card.tab(name)
        return None if chosen is None else details_link(base, card, view, chosen)

    def tab_link(name: str) -> str:
        return f"{base}/cards/{card.name}{view.with_tab(card.name, name).link()}"

    def tab_page(name: str) -> str:
        return base + view.with_tab(card.name, name).link()

    return {
        "card": card,
        "base": base,
        "site": site,
        "period": period,
        "view": view,
        "current_tab": tab,
        "filter_link": filter_link,
        "metric_link": lambda metric: base + view.link(metric=metric),
        "interval_link": lambda interval: base + view.link(interval=interval),
        "tab_link": tab_link,
        "tab_page": tab_page,
        "details_link": None if tab is None else details_link(base, card, view, tab),
        "details_of": details_of,
        "no_geo_database": tab is not None and tab.needs_geo_database and not geo_database,
    }


def details_link(
    base: str, card: Card, view: View, tab: Tab, asked: DetailsQuery | None = None
) -> str:
    """The Details page of a tab, keeping the view's range and filters."""
    asked = asked or DetailsQuery()
    extra = [("tab", tab.name)]
    if asked.search:
        extra.append(("q", asked.search))
    if asked.sort != "visitors":
        extra.append(("sort", asked.sort))
    if asked.page != 1:
        extra.append(("page", str(asked.page)))
    return f"{base}/cards/{card.name}/details{view.link()}&{urlencode(extra)}"


def details_context(
    card: Card,
    site: Site,
    view: View,
    period: Period,
    base: str,
    tab: Tab,
    asked: DetailsQuery,
    data: dict[str, Any],
) -> dict[str, Any]:
    """The Details page: the card's context, the sort and page links, the search form's
    hidden fields (the view's state), and the way back to the dashboard."""

    def link(**changes: Any) -> str:
        changed = DetailsQuery(
            changes.get("search", asked.search),
            changes.get("sort", asked.sort),
            changes.get("page", asked.page),
        )
        return details_link(base, card, view, tab, changed)

    page, pages = data["page"], data["pages"]
    return {
        **card_context(card, site, view, period, base, tab),
        **data,
        "asked": asked,
        "tabs": [{"tab": item, "link": details_link(base, card, view, item)} for item in card.tabs],
        "sort_links": {name: link(sort=name, page=1) for name in SORTS},
        "previous": link(page=page - 1) if page > 1 else None,
        "next": link(page=page + 1) if page < pages else None,
        "hidden": [*view.query(), ("tab", tab.name), ("sort", asked.sort)],
        "action": f"{base}/cards/{card.name}/details",
        "dashboard": base + view.link(),
        "filters": [filter_label(item) for item in view.filters],
    }


def segment_links(site: Site, view: View) -> list[dict[str, str]]:
    """The site's segments as links: this view with the segment's filters instead of its own
    (a segment whose filters no longer parse is left out)."""
    links = []
    for segment in site.segments:
        try:
            filters = combine(parse_filter(raw) for raw in segment["filters"])
        except InvalidInput:
            continue
        links.append({"name": segment["name"], "link": view.link(filters=filters)})
    return links


def chips(view: View) -> list[dict[str, str]]:
    return [
        {"label": filter_label(item), "remove": view.without_filter(index)}
        for index, item in enumerate(view.filters)
    ]
