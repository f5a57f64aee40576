"""The legacy Stats API v1 (`/api/v1/stats/…`), translated onto the v2 query and its engine.

Plausible's v1 parameters: `site_id`, `period` (`day`, `7d`, `30d`, `month`, `6mo`, `12mo`,
`custom`), `date` (the day the period ends on or lies in; `start,end` for `custom`), `metrics`
(comma-separated), `filters` (`event:page==/blog;visit:country==US|DE`, with `==`, `!=`, `~`
contains, `!~` does not contain; `|` separates alternatives, `;` joins filters), `property`,
`limit`, `page`, `interval` (`date`, `month`, also `hour`, `week`) and `compare`
(`previous_period`). Each answers in v1's shape from the same named queries as v2. Time on page
and scroll depth are answered as aggregates and by `event:page`, as v2 answers them.
"""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass, replace
from typing import Any

from app.analytics.clickhouse.gateway import Gateway
from app.analytics.queries import engagement, stats
from app.analytics.queries.filters import Clause, Filter
from app.analytics.queries.periods import compare, parse_date
from app.dashboard import view
from app.dashboard.cards import with_views_per_visit
from app.dashboard.stats_api import (
    DIRECT,
    ENGAGEMENT_METRICS,
    PLAUSIBLE_PROP,
    ApiQuery,
    DateRange,
    Include,
    internal_dimension,
    parse_date_range,
    parse_metrics,
    resolve,
    run_query,
)
from app.errors import InvalidInput
from app.models import Site

PERIODS = ("day", "7d", "30d", "month", "6mo", "12mo", "custom")
METRICS = (*view.METRICS, *ENGAGEMENT_METRICS)
INTERVALS = {"date": "day", "day": "day", "hour": "hour", "week": "week", "month": "month"}
# Longest first: `!=` must not read as `=`.
OPERATORS = (("!~", "contains_not"), ("!=", "is_not"), ("==", "is"), ("~", "contains"))
MAX_LIMIT = 1000


@dataclass(frozen=True)
class V1Query:
    site_id: str
    date_range: DateRange
    metrics: tuple[str, ...]
    filters: tuple[Clause, ...]


def parse_v1(site_id: str, period: str, date: str | None, metrics: str, filters: str) -> V1Query:
    """The parts every v1 endpoint shares; `InvalidInput` names the parameter."""
    if not site_id:
        raise InvalidInput("site_id: give the site's domain")
    names = tuple(name.strip() for name in metrics.split(",") if name.strip()) or ("visitors",)
    for name in names:
        if name not in METRICS:
            raise InvalidInput(f"metrics: unknown metric {name[:50]!r}; use {', '.join(METRICS)}")
    return V1Query(site_id, v1_range(period, date), names, parse_filters(filters))


def v1_range(period: str, date: str | None) -> DateRange:
    """v1's period and date as a v2 range: a named range up to today, or whole days."""
    if period not in PERIODS:
        raise InvalidInput(f"period: unknown period {period[:30]!r}; use {', '.join(PERIODS)}")
    if period == "custom":
        parts = (date or "").split(",")
        if len(parts) != 2:
            raise InvalidInput("date: a custom period needs date=YYYY-MM-DD,YYYY-MM-DD")
        return parse_date_range([part.strip() for part in parts])
    day = parse_date(date, "date")
    if day is None:
        return DateRange(name=period)
    if period == "day":
        return DateRange(first=day, last=day)
    if period in ("7d", "30d"):
        return DateRange(first=day - dt.timedelta(days=int(period[:-1]) - 1), last=day)
    months = {"month": 1, "6mo": 6, "12mo": 12}[period]
    index = day.year * 12 + day.month - months
    first = dt.date(index // 12, index % 12 + 1, 1)
    last = day.replace(day=calendar.monthrange(day.year, day.month)[1])
    return DateRange(first=first, last=last)


def parse_filters(raw: str) -> tuple[Clause, ...]:
    """`dimension==a|b;dimension!=c` → filters (AND), each with its alternatives (OR)."""
    result: list[Clause] = []
    for index, part in enumerate(item for item in raw.split(";") if item.strip()):
        field = f"filters[{index}]"
        found = next(((token, op) for token, op in OPERATORS if token in part), None)
        if found is None:
            raise InvalidInput(f"{field}: a filter is dimension==value (or !=, ~, !~)")
        token, operator = found
        name, _, values = part.partition(token)
        internal = internal_dimension(name.strip(), field)
        alternatives = tuple(value.strip() for value in values.split("|"))
        if internal == "source":
            alternatives = tuple("" if value == DIRECT else value for value in alternatives)
        try:
            result.append(Filter(internal, operator, alternatives))
        except InvalidInput as exc:
            raise InvalidInput(f"{field}: {exc}") from None
    return tuple(result)


def aggregate(
    gateway: Gateway, site: Site, query: V1Query, now: dt.datetime, compare_with: str | None
) -> dict[str, Any]:
    """`{"results": {metric: {"value": n[, "change": percent]}}}`."""
    if compare_with not in (None, "", "previous_period"):
        raise InvalidInput("compare: only previous_period is supported")
    scope = _scope(gateway, site, query, now)
    if compare_with:
        scope = replace(scope, comparison=compare(scope.period, "previous_period"))
    summary = stats.summary(gateway, scope)
    totals = with_views_per_visit(summary.totals)
    before = with_views_per_visit(summary.compared) if summary.compared is not None else None
    if set(query.metrics) & set(ENGAGEMENT_METRICS):
        totals |= _engagement(gateway, scope)
        if before is not None and scope.comparison is not None:
            before |= _engagement(gateway, scope.over(scope.comparison))
    results: dict[str, Any] = {}
    for name in query.metrics:
        results[name] = {"value": totals[name]}
        if before is not None:
            results[name]["change"] = _change(name, totals[name], before[name])
    return {"results": results}


def timeseries(
    gateway: Gateway, site: Site, query: V1Query, now: dt.datetime, interval: str | None
) -> dict[str, Any]:
    """`{"results": [{"date": …, metric: n, …}]}`, one per bucket, zero-filled."""
    if interval and interval not in INTERVALS:
        raise InvalidInput(f"interval: use one of {', '.join(INTERVALS)}")
    if set(query.metrics) & set(ENGAGEMENT_METRICS):
        raise InvalidInput("metrics: time_on_page and scroll_depth are in aggregate and breakdown")
    scope = _scope(gateway, site, query, now, INTERVALS.get(interval or ""))
    hourly = scope.period.interval in ("hour", "minute")
    results = []
    for point in stats.summary(gateway, scope).series:
        numbers = with_views_per_visit(point)
        when = point["bucket"].strftime("%Y-%m-%d %H:%M:%S" if hourly else "%Y-%m-%d")
        results.append({"date": when, **{name: numbers[name] for name in query.metrics}})
    return {"results": results}


def breakdown(
    gateway: Gateway,
    site: Site,
    query: V1Query,
    now: dt.datetime,
    prop: str,
    limit: int,
    page: int,
) -> dict[str, Any]:
    """`{"results": [{<property>: value, metric: n, …}]}`, most visitors first."""
    if not prop:
        raise InvalidInput("property: name the property to break down by, e.g. event:page")
    internal_dimension(prop, "property")
    parse_metrics(list(query.metrics), (prop,))
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit: between 1 and {MAX_LIMIT}")
    if not 1 <= page <= 10_000:
        raise InvalidInput("page: between 1 and 10000")
    v2 = ApiQuery(
        site_id=query.site_id,
        metrics=query.metrics,
        date_range=query.date_range,
        dimensions=(prop,),
        filters=query.filters,
        order_by=(),
        include=Include(),
        limit=limit,
        offset=(page - 1) * limit,
        raw_filters=[],
    )
    key = prop.removeprefix(PLAUSIBLE_PROP).rpartition(":")[2]
    answer = run_query(gateway, site, v2, now)
    return {
        "results": [
            {key: row.dimensions[0], **dict(zip(query.metrics, row.metrics, strict=True))}
            for row in answer.results
        ]
    }


def realtime_visitors(gateway: Gateway, site: Site, now: dt.datetime) -> int:
    assert site.id is not None
    return stats.current_visitors(gateway, site.id, now)


def _scope(
    gateway: Gateway, site: Site, query: V1Query, now: dt.datetime, interval: str | None = None
) -> stats.Scope:
    assert site.id is not None
    first_day = stats.first_day(gateway, site.id) if query.date_range.name == "all" else None
    period = resolve(query.date_range, site.timezone, now, interval, first_day)
    return stats.Scope(site.id, period, query.filters)


def _engagement(gateway: Gateway, scope: stats.Scope) -> dict[str, int | None]:
    found = engagement.overall(gateway, scope)
    return {"time_on_page": found.time_on_page, "scroll_depth": found.scroll_depth}


def _change(metric: str, now: float | None, before: float | None) -> float | int | None:
    """Plausible's v1 change: percent of the old value, points for the bounce rate and the
    scroll depth; None when either period has no value (no engagement beacon)."""
    if now is None or before is None:
        return None
    if metric in ("bounce_rate", "scroll_depth"):
        return round(now - before)
    if not before:
        return 100 if now else 0
    return round(100 * (now - before) / before)
