"""What a dashboard shows, as it stands in its URL: range, interval, comparison, filters, the
plotted metric and each card's tab (`t=card:tab`, repeated, for the tabs other than the first).

Every link of the dashboard is a `View` changed in one way (`View.link`), so a page reloaded,
bookmarked or reached with the back button shows exactly what it showed. Filters are repeated
`f=dimension:operator:value` parameters (`f=page:is:/pricing`, `f=prop:plan:is:pro`); the same
dimension and operator given twice are alternatives of one filter.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qs, urlencode

from app.analytics.queries.filters import PROP_PREFIX, Filter, combine, dimension
from app.analytics.queries.periods import (
    COMPARISONS,
    DEFAULT_PERIOD,
    PERIODS,
    Period,
    compare,
    parse_date,
    resolve_period,
)
from app.errors import InvalidInput

MAX_PARAM_LENGTH = 4000
# The top stats, in the order the overview shows them; the chart plots one of them.
METRICS = (
    "visitors",
    "visits",
    "pageviews",
    "views_per_visit",
    "bounce_rate",
    "visit_duration",
    "events",
)


@dataclass(frozen=True, slots=True)
class View:
    period: str = DEFAULT_PERIOD
    start: dt.date | None = None
    end: dt.date | None = None
    interval: str | None = None
    comparison: str = "off"
    compare_start: dt.date | None = None
    compare_end: dt.date | None = None
    match_day_of_week: bool = False
    filters: tuple[Filter, ...] = ()
    metric: str = "visitors"  # the top stat the chart plots
    tabs: tuple[tuple[str, str], ...] = ()  # (card, tab) of the cards not on their first tab

    @classmethod
    def from_query(cls, params: Mapping[str, Sequence[str]]) -> View:
        """The view a query string names; `InvalidInput` (400) says which part is wrong."""

        def one(name: str) -> str | None:
            values = params.get(name) or ()
            if len(values) > 1:
                raise InvalidInput(f"{name} is given more than once")
            value = values[0] if values else None
            if value is not None and len(value) > MAX_PARAM_LENGTH:
                raise InvalidInput(f"{name} is too long")
            return value or None

        period = one("period") or DEFAULT_PERIOD
        if period not in PERIODS:
            raise InvalidInput(f"unknown period {period!r}; use one of {', '.join(PERIODS)}")
        comparison = one("comparison") or "off"
        if comparison not in COMPARISONS:
            raise InvalidInput(f"unknown comparison {comparison!r}")
        metric = one("metric") or "visitors"
        if metric not in METRICS:
            raise InvalidInput(f"unknown metric {metric!r}; use one of {', '.join(METRICS)}")
        return cls(
            period=period,
            start=parse_date(one("from"), "from"),
            end=parse_date(one("to"), "to"),
            interval=one("interval"),
            comparison=comparison,
            compare_start=parse_date(one("compare_from"), "compare_from"),
            compare_end=parse_date(one("compare_to"), "compare_to"),
            match_day_of_week=one("match_day_of_week") in ("true", "1", "on"),
            filters=combine(parse_filter(raw) for raw in params.get("f") or ()),
            metric=metric,
            tabs=parse_tabs(params.get("t") or ()),
        )

    def resolve(
        self, timezone: str, now: dt.datetime, first_day: dt.date | None = None
    ) -> tuple[Period, Period | None]:
        """The period shown and the one it is compared with (None when comparison is off)."""
        period = resolve_period(
            self.period,
            timezone,
            now,
            start_date=self.start,
            end_date=self.end,
            first_day=first_day,
            interval=self.interval,
        )
        compared = compare(
            period,
            self.comparison,
            match_day_of_week=self.match_day_of_week,
            start_date=self.compare_start,
            end_date=self.compare_end,
        )
        return period, compared

    def query(self) -> list[tuple[str, str]]:
        pairs: list[tuple[str, str]] = [("period", self.period)]
        if self.period == "custom" and self.start and self.end:
            pairs += [("from", self.start.isoformat()), ("to", self.end.isoformat())]
        if self.interval:
            pairs.append(("interval", self.interval))
        if self.comparison != "off":
            pairs.append(("comparison", self.comparison))
            if self.comparison == "custom" and self.compare_start and self.compare_end:
                pairs.append(("compare_from", self.compare_start.isoformat()))
                pairs.append(("compare_to", self.compare_end.isoformat()))
            if self.match_day_of_week:
                pairs.append(("match_day_of_week", "true"))
        if self.metric != "visitors":
            pairs.append(("metric", self.metric))
        for item in self.filters:
            pairs.append(("f", f"{item.dimension}:{item.operator}:{join_values(item.values)}"))
        pairs += [("t", f"{card}:{tab}") for card, tab in self.tabs]
        return pairs

    def tab_for(self, card: str) -> str | None:
        """The tab the URL names for `card` (None: its first)."""
        return dict(self.tabs).get(card)

    def with_tab(self, card: str, tab: str) -> View:
        """This view with `card` on `tab`."""
        kept = [(name, chosen) for name, chosen in self.tabs if name != card]
        return replace(self, tabs=tuple(sorted([*kept, (card, tab)])))

    def link(self, **changes: Any) -> str:
        """This view's query string (`?…`), with `changes` made."""
        view = replace(self, **changes) if changes else self
        return "?" + urlencode(view.query())

    def range_link(self, period: str) -> str:
        """Another range; the interval is the new range's own."""
        return self.link(period=period, start=None, end=None, interval=None)

    def custom_link(self, start: dt.date, end: dt.date) -> str:
        return self.link(period="custom", start=start, end=end, interval=None)

    def with_filter(self, item: Filter) -> str:
        """The link that adds `item` (replacing a filter on the same dimension)."""
        kept = tuple(f for f in self.filters if f.dimension != item.dimension)
        return self.link(filters=(*kept, item))

    def adding(self, item: Filter) -> str:
        """The link that adds `item` to the filters (AND; values of the same dimension and
        operator become alternatives)."""
        return self.link(filters=combine((*self.filters, item)))

    def without_filter(self, index: int) -> str:
        return self.link(filters=self.filters[:index] + self.filters[index + 1 :])


MAX_TABS = 20
CARD_NAME = re.compile(r"[a-z][a-z_-]{0,39}")


def parse_tabs(raw: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """`card:tab` pairs, one per card (whether the card has that tab is the card's to say)."""
    if len(raw) > MAX_TABS:
        raise InvalidInput(f"at most {MAX_TABS} tabs")
    pairs = [item.partition(":")[::2] for item in raw]
    for card, tab in pairs:
        if not CARD_NAME.fullmatch(card) or not tab or len(tab) > 300:
            raise InvalidInput("a tab is t=card:tab")
    if len({card for card, _ in pairs}) != len(pairs):
        raise InvalidInput("a card's tab is given more than once")
    return tuple(sorted(pairs))


def parse_filter(raw: str) -> Filter:
    """`dimension:operator:value`, where a custom property's dimension is `prop:<name>`."""
    head, _, rest = raw.partition(":")
    if head == PROP_PREFIX.rstrip(":"):
        name, _, rest = rest.partition(":")
        head = PROP_PREFIX + name
    operator, sep, value = rest.partition(":")
    if not sep:
        raise InvalidInput(f"a filter is dimension:operator:value, not {raw[:80]!r}")
    dimension(head)
    return Filter(head, operator, split_values(value))


# Several values of one filter (alternatives) are joined by `|`; a `|` or `\` inside a value is
# escaped with `\`.
def join_values(values: Sequence[str]) -> str:
    return "|".join(v.replace("\\", "\\\\").replace("|", "\\|") for v in values)


def split_values(text: str) -> tuple[str, ...]:
    """The values `join_values` joined: `a|b` is a or b, `a\\|b` the one value a|b."""
    values: list[str] = []
    current: list[str] = []
    chars = iter(text)
    for char in chars:
        if char == "\\":
            escaped = next(chars, None)
            if escaped is None:
                raise InvalidInput("a filter value ends in a lone backslash")
            current.append(escaped)
        elif char == "|":
            values.append("".join(current))
            current = []
        else:
            current.append(char)
    values.append("".join(current))
    return tuple(values)


OPERATOR_LABELS = {
    "is": "is",
    "is_not": "is not",
    "contains": "contains",
    "contains_not": "does not contain",
    "matches": "matches",
    "matches_not": "does not match",
}


def view_in(text: str) -> View:
    """The view a query string sent in a form names (`?period=7d&f=…`)."""
    if len(text) > MAX_PARAM_LENGTH * 2:
        raise InvalidInput("the view is too long")
    return View.from_query(parse_qs(text.removeprefix("?")))


def filter_label(item: Filter) -> str:
    """How a filter chip reads: "Page is /pricing or /about"."""
    values = " or ".join(value or "(none)" for value in item.values)
    return f"{dimension(item.dimension).label} {OPERATOR_LABELS[item.operator]} {values}"
