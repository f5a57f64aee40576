"""Dashboard cards: each card is a named query turned into numbers ready to render.

Templates only format what these functions return. A card is one htmx partial; the card list
and its order live in `CARDS`. A breakdown card has tabs (`Tab`: one dimension each, the first
is the default), each its own partial (`?tab=`), and a Details list of the same tab with a
search, a sort and pages (`details`). `app.dashboard.export` is the
dashboard as spreadsheets.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import anyio.to_thread

from app.analytics.buffer.referrers import DIRECT
from app.analytics.clickhouse.gateway import Gateway, Row
from app.analytics.queries import engagement, filters, performance, stats
from app.analytics.queries.filters import Filter
from app.analytics.queries.periods import Period
from app.dashboard import countries
from app.dashboard.view import METRICS, View
from app.errors import InvalidInput, NotFound
from app.models import Site

CHART_WIDTH = 720
CHART_HEIGHT = 180
VITAL_LABELS = {
    "lcp": "LCP",
    "inp": "INP",
    "cls": "CLS",
    "ttfb": "TTFB",
    "fcp": "FCP",
    "page_load": "Page load",
}


DETAILS_PAGE_SIZE = 100


@dataclass(frozen=True)
class Tab:
    """One tab of a breakdown card: a dimension, how its values read, and how a search in
    Details finds values by their label too (the codes of countries by name)."""

    name: str  # in the URL: `?tab=<name>`
    title: str
    dimension: str
    blank: str = "(unknown)"
    label: Callable[[str], str] = str
    decoration: Callable[[str], str] = lambda _value: ""  # shown before the label, aria-hidden
    also_matching: Callable[[str], tuple[str, ...]] = lambda _text: ()
    needs_geo_database: bool = False  # regions and cities come only from a .mmdb
    engagement: bool = False  # rows show time on page and scroll depth (pages only)
    event: str | None = None  # only the events of this name (an outbound click's `url`)

    def scope(self, scope: stats.Scope) -> stats.Scope:
        """The view, restricted to this tab's events when it has an event name."""
        if self.event is None:
            return scope
        return replace(scope, filters=(*scope.filters, Filter("event", "is", (self.event,))))


def property_tab(name: str) -> Tab:
    """The tab of one custom property (`?tab=<name>`); 400 for a name no event could carry."""
    tab = Tab(name, name, filters.PROP_PREFIX + name, blank="(none)")
    filters.dimension(tab.dimension)
    return tab


@dataclass(frozen=True)
class Options:
    """What a card request asks for besides the scope: the metric the chart plots, the tab."""

    metric: str = "visitors"
    tab: Tab | None = None


@dataclass(frozen=True)
class Card:
    name: str
    title: str
    template: str
    build: Callable[[Gateway, stats.Scope, Options], dict[str, Any]]
    tabs: tuple[Tab, ...] = ()
    by_property: bool = False  # a tab per custom property the view's events carry

    def tab(self, name: str | None) -> Tab | None:
        """The tab `?tab=` names (the first when none); `InvalidInput` (400) for another."""
        if self.by_property:
            return property_tab(name) if name else None
        if not self.tabs:
            if name:
                raise InvalidInput(f"the {self.name} card has no tabs")
            return None
        if not name:
            return self.tabs[0]
        for tab in self.tabs:
            if tab.name == name:
                return tab
        names = ", ".join(tab.name for tab in self.tabs)
        raise InvalidInput(f"unknown tab {name!r} of the {self.name} card; use one of {names}")


TOP_STATS = dict(
    zip(
        METRICS,
        (
            "Unique visitors",
            "Total visits",
            "Total pageviews",
            "Views per visit",
            "Bounce rate",
            "Visit duration",
            "Total events",
        ),
        strict=True,
    )
)
LOWER_IS_BETTER = {"bounce_rate"}
POINTS = {"bounce_rate"}  # a change in percentage points, not a percentage of the old value


def overview_card(
    gateway: Gateway, scope: stats.Scope, options: Options = Options()
) -> dict[str, Any]:
    """Top-line numbers with their change, and the chart of one of them: one card."""
    metric = options.metric
    summary = stats.summary(gateway, scope)
    totals = with_views_per_visit(summary.totals)
    before = with_views_per_visit(summary.compared) if summary.compared is not None else None
    tiles = [
        {
            "metric": name,
            "label": label,
            "value": totals[name],
            "before": None if before is None else before[name],
            "change": None if before is None else change(name, totals[name], before[name]),
        }
        for name, label in TOP_STATS.items()
    ]
    series = [with_views_per_visit(point) for point in summary.series]
    compared = (
        None
        if summary.compared_series is None
        else [with_views_per_visit(point) for point in summary.compared_series]
    )
    return {
        "stats": totals,
        "tiles": tiles,
        "conversions": _conversions(gateway, scope, totals),
        "metric": metric,
        "chart": bar_chart(series, scope.period, metric, compared),
    }


def _conversions(
    gateway: Gateway, scope: stats.Scope, totals: dict[str, Any]
) -> dict[str, Any] | None:
    """On a view filtered by a goal: its visitors are the converted ones and its events the
    conversions; the rate is over the visitors of the same view without the goal filter."""
    if not scope.goal_filters:
        return None
    everyone = stats.overview(gateway, scope.without_goals())["visitors"]
    rate = round(100 * totals["visitors"] / everyone, 1) if everyone else 0.0
    return {"visitors": totals["visitors"], "events": totals["events"], "rate": rate}


def goals_card(
    gateway: Gateway, scope: stats.Scope, _options: Options = Options()
) -> dict[str, Any]:
    """The site's goals with their conversions, rates and revenue, in the view."""
    rows = stats.conversions(gateway, scope, scope.goals)
    top = max((row["visitors"] for row in rows), default=0) or 1
    return {
        "goals": [{**row, "share": round(100 * row["visitors"] / top)} for row in rows],
        "revenue": any(row["revenue"] for row in rows),
        "configured": bool(scope.goals),
    }


def with_views_per_visit(numbers: dict[str, Any]) -> dict[str, Any]:
    visits = numbers["visits"]
    return {**numbers, "views_per_visit": round(numbers["pageviews"] / visits, 2) if visits else 0}


def change(metric: str, now: float, before: float) -> dict[str, Any]:
    """How a number moved: its size (percent, or points for a rate), direction and whether
    that is good news (a bounce rate going up is not)."""
    difference = now - before
    direction = "up" if difference > 0 else "down" if difference < 0 else "flat"
    if metric in POINTS:
        size: str | None = f"{abs(round(difference))} pp"
    elif before:
        size = f"{abs(round(100 * difference / before))}%"
    else:
        size = None if not now else "new"
    good = None if direction == "flat" else (direction == "down") == (metric in LOWER_IS_BETTER)
    return {"direction": direction, "size": size, "good": good}


def country_label(code: str) -> str:
    """A country by name with its ISO code: "Germany (DE)"."""
    name = countries.country_name(code)
    return name if name == code else f"{name} ({code.upper()})"


def breakdown_card(
    gateway: Gateway, scope: stats.Scope, options: Options = Options()
) -> dict[str, Any]:
    """The top rows of the chosen tab, with each row's share of the largest one."""
    assert options.tab is not None
    rows = stats.breakdown(gateway, options.tab.scope(scope), options.tab.dimension)
    return _with_engagement(gateway, scope, options.tab, _rows(options.tab, rows))


def _with_engagement(
    gateway: Gateway, scope: stats.Scope, tab: Tab, shown: dict[str, Any]
) -> dict[str, Any]:
    """A pages tab's rows with each page's time on page (seconds) and scroll depth (%)."""
    if not tab.engagement:
        return shown
    found = engagement.by_page(gateway, scope, [row["value"] for row in shown["rows"]])
    for row in shown["rows"]:
        page = found.get(row["value"], engagement.NONE)
        row["time_on_page"], row["scroll_depth"] = page.time_on_page, page.scroll_depth
    return {**shown, "engagement": True}


def properties_card(
    gateway: Gateway, scope: stats.Scope, options: Options = Options()
) -> dict[str, Any]:
    """The values of one custom property (the one chosen, or the most used) and the names of
    the others to choose from."""
    names = stats.property_names(gateway, scope)
    tab = options.tab or (property_tab(names[0]) if names else None)
    if tab is None:
        return {"names": [], "rows": []}
    rows = stats.breakdown(gateway, scope, tab.dimension)
    return {**_rows(tab, rows), "names": names}


def _rows(tab: Tab, rows: list[Row]) -> dict[str, Any]:
    top = max((int(row["visitors"]) for row in rows), default=0) or 1
    return {
        "rows": [
            {
                "label": tab.label(row["value"]) if row["value"] else tab.blank,
                "decoration": tab.decoration(row["value"]),
                "visitors": int(row["visitors"]),
                "pageviews": int(row["pageviews"]),
                "share": round(100 * int(row["visitors"]) / top),
                "value": row["value"],
            }
            for row in rows
        ],
        "tab": tab.name,
        "dimension": tab.dimension,
        "dimension_label": filters.dimension(tab.dimension).label,
    }


@dataclass(frozen=True)
class DetailsQuery:
    """What a Details list shows: a search (`q`), a sort column and a page (from 1)."""

    search: str = ""
    sort: str = "visitors"
    page: int = 1


def details(gateway: Gateway, scope: stats.Scope, tab: Tab, asked: DetailsQuery) -> dict[str, Any]:
    """One page of a tab's full list (blocking): rows, the total and the page numbers."""
    search = stats.Search(
        text=asked.search,
        values=tab.also_matching(asked.search),
        sort=asked.sort,
        offset=(asked.page - 1) * DETAILS_PAGE_SIZE,
        size=DETAILS_PAGE_SIZE,
    )
    found = stats.breakdown_page(gateway, tab.scope(scope), tab.dimension, search)
    pages = max(1, -(-found.total // DETAILS_PAGE_SIZE))
    return {
        **_with_engagement(gateway, scope, tab, _rows(tab, found.rows)),
        "total": found.total,
        "page": asked.page,
        "pages": pages,
        "first": search.offset + 1 if found.rows else 0,
        "last": search.offset + len(found.rows),
    }


def vitals_card(
    gateway: Gateway, scope: stats.Scope, _options: Options = Options()
) -> dict[str, Any]:
    raw = stats.web_vitals(gateway, scope)
    vitals = [
        {
            "name": VITAL_LABELS[name],
            "value": format_vital(raw[name], performance.UNITS[name]),
            "rating": performance.rating(name, raw[name]),
        }
        for name in performance.THRESHOLDS
    ]
    return {"vitals": vitals, "samples": raw["samples"]}


def format_vital(value: float | None, unit: str) -> str:
    if value is None:
        return "–"
    if unit == "ms":
        return f"{value / 1000:.2f} s" if value >= 1000 else f"{value:.0f} ms"
    return f"{value:.3f}"


def bar_chart(
    series: list[dict[str, Any]],
    period: Period,
    metric: str = "visitors",
    compared: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Bar geometry for an inline SVG (one metric per bucket), computed here, not in templates.

    The comparison period is a line over the bars, bucket by bucket (its n-th bucket over the
    n-th bar); buckets that have not ended yet are marked incomplete.
    """
    values = [point[metric] for point in series]
    before = [point[metric] for point in compared or []][: len(series)]
    peak = max([*values, *before], default=0)
    scale = nice_ceiling(peak) if isinstance(peak, int) else float(nice_ceiling(int(peak) + 1))
    slot = CHART_WIDTH / max(len(series), 1)
    incomplete = period.incomplete_from()

    def height(value: float) -> float:
        return 0 if not scale else round(CHART_HEIGHT * value / scale, 1)

    bars = []
    for index, point in enumerate(series):
        tall = height(point[metric])
        bars.append(
            {
                "x": round(index * slot + slot * 0.15, 1),
                "y": round(CHART_HEIGHT - tall, 1),
                "width": round(slot * 0.7, 1),
                "height": tall,
                "label": bucket_label(point["bucket"], period),
                "value": point[metric],
                "before": before[index] if index < len(before) else None,
                "incomplete": incomplete is not None and point["bucket"] >= incomplete,
            }
        )
    line = " ".join(
        f"{round(index * slot + slot / 2, 1)},{round(CHART_HEIGHT - height(value), 1)}"
        for index, value in enumerate(before)
    )
    step = max(1, len(bars) // 6)
    ticks = [{"x": bar["x"] + bar["width"] / 2, "label": bar["label"]} for bar in bars[::step]]
    return {
        "bars": bars,
        "ticks": ticks,
        "line": line,
        "max": scale,
        "width": CHART_WIDTH,
        "height": CHART_HEIGHT,
        "empty": peak == 0,
        "metric": metric,
        "interval": period.interval,
    }


def nice_ceiling(value: int) -> int:
    """The smallest round axis maximum (1, 1.5, 2, 2.5, 3, 4, 5, 6, 8 × 10ⁿ) at or above `value`."""
    if value <= 0:
        return 0
    magnitude: int = 10 ** (len(str(value)) - 1)
    for tenths in (10, 15, 20, 25, 30, 40, 50, 60, 80):
        if tenths * magnitude >= value * 10:
            return max(1, tenths * magnitude // 10)
    return 10 * magnitude


def bucket_label(bucket: dt.datetime, period: Period) -> str:
    match period.interval:
        case "minute":
            return bucket.strftime("%H:%M")
        case "hour":
            return bucket.strftime("%H:00")
        case "month":
            return bucket.strftime("%b %Y")
    return bucket.strftime("%b %-d")


def _utm(name: str, title: str) -> Tab:
    return Tab(name, title, name, blank="(none)")


BREAKDOWN = "partials/breakdown.html"
OUTBOUND_LINK = "Outbound Link: Click"  # the tracker's event names (`app/static/js/script.js`)
FILE_DOWNLOAD = "File Download"
CARDS: dict[str, Card] = {
    card.name: card
    for card in (
        Card("overview", "Overview", "partials/overview.html", overview_card),
        Card(
            "pages",
            "Pages",
            BREAKDOWN,
            breakdown_card,
            (
                Tab("pages", "Top pages", "page", engagement=True),
                Tab("entry", "Entry pages", "entry_page"),
                Tab("exit", "Exit pages", "exit_page"),
            ),
        ),
        Card(
            "sources",
            "Sources",
            BREAKDOWN,
            breakdown_card,
            (
                Tab("sources", "Sources", "source", blank=DIRECT),
                Tab("channels", "Channels", "channel"),
                Tab("referrers", "Referrer URLs", "referrer", blank="(none)"),
                _utm("utm_medium", "UTM medium"),
                _utm("utm_source", "UTM source"),
                _utm("utm_campaign", "UTM campaign"),
                _utm("utm_content", "UTM content"),
                _utm("utm_term", "UTM term"),
            ),
        ),
        Card(
            "locations",
            "Locations",
            BREAKDOWN,
            breakdown_card,
            (
                Tab(
                    "countries",
                    "Countries",
                    "country",
                    label=country_label,
                    decoration=countries.flag,
                    also_matching=countries.codes_named,
                ),
                Tab("regions", "Regions", "region", needs_geo_database=True),
                Tab("cities", "Cities", "city", needs_geo_database=True),
            ),
        ),
        Card(
            "devices",
            "Devices",
            BREAKDOWN,
            breakdown_card,
            (
                Tab("browsers", "Browsers", "browser"),
                Tab("browser_versions", "Browser versions", "browser_version"),
                Tab("os", "Operating systems", "os"),
                Tab("os_versions", "OS versions", "os_version"),
                Tab("devices", "Device type", "device"),
                Tab("screen_sizes", "Screen size", "screen_size"),
            ),
        ),
        Card("vitals", "Web performance (p75)", "partials/vitals.html", vitals_card),
        Card("goals", "Goals", "partials/goals.html", goals_card),
        Card(
            "properties",
            "Properties",
            "partials/properties.html",
            properties_card,
            by_property=True,
        ),
        Card(
            "links",
            "Outbound links",
            BREAKDOWN,
            breakdown_card,
            (
                Tab("outbound", "Outbound links", "prop:url", event=OUTBOUND_LINK),
                Tab("downloads", "File downloads", "prop:url", event=FILE_DOWNLOAD),
            ),
        ),
    )
}


def current_visitors_card(
    gateway: Gateway, scope: stats.Scope, _options: Options = Options()
) -> dict[str, Any]:
    """The header's live count: every filter and range aside, who is on the site now."""
    return {"current": stats.current_visitors(gateway, scope.site_id, scope.period.now)}


# Not one of the grid's cards: the header reloads it every few seconds.
CURRENT_VISITORS = Card(
    "current-visitors", "Current visitors", "partials/current_visitors.html", current_visitors_card
)


def card_named(name: str) -> Card:
    """The card a URL names; `NotFound` (404) for any other name."""
    card = CURRENT_VISITORS if name == CURRENT_VISITORS.name else CARDS.get(name)
    if card is None:
        raise NotFound(f"no card named {name}")
    return card


MAX_SUGGESTIONS = 20


def filter_suggestions(
    gateway: Gateway, site: Site, view: View, dimension: str, typed: str
) -> list[str]:
    """Values of `dimension` in the view (the most visitors first), containing `typed`; for a
    goal, the site's goals (blocking: one query)."""
    if dimension == "goal":
        return [goal for goal in site.goals if typed.lower() in goal.lower()][:MAX_SUGGESTIONS]
    scope = site_scope(gateway, site, view)
    if typed:
        scope = replace(scope, filters=(*scope.filters, Filter(dimension, "contains", (typed,))))
    rows = stats.breakdown(gateway, scope, dimension, limit=MAX_SUGGESTIONS)
    return [str(row["value"]) for row in rows if row["value"] != ""]


def site_period(site: Site, view: View) -> Period:
    """The period a dashboard URL names, in the site's time zone, as of now (for its label;
    "all time" starts where `site_scope` finds the site's first event)."""
    return view.resolve(site.timezone, dt.datetime.now(dt.UTC))[0]


def site_scope(gateway: Gateway, site: Site, view: View) -> stats.Scope:
    """What a dashboard request reads: the site, over the view's range, filters and
    comparison (blocking: "all time" asks ClickHouse when the site's first event was)."""
    assert site.id is not None
    first_day = stats.first_day(gateway, site.id) if view.period == "all" else None
    period, compared = view.resolve(site.timezone, dt.datetime.now(dt.UTC), first_day)
    return stats.Scope(site.id, period, view.filters, compared, tuple(site.goals))


async def build_card(
    card: Card, gateway: Gateway, site: Site, view: View, tab: Tab | None = None
) -> tuple[stats.Scope, dict[str, Any]]:
    """Run a card's (blocking) queries in a worker thread."""

    def build() -> tuple[stats.Scope, dict[str, Any]]:
        scope = site_scope(gateway, site, view)
        return scope, card.build(gateway, scope, Options(view.metric, tab))

    return await anyio.to_thread.run_sync(build)


async def build_details(
    gateway: Gateway, site: Site, view: View, tab: Tab, asked: DetailsQuery
) -> tuple[stats.Scope, dict[str, Any]]:
    """A Details page's numbers, in a worker thread."""

    def build() -> tuple[stats.Scope, dict[str, Any]]:
        scope = site_scope(gateway, site, view)
        return scope, details(gateway, scope, tab, asked)

    return await anyio.to_thread.run_sync(build)


# CSV header → summary metric. Visitors of a day are unique that day: rows do not add up.
