"""The Stats API v2 (`POST /api/v2/query`): Plausible's request shape, on the dashboard's engine.

`QueryRequest` is the body as sent; `parse_query` checks it and translates Plausible's names
(`event:page`, `visit:source`, `time:day`…) into the dashboard's (`app.analytics.queries`):
anything it does not know is `InvalidInput` (400) naming the field. `run_query` answers it with
the same named queries the dashboard reads (`stats.summary` for totals and time series,
`stats.table` for breakdowns), so for the same site, range and filters both give the same
numbers. Ranges are resolved in the site's time zone by `periods.resolve_period`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from msgspec import Struct

from app.analytics.clickhouse.gateway import Gateway, Row
from app.analytics.queries import engagement, stats
from app.analytics.queries.filters import (
    MAX_FILTERS,
    MAX_VALUES,
    OPERATORS,
    PROP_PREFIX,
    Clause,
    Combination,
    Filter,
    dimension,
)
from app.analytics.queries.periods import (
    EARLIEST,
    INTERVALS,
    Period,
    custom_label,
    default_interval,
    resolve_period,
)
from app.dashboard import countries, view
from app.dashboard.cards import with_views_per_visit
from app.errors import InvalidInput
from app.models import Site

MAX_LIMIT = stats.MAX_LIMIT
DEFAULT_LIMIT = 1000  # rows per page when `pagination` does not say
LATEST = dt.date(2100, 12, 31)
DIRECT = "Direct / None"  # Plausible's name for visits without a source

# Conversion rates and revenue are of the goals a query filters by (or breaks down by).
GOAL_METRICS = ("conversion_rate", "group_conversion_rate", "total_revenue", "average_revenue")
REVENUE_METRICS = ("total_revenue", "average_revenue")
GOAL = "event:goal"
# What a breakdown by goal counts (`stats.conversions`): a goal has no visits or page views.
GOAL_ROW_METRICS = ("visitors", "events", *GOAL_METRICS)
# The engagement beacons' time on page and scroll depth (`queries.engagement`: aggregates and
# `event:page` breakdowns).
ENGAGEMENT_METRICS = ("time_on_page", "scroll_depth")
# The dashboard's top stats, each row's share of all visitors, the goals' and the engagement
# metrics; `NOT_YET` need data the engine does not read yet.
METRICS = (*view.METRICS, "percentage", *GOAL_METRICS, *ENGAGEMENT_METRICS)
NOT_YET = ("exit_rate",)
CURRENCY_SIGNS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "INR": "₹", "CHF": "CHF "}
COUNTRY_NAME = "visit:country_name"
# Plausible's dimension → the dashboard's filter dimension.
DIMENSIONS = {
    "event:page": "page",
    "event:hostname": "hostname",
    "event:name": "event",
    GOAL: "goal",
    "visit:source": "source",
    "visit:channel": "channel",
    "visit:referrer": "referrer",
    "visit:utm_medium": "utm_medium",
    "visit:utm_source": "utm_source",
    "visit:utm_campaign": "utm_campaign",
    "visit:utm_content": "utm_content",
    "visit:utm_term": "utm_term",
    "visit:country": "country",
    COUNTRY_NAME: "country",  # a breakdown's values named (`_dimension_value`)
    "visit:region": "region",
    "visit:city": "city",
    # Regions and cities are stored by their English names (`ingest.geo`), so Plausible's
    # `_name` dimensions are the same values.
    "visit:region_name": "region",
    "visit:city_name": "city",
    "visit:browser": "browser",
    "visit:browser_version": "browser_version",
    "visit:os": "os",
    "visit:os_version": "os_version",
    "visit:device": "device",
    "visit:screen": "screen_size",
    "visit:entry_page": "entry_page",
    "visit:exit_page": "exit_page",
}
PLAUSIBLE_PROP = "event:props:"
TIME_DIMENSIONS = {"time": None, **{f"time:{i}": i for i in INTERVALS if i != "minute"}}
DAY_RANGES = {
    "day": "today",
    "7d": "7d",
    "28d": "28d",
    "30d": "30d",
    "91d": "91d",
    "month": "month",
    "year": "year",
    "12mo": "12mo",
    "all": "all",
}
NAMED_RANGES = (*DAY_RANGES, "6mo")


class Include(Struct, forbid_unknown_fields=True):
    total_rows: bool = False
    time_labels: bool = False


class Pagination(Struct, forbid_unknown_fields=True):
    limit: int = DEFAULT_LIMIT
    offset: int = 0


class QueryRequest(Struct, forbid_unknown_fields=True):
    """A Stats API v2 query, as Plausible documents it (https://plausible.io/docs/stats-api)."""

    site_id: str
    metrics: list[str]
    date_range: str | list[str]
    dimensions: list[str] = []
    filters: list[Any] = []
    order_by: list[list[str]] | None = None
    include: Include | None = None
    pagination: Pagination | None = None


class QueryResult(Struct):
    """One row: the metrics in the order asked, then the dimensions' values in theirs."""

    # revenue: Plausible's money object; None: no revenue, or no engagement beacon
    metrics: list[int | float | dict[str, Any] | None]
    dimensions: list[str | int | None]


class QueryResponse(Struct):
    results: list[QueryResult]
    meta: dict[str, Any]
    query: dict[str, Any]


@dataclass(frozen=True)
class DateRange:
    """A named range (`NAMED_RANGES`), or inclusive dates, or datetimes (naive: site time)."""

    name: str | None = None
    first: dt.date | None = None
    last: dt.date | None = None
    start: dt.datetime | None = None
    end: dt.datetime | None = None


@dataclass(frozen=True)
class ApiQuery:
    site_id: str
    metrics: tuple[str, ...]
    date_range: DateRange
    dimensions: tuple[str, ...]  # as sent
    filters: tuple[Clause, ...]
    order_by: tuple[tuple[str, bool], ...]  # (metric or dimension as sent, descending)
    include: Include
    limit: int
    offset: int
    raw_filters: list[Any]

    @property
    def interval(self) -> str | None:
        """The time dimension's interval (None: the range's own, or no time dimension)."""
        return next((TIME_DIMENSIONS[d] for d in self.dimensions if d in TIME_DIMENSIONS), None)

    @property
    def time_dimension(self) -> str | None:
        return next((d for d in self.dimensions if d in TIME_DIMENSIONS), None)


def parse_query(body: QueryRequest) -> ApiQuery:
    """Check a request and name its parts the dashboard's way; `InvalidInput` names the field."""
    if not body.site_id:
        raise InvalidInput("site_id: give the site's domain")
    dimensions = _dimensions(body.dimensions)
    metrics = parse_metrics(body.metrics, dimensions)
    pagination = body.pagination or Pagination()
    if not 1 <= pagination.limit <= MAX_LIMIT:
        raise InvalidInput(f"pagination.limit must be between 1 and {MAX_LIMIT}")
    if not 0 <= pagination.offset <= 1_000_000:
        raise InvalidInput("pagination.offset must be between 0 and 1000000")
    if len(body.filters) > MAX_FILTERS:
        raise InvalidInput(f"filters: at most {MAX_FILTERS} filters at once")
    filters = tuple(_clause(item, f"filters[{i}]", 0) for i, item in enumerate(body.filters))
    _check_goal_metrics(metrics, dimensions, filters)
    return ApiQuery(
        site_id=body.site_id,
        metrics=metrics,
        date_range=parse_date_range(body.date_range),
        dimensions=dimensions,
        filters=filters,
        order_by=_order(body.order_by or [], metrics, dimensions),
        include=body.include or Include(),
        limit=pagination.limit,
        offset=pagination.offset,
        raw_filters=body.filters,
    )


def parse_metrics(names: list[str], dimensions: tuple[str, ...]) -> tuple[str, ...]:
    if not names:
        raise InvalidInput("metrics: name at least one metric")
    for name in names:
        if not isinstance(name, str) or name not in METRICS:
            if name in NOT_YET:
                raise InvalidInput(f"metrics: {name!r} is not supported yet")
            raise InvalidInput(f"metrics: unknown metric {name!r}; use {', '.join(METRICS)}")
    if len(set(names)) != len(names):
        raise InvalidInput("metrics: a metric is named twice")
    if "percentage" in names and not [d for d in dimensions if d not in TIME_DIMENSIONS]:
        raise InvalidInput("metrics: percentage needs a dimension other than time")
    if set(names) & set(ENGAGEMENT_METRICS) and dimensions not in ((), ("event:page",)):
        raise InvalidInput(
            "metrics: time_on_page and scroll_depth are answered as aggregates or by event:page"
        )
    return tuple(names)


def _check_goal_metrics(
    metrics: tuple[str, ...], dimensions: tuple[str, ...], filters: tuple[Clause, ...]
) -> None:
    """Goal metrics need goals to be of; a breakdown by goal has only what goals count."""
    if GOAL in dimensions:
        if len(dimensions) > 1:
            raise InvalidInput("dimensions: event:goal is not combined with other dimensions")
        other = next((m for m in metrics if m not in GOAL_ROW_METRICS), None)
        if other is not None:
            raise InvalidInput(
                f"metrics: {other} is not counted per goal; use {', '.join(GOAL_ROW_METRICS)}"
            )
        return
    by_goal = any(isinstance(f, Filter) and f.dimension == "goal" for f in filters)
    needing = next((m for m in metrics if m in GOAL_METRICS), None)
    if needing is not None and not by_goal:
        raise InvalidInput(
            f"metrics: {needing} needs an event:goal filter or the event:goal dimension"
        )


def _dimensions(names: list[str]) -> tuple[str, ...]:
    if len(names) > 4:
        raise InvalidInput("dimensions: at most 4")
    for name in names:
        if name not in TIME_DIMENSIONS:
            internal_dimension(name, "dimensions")
    if len(set(names)) != len(names):
        raise InvalidInput("dimensions: a dimension is named twice")
    if len([name for name in names if name in TIME_DIMENSIONS]) > 1:
        raise InvalidInput("dimensions: one time dimension at most")
    return tuple(names)


def internal_dimension(name: object, field: str) -> str:
    """The dashboard's name of Plausible's dimension `name` (not a time dimension)."""
    if not isinstance(name, str):
        raise InvalidInput(f"{field}: a dimension is a string")
    if name.startswith(PLAUSIBLE_PROP):
        internal = PROP_PREFIX + name.removeprefix(PLAUSIBLE_PROP)
        try:
            dimension(internal)
        except InvalidInput:
            raise InvalidInput(f"{field}: bad property name in {name[:100]!r}") from None
        return internal
    found = DIMENSIONS.get(name)
    if found is None:
        raise InvalidInput(f"{field}: unknown dimension {name[:100]!r}")
    return found


def _clause(item: object, field: str, depth: int) -> Clause:
    """One filter, `[operator, dimension, [values]]`, or `["and"|"or", [...]]`, `["not", f]`."""
    if not isinstance(item, list) or not item or not isinstance(item[0], str):
        raise InvalidInput(f"{field}: a filter is [operator, dimension, [values]]")
    operator = item[0]
    if depth > 4:
        raise InvalidInput(f"{field}: filters nest at most 5 levels deep")
    if operator in ("and", "or"):
        if len(item) != 2 or not isinstance(item[1], list) or not item[1]:
            raise InvalidInput(f"{field}: {operator} takes a list of filters")
        if len(item[1]) > MAX_FILTERS:
            raise InvalidInput(f"{field}: at most {MAX_FILTERS} filters at once")
        items = tuple(_clause(sub, f"{field}[1][{i}]", depth + 1) for i, sub in enumerate(item[1]))
        return _combination(operator, items, field)
    if operator == "not":
        if len(item) != 2:
            raise InvalidInput(f"{field}: not takes one filter")
        return _combination("not", (_clause(item[1], f"{field}[1]", depth + 1),), field)
    if operator not in OPERATORS:
        raise InvalidInput(
            f"{field}: unknown filter operator {operator[:50]!r}; use "
            f"{', '.join(OPERATORS)}, and, or, not"
        )
    if len(item) == 4:
        raise InvalidInput(f"{field}: filter modifiers are not supported")
    if len(item) != 3 or not isinstance(item[2], list):
        raise InvalidInput(f"{field}: a filter is [operator, dimension, [values]]")
    if item[1] in TIME_DIMENSIONS:
        raise InvalidInput(f"{field}: filter on time with date_range instead")
    if item[1] == COUNTRY_NAME:
        raise InvalidInput(f"{field}: filter on visit:country (ISO codes) instead")
    name = internal_dimension(item[1], f"{field}[1]")
    if any(isinstance(value, bool) for value in item[2]):
        raise InvalidInput(f"{field}: filter values are strings")
    values = tuple(str(value) if isinstance(value, int | float) else value for value in item[2])
    if any(not isinstance(value, str) for value in values):
        raise InvalidInput(f"{field}: filter values are strings")
    if name == "source":
        values = tuple("" if value == DIRECT else value for value in values)
    try:
        return Filter(name, operator, values)
    except InvalidInput as exc:
        raise InvalidInput(f"{field}: {exc}") from None


def _combination(operator: str, items: tuple[Clause, ...], field: str) -> Combination:
    try:
        return Combination(operator, items)  # type: ignore[arg-type]
    except InvalidInput as exc:
        raise InvalidInput(f"{field}: {exc}") from None


def _order(
    items: list[list[str]], metrics: tuple[str, ...], dimensions: tuple[str, ...]
) -> tuple[tuple[str, bool], ...]:
    result = []
    for index, item in enumerate(items):
        field = f"order_by[{index}]"
        if len(item) != 2 or item[1] not in ("asc", "desc"):
            raise InvalidInput(f"{field}: an order is [metric or dimension, asc|desc]")
        if item[0] not in metrics and item[0] not in dimensions:
            raise InvalidInput(f"{field}: order by one of the query's metrics or dimensions")
        if item[0] in ENGAGEMENT_METRICS:
            raise InvalidInput(f"{field}: time_on_page and scroll_depth cannot order a breakdown")
        result.append((item[0], item[1] == "desc"))
    return tuple(result)


def parse_date_range(value: str | list[str]) -> DateRange:
    """A named range, or `[start, end]` as ISO dates or datetimes (both the same kind)."""
    if isinstance(value, str):
        if value not in NAMED_RANGES:
            raise InvalidInput(
                f"date_range: unknown range {value[:50]!r}; use {', '.join(NAMED_RANGES)} "
                "or [start, end]"
            )
        return DateRange(name=value)
    if len(value) != 2:
        raise InvalidInput("date_range: give [start, end]")
    if all(len(part) == 10 for part in value):
        first, last = (_date(part) for part in value)
        if first > last:
            raise InvalidInput("date_range: the start is after the end")
        return DateRange(first=first, last=last)
    start, end = (_datetime(part) for part in value)
    if (start.tzinfo is None) != (end.tzinfo is None):
        raise InvalidInput("date_range: give both datetimes with an offset, or neither")
    if start > end:
        raise InvalidInput("date_range: the start is after the end")
    return DateRange(start=start, end=end)


def _date(value: str) -> dt.date:
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"date_range: {value[:40]!r} is not a date (YYYY-MM-DD)") from None
    if not EARLIEST <= day <= LATEST:
        raise InvalidInput(f"date_range: dates lie between {EARLIEST} and {LATEST}")
    return day


def _datetime(value: str) -> dt.datetime:
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(
            f"date_range: {value[:40]!r} is not a date or an ISO 8601 datetime"
        ) from None
    if not EARLIEST <= moment.date() <= LATEST:
        raise InvalidInput(f"date_range: dates lie between {EARLIEST} and {LATEST}")
    return moment


def resolve(
    date_range: DateRange,
    timezone: str,
    now: dt.datetime,
    interval: str | None = None,
    first_day: dt.date | None = None,
) -> Period:
    """The period of a range in the site's time zone, bucketed by `interval` (or its own)."""
    if date_range.name == "6mo":
        today = now.astimezone(ZoneInfo(timezone)).date()
        month = today.year * 12 + today.month - 1 - 5
        first = dt.date(month // 12, month % 12 + 1, 1)
        return resolve_period(
            "custom", timezone, now, start_date=first, end_date=today, interval=interval
        )
    if date_range.name is not None:
        key = DAY_RANGES[date_range.name]
        return resolve_period(key, timezone, now, first_day=first_day, interval=interval)
    if date_range.first is not None:
        return resolve_period(
            "custom",
            timezone,
            now,
            start_date=date_range.first,
            end_date=date_range.last,
            interval=interval,
        )
    assert date_range.start is not None
    assert date_range.end is not None
    zone = ZoneInfo(timezone)
    start, end = (
        (moment if moment.tzinfo else moment.replace(tzinfo=zone)).astimezone(dt.UTC)
        for moment in (date_range.start, date_range.end)
    )
    end += dt.timedelta(seconds=1)  # the end is inclusive, to the second
    days = (end.astimezone(zone).date() - start.astimezone(zone).date()).days + 1
    first, last = start.astimezone(zone).date(), (end - dt.timedelta(seconds=1)).astimezone(zone)
    period = Period(
        key="custom",
        label=custom_label(first, last.date()),
        start=start,
        end=end,
        timezone=timezone,
        interval=default_interval("custom", days),
        now=now,
    )
    return period.with_interval(interval)


# --- answering -----------------------------------------------------------------------------


def run_query(gateway: Gateway, site: Site, query: ApiQuery, now: dt.datetime) -> QueryResponse:
    """The answer to a parsed query, in Plausible's response shape (blocking: ClickHouse)."""
    assert site.id is not None
    first_day = stats.first_day(gateway, site.id) if query.date_range.name == "all" else None
    period = resolve(query.date_range, site.timezone, now, query.interval, first_day)
    scope = stats.Scope(site.id, period, query.filters)
    others = [d for d in query.dimensions if d not in TIME_DIMENSIONS]
    goal_metrics = set(query.metrics) & set(GOAL_METRICS)
    if GOAL in query.dimensions:
        rows, total = _goal_rows(gateway, scope, site, query)
    elif not query.dimensions:
        rows, total = [with_views_per_visit(stats.overview(gateway, scope))], 1
        if goal_metrics:
            _add_rates(rows, stats.overview(gateway, scope.without_goals())["visitors"])
            rows[0].update(stats.revenue(gateway, scope))
        if set(query.metrics) & set(ENGAGEMENT_METRICS):
            _add_engagement(rows[0], engagement.overall(gateway, scope))
    elif not others and not goal_metrics:
        rows = _series(gateway, scope, query)
        total = len(rows)
        rows = rows[query.offset : query.offset + query.limit]
    else:
        rows, total = _breakdown(gateway, scope, query)
    results = [_result(row, query, period.interval) for row in rows]
    meta: dict[str, Any] = {}
    if query.include.time_labels:
        meta["time_labels"] = [_time_label(bucket, period) for bucket in period.buckets()]
    if query.include.total_rows:
        meta["total_rows"] = total
    return QueryResponse(results, meta, _echo(query, period))


def _series(gateway: Gateway, scope: stats.Scope, query: ApiQuery) -> list[Row]:
    """One row per bucket that had events, in time order unless the query orders otherwise."""
    rows = [
        {**with_views_per_visit(point), "time": point["bucket"]}
        for point in stats.summary(gateway, scope).series
        if point["events"]
    ]
    for name, descending in reversed(query.order_by):
        key = "time" if name in TIME_DIMENSIONS else name
        rows.sort(key=lambda row: row[key], reverse=descending)
    return rows


def _breakdown(gateway: Gateway, scope: stats.Scope, query: ApiQuery) -> tuple[list[Row], int]:
    names = tuple(
        stats.TIME if d in TIME_DIMENSIONS else internal_dimension(d, "dimensions")
        for d in query.dimensions
    )
    alias = {d: f"d{index}" for index, d in enumerate(query.dimensions)}
    order = []
    for name, descending in query.order_by:
        column = alias.get(name, name)
        if column == "percentage":
            column = "visitors"
        order.append((column, descending))
    if not order and query.time_dimension:
        order = [(alias[query.time_dimension], False)]
    needed = {"visitors", *query.metrics, *(column for column, _ in order)}
    found = stats.table(
        gateway,
        scope,
        names,
        metrics=tuple(sorted(needed & set(stats.TABLE_METRICS))),
        order=tuple(order),
        limit=query.limit,
        offset=query.offset,
    )
    rows = found.rows
    if set(query.metrics) & {"conversion_rate", "group_conversion_rate"}:
        _add_rates(rows, stats.overview(gateway, scope.without_goals())["visitors"])
        _add_group_rates(gateway, scope, names, rows)
    if "views_per_visit" in query.metrics:
        rows = [with_views_per_visit(row) for row in rows]
    if "percentage" in query.metrics:
        everyone = stats.overview(gateway, scope)["visitors"]
        for row in rows:
            row["percentage"] = round(100 * row["visitors"] / everyone, 1) if everyone else 0.0
    if set(query.metrics) & set(ENGAGEMENT_METRICS):  # by event:page alone (`_metrics`)
        pages = engagement.by_page(gateway, scope, [row["d0"] for row in rows])
        for row in rows:
            _add_engagement(row, pages.get(row["d0"], engagement.NONE))
    for row in rows:
        row["time"] = row.get(alias.get(query.time_dimension or "", ""))
        for index, name in enumerate(query.dimensions):
            row[f"d{index}"] = _dimension_value(name, row[f"d{index}"])
    return rows, found.total_rows


def _add_rates(rows: list[Row], everyone: int) -> None:
    """`conversion_rate` of each row: its converted visitors among all of the view's visitors
    without the goal filter (of the aggregate, that is also its `group_conversion_rate`)."""
    for row in rows:
        rate = round(100 * row["visitors"] / everyone, 1) if everyone else 0.0
        row["conversion_rate"] = row["group_conversion_rate"] = rate


def _add_group_rates(
    gateway: Gateway, scope: stats.Scope, names: tuple[str, ...], rows: list[Row]
) -> None:
    """`group_conversion_rate` of each row: among the visitors of its own values without the
    goal filter (one query for all rows, restricted to the rows' values, time aside)."""
    if not rows:
        return
    keys = [f"d{index}" for index in range(len(names))]
    restricted = tuple(
        _one_of(name, sorted({str(row[key]) for row in rows}))
        for name, key in zip(names, keys, strict=True)
        if name != stats.TIME
    )
    base = scope.without_goals()
    base = stats.Scope(base.site_id, base.period, (*base.filters, *restricted))
    found = stats.table(gateway, base, names, metrics=("visitors",)).rows
    visitors = {tuple(row[key] for key in keys): int(row["visitors"]) for row in found}
    for row in rows:
        everyone = visitors.get(tuple(row[key] for key in keys), 0)
        row["group_conversion_rate"] = (
            round(100 * row["visitors"] / everyone, 1) if everyone else 0.0
        )


def _one_of(name: str, values: list[str]) -> Clause:
    """`name` is one of `values` (any number of them: filters of at most `MAX_VALUES` each)."""
    size = MAX_VALUES
    chunks = [Filter(name, "is", tuple(values[i : i + size])) for i in range(0, len(values), size)]
    return chunks[0] if len(chunks) == 1 else Combination("or", tuple(chunks))


def _goal_rows(
    gateway: Gateway, scope: stats.Scope, site: Site, query: ApiQuery
) -> tuple[list[Row], int]:
    """One row per goal of the site that was completed (of those the query's goal filters
    name, when it has any), as the dashboard's Goals card counts them, most visitors first."""
    named = {value for f in scope.goal_filters if f.operator == "is" for value in f.values}
    goals = [goal for goal in site.goals if not named or goal in named]
    rows = [
        row for row in stats.conversions(gateway, scope.without_goals(), goals) if row["events"]
    ]
    for row in rows:
        row["d0"], row["total_revenue"] = row["goal"], row["revenue"]
        row["average_revenue"] = row["average_revenue"] or 0
        row["group_conversion_rate"] = row["conversion_rate"]
    rows.sort(key=lambda row: (-row["visitors"], row["d0"]))
    for name, descending in reversed(query.order_by):
        column = "d0" if name == GOAL else name
        rows.sort(key=lambda row: row[column], reverse=descending)
    return rows[query.offset : query.offset + query.limit], len(rows)


def _add_engagement(row: Row, found: engagement.Engagement) -> None:
    row["time_on_page"], row["scroll_depth"] = found.time_on_page, found.scroll_depth


def _dimension_value(name: str, value: Any) -> Any:
    """A value as Plausible names it: no source is "Direct / None", a country by name."""
    if name == "visit:source" and value == "":
        return DIRECT
    if name == COUNTRY_NAME:
        return countries.country_name(value) if value else value
    return value


def _result(row: Row, query: ApiQuery, interval: str) -> QueryResult:
    dimensions: list[str | int | None] = []
    for index, name in enumerate(query.dimensions):
        if name in TIME_DIMENSIONS:
            dimensions.append(_time_value(row["time"], interval))
        else:
            dimensions.append(row[f"d{index}"])
    values = [
        money(row[name], row.get("currency", "")) if name in REVENUE_METRICS else _number(row[name])
        for name in query.metrics
    ]
    return QueryResult(values, dimensions)


def _number(value: Any) -> int | float | None:
    return value if value is None or isinstance(value, float) else int(value)


def money(amount: Any, currency: str) -> dict[str, Any] | None:
    """Revenue as Plausible answers it: `{short, long, value, currency}`; None without any."""
    if not currency:
        return None
    value = round(float(amount), 2)
    sign = CURRENCY_SIGNS.get(currency, f"{currency} ")
    short = next(
        (f"{value / size:.1f}{unit}" for size, unit in ((1e9, "B"), (1e6, "M"), (1e3, "K"))
         if abs(value) >= size),
        f"{value:.1f}",
    )  # fmt: skip
    return {
        "short": sign + short,
        "long": f"{sign}{value:,.2f}",
        "value": value,
        "currency": currency,
    }


def _time_value(value: Any, interval: str) -> str:
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if isinstance(value, dt.datetime):
        if interval == "hour" or (value.hour or value.minute):
            return value.replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S")
        return value.date().isoformat()
    return str(value)


def _time_label(bucket: dt.datetime, period: Period) -> str:
    return _time_value(bucket, period.interval)


def _echo(query: ApiQuery, period: Period) -> dict[str, Any]:
    """The query as it was answered: the range resolved into datetimes in the site's zone."""
    zone = ZoneInfo(period.timezone)
    return {
        "site_id": query.site_id,
        "metrics": list(query.metrics),
        "date_range": [
            period.start.astimezone(zone).isoformat(),
            (period.end - dt.timedelta(seconds=1)).astimezone(zone).isoformat(),
        ],
        "dimensions": list(query.dimensions),
        "filters": query.raw_filters,
        "order_by": [[name, "desc" if down else "asc"] for name, down in query.order_by],
        "include": {
            "total_rows": query.include.total_rows,
            "time_labels": query.include.time_labels,
        },
        "pagination": {"limit": query.limit, "offset": query.offset},
    }
