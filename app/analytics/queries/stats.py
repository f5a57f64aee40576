"""Named dashboard queries, composed from metric fragments written once.

Every query starts from a `Scope` (site + time range; it cannot be built without a site) and
binds all values as `{name:Type}` parameters. The dashboard reads the rollups defined in
`migrations/clickhouse/` (site totals per local hour, breakdowns and vitals per local day),
never the raw events, so a card costs the same whether a site had a thousand events or ten
million. Rollups hold local wall-clock times, so ranges are bound as local times too.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from app.analytics.clickhouse.gateway import Gateway, Row
from app.analytics.queries.filters import (
    EXIT_PAGE,
    PAGE_GOAL_PREFIX,
    PROP_PREFIX,
    Clause,
    Dimension,
    Filter,
    Where,
    dimension,
    goal_pattern,
    where,
)
from app.analytics.queries.periods import Interval, Period
from app.errors import InvalidInput

MAX_LIMIT = 1000
# ClickHouse compiles an expression or an aggregation to machine code (LLVM) the third time it
# sees it, inside the query that sees it: 20-50 ms, once per process and query shape, for code
# that saves nothing on the few thousand rows a card reads.
NO_JIT = "compile_expressions = 0, compile_aggregate_expressions = 0"
VITALS = ("lcp", "inp", "cls", "ttfb", "fcp")


@dataclass(frozen=True, slots=True)
class Metrics:
    """The base metric fragments of one source of rows; the others are built from these."""

    visitors: str
    pageviews: str
    events: str
    visits: str
    bounces: str
    seconds: str

    def bounce_rate(self) -> str:
        # A visit that started before the range can lose its bounce inside it: clamp to 0..100.
        return (
            f"if({self.visits} = 0, 0, "
            f"least(100, greatest(0, round(100 * {self.bounces} / {self.visits}))))"
        )

    def visit_duration(self) -> str:
        return f"if({self.visits} = 0, 0, round({self.seconds} / {self.visits}))"

    def visitors_of_visits(self) -> str:
        # A visit counts where it starts, a visitor wherever their events are, so a visit that
        # began before the range (or the sketch past its exact range) could show more visitors
        # than visits; the dashboard shows at most as many visitors as visits.
        return f"least({self.visitors}, {self.visits})"


# Over the rollups' columns. Visitors are exact up to 16,384 per period (but for rare 32-bit
# hash collisions) and within 0.2% beyond (clickhouse/0002_exact_visitors.sql).
ROLLUP = Metrics(
    visitors="uniqCombinedMerge(18)(unique_visitors)",
    pageviews="sum(pageviews)",
    events="sum(events)",
    visits="sum(session_starts)",
    bounces="sum(session_bounces)",
    seconds="sum(session_seconds)",
)


def raw_metrics(events: str) -> Metrics:
    """Over raw event rows of the kept visits; `events` picks the events event metrics count
    (`filters.Where.events`). The same sketch as the rollups, so the numbers agree."""
    return Metrics(
        visitors=f"uniqCombinedIf(18)(visitor_id, {events})",
        pageviews=f"countIf(name = 'pageview' AND {events})",
        events=f"countIf({events})",
        visits="sum(session_start)",
        bounces="sum(session_bounce)",
        seconds="sum(session_seconds)",
    )


@dataclass(frozen=True, slots=True)
class Scope:
    """Site + time range (+ filters and the period compared with); the start of every WHERE.

    It cannot be built without a site, and its period always has a start and an end."""

    site_id: int
    period: Period
    filters: tuple[Clause, ...] = ()
    comparison: Period | None = None
    goals: tuple[str, ...] = ()  # the site's goals (`app.sites.goals`), for `conversions`

    def __post_init__(self) -> None:
        if not self.site_id:
            raise ValueError("a query scope needs a site")
        if self.period.end <= self.period.start:
            raise ValueError("a query scope needs a time range")

    @property
    def reads_raw(self) -> bool:
        """Filters, minute buckets and ranges that start or end inside an hour (the API's
        datetimes) need the raw events; the rest reads the rollups."""
        period = self.period
        return (
            bool(self.filters)
            or period.interval == "minute"
            or any(moment.minute or moment.second for moment in (period.start, period.end))
        )

    @property
    def whole_days(self) -> bool:
        """Buckets of whole local days over whole local days: the daily totals hold them."""
        period = self.period
        return period.interval in ("day", "week", "month") and all(
            moment.time() == dt.time() for moment in (period.local_start, period.local_end)
        )

    def over(self, period: Period) -> Scope:
        return Scope(self.site_id, period, self.filters)

    @property
    def goal_filters(self) -> tuple[Filter, ...]:
        """The view's top-level goal filters (what a conversion rate is of)."""
        return tuple(f for f in self.filters if isinstance(f, Filter) and f.dimension == "goal")

    def without_goals(self) -> Scope:
        """The same view without its goal filters and comparison: a conversion rate's base."""
        kept = tuple(f for f in self.filters if f not in self.goal_filters)
        return replace(self, filters=kept, comparison=None)

    def params(self, **extra: Any) -> dict[str, Any]:
        period = self.period
        slack = dt.timedelta(days=1)  # a local time is within 14 hours of its UTC time
        return {
            "site_id": self.site_id,
            "local_start": _wall_seconds(period.local_start),
            "local_end": _wall_seconds(period.local_end),
            "utc_from": int((period.start - slack).timestamp()),
            "utc_to": int((period.end + slack).timestamp()),
            "first_day": period.first_day.isoformat(),
            "last_day": period.last_day.isoformat(),
            **extra,
        }

    def where(self) -> Where:
        """The filters' conditions over the raw events of this scope (`RAW`)."""
        return where(self.filters, RAW)


_HOURS = (
    "site_id = {site_id:UInt32} AND hour >= {local_start:DateTime('UTC')} "
    "AND hour < {local_end:DateTime('UTC')}"
)
# The rows of a daily rollup in the scope's local days.
DAYS = "site_id = {site_id:UInt32} AND day >= {first_day:Date} AND day <= {last_day:Date}"
LOCAL_TIME = "(timestamp + toIntervalMinute(utc_offset))"
# Raw events of the scope's local range; the UTC bounds let the primary key skip other days.
RAW = (
    "site_id = {site_id:UInt32} AND timestamp >= {utc_from:DateTime('UTC')} "
    "AND timestamp < {utc_to:DateTime('UTC')} "
    f"AND {LOCAL_TIME} >= {{local_start:DateTime('UTC')}} "
    f"AND {LOCAL_TIME} < {{local_end:DateTime('UTC')}}"
)


def bucket_of(interval: Interval, time: str) -> str:
    """The start of the bucket a local time falls in; weeks and months clipped to the range."""
    match interval:
        case "minute":
            return f"toStartOfMinute({time})"
        case "hour":
            return f"toStartOfHour({time})"
        case "day":
            return f"toDate({time})"
        case "week":
            return f"greatest(toMonday({time}), {{first_day:Date}})"
    return f"greatest(toStartOfMonth({time}), {{first_day:Date}})"


OVERVIEW_METRICS = ("visitors", "visits", "pageviews", "bounce_rate", "visit_duration", "events")


@dataclass(frozen=True, slots=True)
class Summary:
    """The overview's numbers for the whole period and per bucket (the chart, the export),
    and the same for the comparison period when there is one."""

    totals: dict[str, int]
    series: list[Row]  # zero-filled, one per bucket of the period (local wall time)
    compared: dict[str, int] | None = None  # up to the same point of the comparison period
    compared_series: list[Row] | None = None


def summary(gateway: Gateway, scope: Scope) -> Summary:
    """Totals and the series of the period and, when the scope has one, its comparison."""
    totals, series = _summary(gateway, scope)
    if scope.comparison is None:
        return Summary(totals, series)
    compared = scope.over(scope.comparison)
    compared_totals, compared_series = _summary(gateway, compared)
    if scope.comparison.elapsed() != scope.comparison:  # today so far vs yesterday so far
        compared_totals = _summary(gateway, scope.over(scope.comparison.elapsed()))[0]
    return Summary(totals, series, compared_totals, compared_series)


def _summary(gateway: Gateway, scope: Scope) -> tuple[dict[str, int], list[Row]]:
    """One query: `GROUP BY ROLLUP` adds the row for the whole period (its bucket is NULL),
    merged from the buckets' sketches rather than read again. In each, visitors are at most
    the visits (`Metrics.visitors_of_visits`). Unfiltered, a chart of whole days reads the daily
    totals (one sketch a day to merge, not 24), any other the hourly ones."""
    if scope.reads_raw:
        filtered = scope.where()
        metrics = raw_metrics(filtered.events)
        bucket = bucket_of(scope.period.interval, LOCAL_TIME)
        source, condition, params = "events", f"{RAW} AND {filtered.visits}", filtered.params
    elif scope.whole_days:
        metrics, bucket = ROLLUP, bucket_of(scope.period.interval, "day")
        source, condition, params = "totals_daily", DAYS, {}
    else:
        metrics, bucket = ROLLUP, bucket_of(scope.period.interval, "hour")
        source, condition, params = "totals_hourly", _HOURS, {}
    rows = gateway.query(
        "summary_filtered" if scope.reads_raw else f"summary_{source}",
        f"SELECT {bucket} AS bucket, {metrics.visitors_of_visits()} AS visitors, "
        f"{metrics.visits} AS visits, {metrics.pageviews} AS pageviews, "
        f"{metrics.bounce_rate()} AS bounce_rate, {metrics.visit_duration()} AS visit_duration, "
        f"{metrics.events} AS events FROM {source} WHERE {condition} "
        f"GROUP BY ROLLUP(bucket) ORDER BY bucket SETTINGS group_by_use_nulls = 1, {NO_JIT}",
        scope.params(**params),
    )
    total = next((row for row in rows if row["bucket"] is None), None)
    found = {naive(row["bucket"]): row for row in rows if row["bucket"] is not None}
    totals = {name: int(total[name]) if total else 0 for name in OVERVIEW_METRICS}
    series = [
        {
            "bucket": start,
            **{name: int(found[start][name]) if start in found else 0 for name in OVERVIEW_METRICS},
        }
        for start in scope.period.buckets()
    ]
    return totals, series


def overview(gateway: Gateway, scope: Scope) -> dict[str, int]:
    """Top-line numbers: visitors, visits, pageviews, bounce rate, visit duration, events."""
    return _summary(gateway, scope)[0]


SORTS = ("visitors", "pageviews")
MAX_SEARCH_LENGTH = 200


@dataclass(frozen=True, slots=True)
class Search:
    """Which rows of a breakdown to list: values containing `text` (case-insensitively) or
    equal to one of `values` (say the codes of the countries whose names contain it), sorted
    by a metric of `SORTS`, `size` rows from `offset`."""

    text: str = ""
    values: tuple[str, ...] = ()
    sort: str = "visitors"
    offset: int = 0
    size: int = 10

    def __post_init__(self) -> None:
        if self.sort not in SORTS:
            raise InvalidInput(f"unknown sort {self.sort!r}; use one of {', '.join(SORTS)}")
        if not 1 <= self.size <= MAX_LIMIT:
            raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT}")
        if self.offset < 0:
            raise InvalidInput("the offset cannot be negative")
        if len(self.text) > MAX_SEARCH_LENGTH:
            raise InvalidInput(f"a search is at most {MAX_SEARCH_LENGTH} characters")


@dataclass(frozen=True, slots=True)
class BreakdownPage:
    rows: list[Row]
    total: int  # rows that match the search, on every page


def breakdown(gateway: Gateway, scope: Scope, name: str, limit: int = 10) -> list[Row]:
    """Visitors (and pageviews) per value of one dimension, most visitors first (a card)."""
    return _listed(gateway, scope, name, Search(size=limit), counted=False)


def breakdown_page(gateway: Gateway, scope: Scope, name: str, search: Search) -> BreakdownPage:
    """One page of a breakdown and how many rows match in all (a Details list)."""
    rows = _listed(gateway, scope, name, search, counted=True)
    total = int(rows[0]["total"]) if rows else 0
    kept = [{key: row[key] for key in ("value", "visitors", "pageviews")} for row in rows]
    return BreakdownPage(kept, total)


def _listed(
    gateway: Gateway, scope: Scope, name: str, search: Search, *, counted: bool
) -> list[Row]:
    """The rows of a breakdown that `search` asks for, with their `total` when `counted`.

    Unfiltered, a dimension with a rollup reads it; filtered, or without one, the raw events
    of the kept visits: visitors with a counted event (`filters`), and for pages, entry and
    exit pages the page of those events, the first page of a visit or its last. The search
    applies to the grouped values, so every kind of dimension searches the same way.
    """
    spec = dimension(name)
    if spec.name == "goal":
        raise InvalidInput("goals are counted by `conversions`, not broken down by event name")
    query, grouped, params = _grouped(scope, spec)
    params.update(limit=search.size, offset=search.offset)
    matching = "1"
    if search.text or search.values:
        params.update(search=search.text, search_values=list(search.values))
        matching = (
            "(positionCaseInsensitiveUTF8(value, {search:String}) > 0 "
            "OR has({search_values:Array(String)}, value))"
        )
    total = ", count() OVER () AS total" if counted else ""
    return gateway.query(
        f"{query}_details" if counted else query,
        f"SELECT value, visitors, pageviews{total} FROM ({grouped}) "
        f"WHERE {matching} ORDER BY {search.sort} DESC, value "
        f"LIMIT {{limit:UInt32}} OFFSET {{offset:UInt32}} SETTINGS {NO_JIT}",
        params,
    )


def _rollup_rows(spec: Dimension) -> str:
    """The `breakdowns_daily` rows of `spec` in the scope's days, each with the dimension's
    `value` (computed from the stored one, as a channel from its inputs)."""
    rows = f"breakdowns_daily WHERE {DAYS} AND dimension = {{dimension:String}}"
    if spec.rollup_value == "value":
        return rows
    return f"(SELECT {spec.rollup_value} AS value, unique_visitors, pageviews FROM {rows})"


def _grouped(scope: Scope, spec: Dimension) -> tuple[str, str, dict[str, Any]]:
    """The query name, a SELECT of (value, visitors, pageviews) per value, and its params."""
    is_prop = spec.name.startswith(PROP_PREFIX)
    if spec.rollup is not None and not scope.filters:
        return (
            "breakdown_prop" if is_prop else f"breakdown_{spec.name}",
            f"SELECT value, {ROLLUP.visitors} AS visitors, {ROLLUP.pageviews} AS pageviews "
            f"FROM {_rollup_rows(spec)} GROUP BY value",
            scope.params(dimension=spec.rollup, **spec.params),
        )
    filtered = scope.where()
    params = scope.params(**{**filtered.params, **spec.params})
    condition = f"{RAW} AND {filtered.visits}"
    if spec.kind == "exit":
        rows_sql = (
            f"SELECT {EXIT_PAGE} AS value, any(visitor_id) AS visitor_id, "
            f"countIf(name = 'pageview' AND {filtered.events}) AS views FROM events "
            f"WHERE {condition} AND name = 'pageview' GROUP BY session_id"
        )
        return (
            "breakdown_exit_page",
            "SELECT value, uniqCombined(18)(visitor_id) AS visitors, sum(views) AS pageviews "
            f"FROM ({rows_sql}) GROUP BY value",
            params,
        )
    counted = filtered.events
    if spec.kind == "entry":
        condition += " AND session_start = 1"
        counted = "1"
    else:  # both metrics count matching events only: one pass, no subquery for their visits
        condition = f"{RAW} AND {filtered.matching}"
        if spec.name == "page" and counted == "1":
            counted = "name = 'pageview'"
    column = spec.column
    if is_prop:
        column, params["prop"] = "props[{prop:String}]", spec.label
        condition += " AND mapContains(props, {prop:String})"
    return (
        "breakdown_prop_raw" if is_prop else f"breakdown_{spec.name}_raw",
        f"SELECT {column} AS value, uniqCombinedIf(18)(visitor_id, {counted}) AS visitors, "
        f"countIf(name = 'pageview' AND {filtered.events}) AS pageviews FROM events "
        f"WHERE {condition} GROUP BY value HAVING visitors > 0",
        params,
    )


TABLE_METRICS = (
    "visitors",
    "visits",
    "pageviews",
    "events",
    "bounce_rate",
    "visit_duration",
    "views_per_visit",
    "total_revenue",
    "average_revenue",
)
VISIT_METRICS = {"visits", "bounce_rate", "visit_duration", "views_per_visit"}
TIME = "time"  # the bucket of the scope's interval, as a dimension of `table`
# Per visit of the scope (kept by its filters): what it adds up to, and its entry and exit page.
_VISITS = (
    "SELECT session_id, sum(session_start) AS starts, sum(session_bounce) AS bounces, "
    "sum(session_seconds) AS seconds, anyIf(pathname, session_start = 1) AS entry_page, "
    "countIf(session_start = 1) AS entries, argMaxIf(pathname, timestamp, name = 'pageview') "
    "AS exit_page, countIf(name = 'pageview') AS views FROM events WHERE {condition} "
    "GROUP BY session_id"
)
# Over the visits (`_VISITS`) joined to their rows of one value (`_table_source`).
TABLE = Metrics(
    visitors="uniqCombined(18)(visitor_id)",
    pageviews="sum(row_pageviews)",
    events="sum(row_events)",
    visits="sum(starts)",
    bounces="sum(bounces)",
    seconds="sum(seconds)",
)


@dataclass(frozen=True, slots=True)
class Table:
    rows: list[Row]  # `d0`, `d1`… (the dimensions' values) and `TABLE_METRICS`
    total_rows: int  # before `limit` and `offset`


def table(
    gateway: Gateway,
    scope: Scope,
    dimensions: tuple[str, ...],
    *,
    metrics: tuple[str, ...] = TABLE_METRICS,
    order: tuple[tuple[str, bool], ...] = (),
    limit: int = MAX_LIMIT,
    offset: int = 0,
) -> Table:
    """Every metric per combination of values of `dimensions` (filter dimensions or `TIME`),
    as the Stats API breaks down: the raw events of the kept visits.

    Visit dimensions and time are plain groups of events, as `summary` counts them: a visit
    counts where it begins, and a bucket of time shows at most as many visitors as visits. A
    row of an event dimension (page, event, property) counts the visitors, page views and
    events of its matching events, and the visits that had one, whole: its bounce rate and
    duration are those of a filter on that value (`filters`); entry and exit pages are each
    visit's first and last page. `order` is (column, descending) over `TABLE_METRICS` and
    `dN`; visitors descending by default, the dimensions ascending after it.

    Only `metrics` are sure to be in the rows: without a visit metric no row is joined to its
    visits, and unfiltered, one dimension with a rollup is read from the rollup (`breakdown`).
    """
    if not dimensions or len(dimensions) > 4:
        raise InvalidInput("a breakdown takes 1 to 4 dimensions")
    if not 1 <= limit <= MAX_LIMIT or not 0 <= offset <= 1_000_000:
        raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT}, offset at most 1000000")
    keys = [f"d{index}" for index in range(len(dimensions))]
    sort = [*order] or [("visitors", True)]
    sort += [(key, False) for key in keys if key not in {column for column, _ in sort}]
    if any(column not in {*TABLE_METRICS, *keys} for column, _ in sort):
        raise InvalidInput("a breakdown is ordered by its metrics or dimensions")
    ordering = ", ".join(f"{column} {'DESC' if down else 'ASC'}" for column, down in sort)
    spec = dimension(dimensions[0]) if dimensions[0] != TIME else None
    if (
        len(dimensions) == 1
        and spec is not None
        and spec.rollup is not None
        and spec.kind != "entry"  # the API's entry pages count their visits' page views
        and not scope.reads_raw
        and set(metrics) | {column for column, _ in sort} <= {"visitors", "pageviews", "d0"}
    ):
        params = scope.params(limit=limit, offset=offset, dimension=spec.rollup, **spec.params)
        sql = (
            f"SELECT value AS d0, {ROLLUP.visitors} AS visitors, {ROLLUP.pageviews} AS pageviews, "
            f"count() OVER () AS total_rows FROM {_rollup_rows(spec)} GROUP BY value"
        )
    else:
        filtered = scope.where()
        params = scope.params(limit=limit, offset=offset, **filtered.params)
        sql = _table_select(scope, dimensions, filtered, params, VISIT_METRICS & set(metrics))
    rows = gateway.query(
        "stats_table",
        f"{sql} ORDER BY {ordering} "
        f"LIMIT {{limit:UInt32}} OFFSET {{offset:UInt32}} SETTINGS {NO_JIT}",
        params,
    )
    total = int(rows[0]["total_rows"]) if rows else 0
    if not rows and offset:
        total = table(gateway, scope, dimensions, order=order, limit=1).total_rows
    return Table(rows, total)


def _table_select(
    scope: Scope,
    dimensions: tuple[str, ...],
    filtered: Where,
    params: dict[str, Any],
    visit_metrics: set[str],
) -> str:
    """A `table` query up to its ORDER BY, over raw events."""
    kept = condition = f"{RAW} AND {filtered.visits}"
    per_row: list[str] = []  # expressions over an event row, as `dN`
    per_visit: list[str] = []  # columns of `_VISITS`, as `dN`
    counted, required = filtered.events, []
    for index, name in enumerate(dimensions):
        alias = f"d{index}"
        if name == TIME:
            per_row.append(f"{bucket_of(scope.period.interval, LOCAL_TIME)} AS {alias}")
            continue
        spec = dimension(name)
        if spec.kind in ("entry", "exit"):
            per_visit.append(f"{spec.kind}_page AS {alias}")
            required.append("entries > 0" if spec.kind == "entry" else "views > 0")
            continue
        column = spec.column
        params.update(spec.params)  # what a computed column binds (the channel's lists)
        if name.startswith(PROP_PREFIX):
            params[f"prop{index}"] = spec.label
            column = f"props[{{prop{index}:String}}]"
            condition += f" AND mapContains(props, {{prop{index}:String}})"
        if name == "page" and counted == "1":
            counted = "name = 'pageview'"  # a page's visitors are those who viewed it
        per_row.append(f"{column} AS {alias}")
    keys = ", ".join(f"d{index}" for index in range(len(dimensions)))
    whole = bool(per_visit) or (
        bool(visit_metrics) and any(n != TIME and dimension(n).kind == "event" for n in dimensions)
    )
    if not whole:
        metrics = replace(
            raw_metrics(filtered.events), visitors=f"uniqCombinedIf(18)(visitor_id, {counted})"
        )
        visitors = metrics.visitors_of_visits() if TIME in dimensions else metrics.visitors
        revenue = _revenue(filtered.events)
        return (
            f"SELECT {', '.join(per_row)}, {_table_metrics(metrics, visitors, revenue)} "
            f"FROM events WHERE {condition} GROUP BY {keys} HAVING countIf({counted}) > 0"
        )
    row_keys = [expression.rsplit(" AS ", 1)[1] for expression in per_row]
    rows_sql = (
        f"SELECT {''.join(f'{e}, ' for e in per_row)}session_id, any(visitor_id) AS visitor_id, "
        f"countIf({counted}) AS counted, countIf(name = 'pageview' AND {filtered.events}) "
        f"AS row_pageviews, countIf({filtered.events}) AS row_events, "
        f"{_revenue(filtered.events).columns('row_')} FROM events "
        f"WHERE {condition} GROUP BY {''.join(f'{k}, ' for k in row_keys)}session_id "
        "HAVING counted > 0"
    )
    summed = Revenue("sum(row_revenue)", "sum(row_paid)", "anyIf(row_currency, row_paid > 0)")
    return (
        f"SELECT {', '.join([*row_keys, *per_visit])}, "
        f"{_table_metrics(TABLE, TABLE.visitors, summed)} "
        f"FROM ({rows_sql}) AS m INNER JOIN ({_VISITS.format(condition=kept)}) AS v "
        f"USING session_id WHERE {' AND '.join(required) or '1'} GROUP BY {keys}"
    )


def _table_metrics(metrics: Metrics, visitors: str, revenue: Revenue) -> str:
    return (
        f"{visitors} AS visitors, {metrics.visits} AS visits, {metrics.pageviews} AS pageviews, "
        f"{metrics.events} AS events, {metrics.bounce_rate()} AS bounce_rate, "
        f"{metrics.visit_duration()} AS visit_duration, "
        f"if(visits = 0, 0, round(pageviews / visits, 2)) AS views_per_visit, "
        f"{revenue.columns()}, {revenue.average()} AS average_revenue, "
        "count() OVER () AS total_rows"
    )


@dataclass(frozen=True, slots=True)
class Revenue:
    """The revenue fragments: its sum, how many events carried any, their currency."""

    total: str
    paid: str
    currency: str

    def columns(self, prefix: str = "") -> str:
        name = "total_revenue" if not prefix else f"{prefix}revenue"
        return (
            f"{self.total} AS {name}, {self.paid} AS {prefix}paid, "
            f"{self.currency} AS {prefix}currency"
        )

    def average(self) -> str:
        """Per event that carried revenue, as Plausible averages it."""
        return f"if({self.paid} = 0, 0, {self.total} / {self.paid})"


def _revenue(events: str) -> Revenue:
    """Over raw event rows: the revenue of the events that `events` counts."""
    return Revenue(
        f"sumIf(revenue, {events})",
        f"countIf(({events}) AND revenue > 0)",
        f"anyIf(revenue_currency, ({events}) AND revenue > 0)",
    )


def revenue(gateway: Gateway, scope: Scope) -> Row:
    """The view's `total_revenue`, `average_revenue` and `currency` (one pass over the raw
    events of its visits)."""
    filtered = scope.where()
    fragments = _revenue(filtered.events)
    return gateway.query(
        "revenue",
        f"SELECT {fragments.columns()}, {fragments.average()} AS average_revenue FROM events "
        f"WHERE {RAW} AND {filtered.visits} SETTINGS {NO_JIT}",
        scope.params(**filtered.params),
    )[0]


def web_vitals(gateway: Gateway, scope: Scope) -> dict[str, float | None]:
    """p75 of each Core Web Vital and TTFB, plus how many page loads reported them."""
    columns = ", ".join(f"quantileTDigestMerge(0.75)({name}) AS {name}" for name in VITALS)
    row = gateway.query(
        "web_vitals",
        f"SELECT sum(samples) AS samples, {columns} FROM vitals_daily WHERE {DAYS} "
        f"SETTINGS {NO_JIT}",
        scope.params(),
    )[0]
    result: dict[str, float | None] = {"samples": int(row["samples"])}
    for name in VITALS:
        value = row[name]
        result[name] = None if value is None or value != value else float(value)  # NaN → None
    return result


def naive(value: dt.date | dt.datetime | str) -> dt.datetime:
    """A bucket as naive local time; a running instance's internal port sends ISO strings."""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None)
    return dt.datetime(value.year, value.month, value.day)


def _wall_seconds(local: dt.datetime) -> int:
    """A naive local time as the seconds the rollups store for it (wall clock read as UTC)."""
    return int(local.replace(tzinfo=dt.UTC).timestamp())


# Each site of a many-site query over its own local hours: `{ids}`, `{starts}` and `{ends}`
# bound as arrays, `OWN` the position of a row's site in them.
OWN = "indexOf({ids:Array(UInt32)}, site_id)"
SITE_START = f"toDateTime(arrayElement({{starts:Array(UInt32)}}, {OWN}), 'UTC')"
SITE_END = f"toDateTime(arrayElement({{ends:Array(UInt32)}}, {OWN}), 'UTC')"


def _site_bounds(periods: dict[int, Period]) -> dict[str, list[int]]:
    if not all(periods):
        raise ValueError("a visitor count needs a site")
    return {
        "ids": list(periods),
        "starts": [_wall_seconds(p.local_start) for p in periods.values()],
        "ends": [_wall_seconds(p.local_end) for p in periods.values()],
    }


def recent_visitors(gateway: Gateway, periods: dict[int, Period]) -> dict[int, dict[str, Any]]:
    """Per site (id → its "last 24 hours" period): visitors in the period, in the 24 hours
    before it, and per hour of the period (the sites list's sparkline). One query for every
    site, each over its own local hours, from the hourly rollup."""
    bounds = _site_bounds(periods)
    if not periods:
        return {}
    day = 24 * 3600
    rows = gateway.query(
        "recent_visitors",
        f"SELECT site_id, hour >= {SITE_START} AS current, hour, {ROLLUP.visitors} AS visitors "
        "FROM totals_hourly WHERE site_id IN {ids:Array(UInt32)} "
        f"AND hour >= {SITE_START} - {day} AND hour < {SITE_END} "
        f"GROUP BY ROLLUP(site_id, current, hour) SETTINGS group_by_use_nulls = 1, {NO_JIT}",
        bounds,
    )
    found: dict[int, dict[str, Any]] = {
        site_id: {"visitors": 0, "previous": 0, "series": dict.fromkeys(p.buckets(), 0)}
        for site_id, p in periods.items()
    }
    for row in rows:
        if row["site_id"] is None or row["current"] is None:
            continue
        numbers, visitors = found[int(row["site_id"])], int(row["visitors"])
        if row["hour"] is None:
            numbers["visitors" if row["current"] else "previous"] = visitors
        elif row["current"]:
            numbers["series"][naive(row["hour"])] = visitors
    for numbers in found.values():
        numbers["series"] = list(numbers["series"].values())
    return found


def site_visitors(gateway: Gateway, periods: dict[int, Period]) -> dict[int, int]:
    """Per site (id → a period): its visitors in that period, one query for every site over
    the hourly rollup (the sites list's 30 days)."""
    bounds = _site_bounds(periods)
    if not periods:
        return {}
    rows = gateway.query(
        "site_visitors",
        f"SELECT site_id, {ROLLUP.visitors} AS visitors FROM totals_hourly "
        f"WHERE site_id IN {{ids:Array(UInt32)}} AND hour >= {SITE_START} AND hour < {SITE_END} "
        f"GROUP BY site_id SETTINGS {NO_JIT}",
        bounds,
    )
    found = dict.fromkeys(periods, 0)
    found.update({int(row["site_id"]): int(row["visitors"]) for row in rows})
    return found


def conversions(gateway: Gateway, scope: Scope, goals: Sequence[str]) -> list[Row]:
    """Per goal (in the order given): the visitors who completed it, how often it was
    completed, its conversion rate (% of the scope's visitors) and the revenue its events
    carried (sum, and average per converting event that carried any, and its currency). One
    query over the raw events of the scope's visits; every goal's definition is bound
    (`filters.where`). Unfiltered over whole days, the rollups answer most of it
    (`_conversions_of_rollups`)."""
    if not goals:
        return []
    if not scope.reads_raw and scope.period.local_start.hour == scope.period.local_end.hour == 0:
        return _conversions_of_rollups(gateway, scope, goals)
    filtered = scope.where()
    params = scope.params(**filtered.params)
    columns = [f"uniqCombinedIf(18)(visitor_id, {filtered.events}) AS all_visitors"]
    columns += _goal_columns(goals, filtered.events, params)
    row = gateway.query(  # every column counts matching events only: `Where.matching`
        "conversions",
        f"SELECT {', '.join(columns)} FROM events WHERE {RAW} AND {filtered.matching} "
        f"SETTINGS {NO_JIT}",
        params,
    )[0]
    return _conversion_rows(goals, int(row["all_visitors"]), row)


def _goal_columns(goals: Sequence[str], counted: str, params: dict[str, Any]) -> list[str]:
    """Per goal `n`: `visitors_n`, `events_n`, `revenue_n` and `paid_n` over the rows where
    `counted` holds; binds each goal's definition into `params`."""
    columns = []
    for index, goal in enumerate(goals):
        completed = where([Filter("goal", "is", (goal,))], RAW, prefix=f"g{index}_")
        params.update(completed.params)
        hit = f"({counted}) AND {completed.events}"
        columns += [
            f"uniqCombinedIf(18)(visitor_id, {hit}) AS visitors_{index}",
            f"countIf({hit}) AS events_{index}",
            f"sumIf(revenue, {hit}) AS revenue_{index}",
            f"countIf({hit} AND revenue > 0) AS paid_{index}",
            f"anyIf(revenue_currency, {hit} AND revenue > 0) AS currency_{index}",
        ]
    return columns


def _conversions_of_rollups(gateway: Gateway, scope: Scope, goals: Sequence[str]) -> list[Row]:
    """`conversions` of a whole-day unfiltered scope: all visitors from `totals_daily`, a page
    goal's visitors and views from the `page` rows of `breakdowns_daily` (the same sketches, so
    the same numbers), and from the raw events only the rows that can still count: custom
    events of the goals' names (the sort key finds them in each day) and page views that
    carry revenue (the revenue of page goals)."""
    params = scope.params(names=[goal for goal in goals if not goal.startswith(PAGE_GOAL_PREFIX)])
    columns = _goal_columns(goals, "1", params)
    row = gateway.query(
        "conversions_events",
        f"SELECT {', '.join(columns)} FROM events WHERE {RAW} AND (name IN {{names:Array(String)}} "
        f"OR (name = 'pageview' AND revenue != 0)) SETTINGS {NO_JIT}",
        params,
    )[0]
    everyone = gateway.query(
        "conversions_visitors",
        f"SELECT {ROLLUP.visitors} AS visitors FROM totals_daily WHERE {DAYS} SETTINGS {NO_JIT}",
        scope.params(),
    )[0]["visitors"]
    pages = [(index, goal) for index, goal in enumerate(goals) if goal.startswith(PAGE_GOAL_PREFIX)]
    if pages:
        params = scope.params(dimension="page")
        columns, matches = [], []
        for index, goal in pages:
            params[f"p{index}"] = goal_pattern(goal.removeprefix(PAGE_GOAL_PREFIX))
            match = f"match(value, {{p{index}:String}})"
            matches.append(match)
            columns += [
                f"uniqCombinedMergeIf(18)(unique_visitors, {match}) AS visitors_{index}",
                f"sumIf(pageviews, {match}) AS events_{index}",
            ]
        row |= gateway.query(
            "conversions_pages",
            f"SELECT {', '.join(columns)} FROM breakdowns_daily WHERE {DAYS} "
            f"AND dimension = {{dimension:String}} AND ({' OR '.join(matches)}) "
            f"SETTINGS {NO_JIT}",
            params,
        )[0]
    return _conversion_rows(goals, int(everyone), row)


def _conversion_rows(goals: Sequence[str], everyone: int, row: Row) -> list[Row]:
    result = []
    for index, goal in enumerate(goals):
        visitors, paid = int(row[f"visitors_{index}"]), int(row[f"paid_{index}"])
        revenue = Decimal(row[f"revenue_{index}"] or 0)
        result.append(
            {
                "goal": goal,
                "visitors": visitors,
                "events": int(row[f"events_{index}"]),
                "conversion_rate": round(100 * visitors / everyone, 1) if everyone else 0.0,
                "revenue": revenue,
                "average_revenue": (revenue / paid).quantize(Decimal("0.01")) if paid else None,
                "currency": row[f"currency_{index}"],
            }
        )
    return result


MAX_PROPERTIES = 30


def property_names(gateway: Gateway, scope: Scope) -> list[str]:
    """The custom properties the view's events carry, the most visitors first (at most
    `MAX_PROPERTIES`): what a Properties card offers to break down. Unfiltered, from their
    `prop:` rows of the daily breakdowns; filtered, from the matching events in one pass."""
    if not scope.filters:
        rows = gateway.query(
            "property_names",
            f"SELECT substring(dimension, {len(PROP_PREFIX) + 1}) AS name, "
            f"{ROLLUP.visitors} AS visitors FROM breakdowns_daily WHERE {DAYS} "
            f"AND startsWith(dimension, {{prefix:String}}) GROUP BY dimension "
            f"ORDER BY visitors DESC, name LIMIT {MAX_PROPERTIES} SETTINGS {NO_JIT}",
            scope.params(prefix=PROP_PREFIX),
        )
        return [str(row["name"]) for row in rows]
    filtered = scope.where()
    rows = gateway.query(
        "property_names_raw",
        # `prop_name`: an alias `name` would hide the event name from an event filter
        "SELECT prop_name, uniqCombined(18)(visitor_id) AS visitors FROM events "
        f"ARRAY JOIN mapKeys(props) AS prop_name WHERE {RAW} AND {filtered.matching} "
        "GROUP BY prop_name ORDER BY visitors DESC, prop_name "
        f"LIMIT {MAX_PROPERTIES} SETTINGS {NO_JIT}",
        scope.params(**filtered.params),
    )
    return [str(row["prop_name"]) for row in rows]


CURRENT_MINUTES = 5  # a visitor with an event in the last five minutes is on the site now


def current_visitors(gateway: Gateway, site_id: int, now: dt.datetime) -> int:
    """Distinct visitors with an event in the last `CURRENT_MINUTES` (the header's count).

    The range is the newest minutes of one or two days of the sort key: a few granules."""
    if not site_id:
        raise ValueError("a visitor count needs a site")
    rows = gateway.query(
        "current_visitors",
        "SELECT uniqExact(visitor_id) AS visitors FROM events "
        "WHERE site_id = {site_id:UInt32} AND timestamp >= {since:DateTime('UTC')}",
        {"site_id": site_id, "since": int(now.timestamp()) - CURRENT_MINUTES * 60},
    )
    return int(rows[0]["visitors"])


def first_day(gateway: Gateway, site_id: int) -> dt.date | None:
    """The UTC day of the site's first stored event ("all time" starts there), or None.

    The sort key starts with (site_id, day): the primary index finds it without a scan."""
    if not site_id:
        raise ValueError("a first-day check needs a site")
    rows = gateway.query(
        "first_day",
        "SELECT toDate(timestamp) AS day FROM events WHERE site_id = {site_id:UInt32} "
        "ORDER BY site_id, toDate(timestamp) LIMIT 1",
        {"site_id": site_id},
    )
    return naive(rows[0]["day"]).date() if rows else None


def has_events(gateway: Gateway, site_id: int) -> bool:
    """Whether the site has stored any event yet (the install check): one row read at most.

    It reads the raw `events` table, whose sort key starts with `site_id`: the primary index
    finds the site's first row without a scan, whatever the site's size.
    """
    if not site_id:
        raise ValueError("an event check needs a site")
    rows = gateway.query(
        "has_events",
        "SELECT 1 AS found FROM events WHERE site_id = {site_id:UInt32} LIMIT 1",
        {"site_id": site_id},
    )
    return bool(rows)
