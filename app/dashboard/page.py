"""What the dashboard page and its cards are rendered with, for members and read-only views.

The links of the page (ranges, arrows, comparison, filter chips, a row's filter) are computed
here from the `View`, so templates only place them.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from litestar import Request

from app.analytics.queries.filters import DIMENSIONS, Filter, combine
from app.analytics.queries.periods import COMPARISONS, PERIODS, Period
from app.dashboard.cards import CARDS, Card, site_period
from app.dashboard.performance import Shown
from app.dashboard.view import OPERATOR_LABELS, View, filter_label, parse_filter
from app.errors import InvalidInput
from app.models import Site

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


def dashboard_context(site: Site, view: View) -> dict[str, Any]:
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


def card_context(card: Card, site: Site, view: View, period: Period, base: str) -> dict[str, Any]:
    """What every card template gets besides its numbers: `filter_link(dimension, value)`
    adds a filter to the page's view, `metric_link` plots another top stat."""

    def filter_link(dimension: str, value: str) -> str:
        return base + view.with_filter(Filter(dimension, "is", (value,)))

    return {
        "card": card,
        "base": base,
        "site": site,
        "period": period,
        "view": view,
        "filter_link": filter_link,
        "metric_link": lambda metric: base + view.link(metric=metric),
        "interval_link": lambda interval: base + view.link(interval=interval),
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
