"""Named dashboard queries, composed from metric fragments written once.

Every query starts from a `Scope` (site + time range; it cannot be built without a site) and
binds all values as `{name:Type}` parameters. The dashboard reads the rollups defined in
`migrations/clickhouse/` (site totals per local hour, breakdowns and vitals per local day),
never the raw events, so a card costs the same whether a site had a thousand events or ten
million. Rollups hold local wall-clock times, so ranges are bound as local times too.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from app.analytics.clickhouse.gateway import Gateway, Row
from app.analytics.queries.periods import Period
from app.errors import InvalidInput

# Metric fragments over the rollups' columns. Visitors are exact up to 16,384 per period (but
# for rare 32-bit hash collisions) and within 0.2% beyond (clickhouse/0002_exact_visitors.sql).
VISITORS = "uniqCombinedMerge(18)(unique_visitors)"
PAGEVIEWS = "sum(pageviews)"
EVENTS = "sum(events)"
VISITS = "sum(session_starts)"
# Where both are shown: a visit counts where it starts, a visitor wherever their events are, so
# a visit that began before the range (or the sketch past its exact range) could show more
# visitors than visits; the dashboard shows at most as many visitors as visits.
VISITORS_OF_VISITS = f"least({VISITORS}, {VISITS})"
# A session that started before the range can lose its bounce inside it: clamp to 0..100.
BOUNCE_RATE = (
    "if(sum(session_starts) = 0, 0, "
    "least(100, greatest(0, round(100 * sum(session_bounces) / sum(session_starts)))))"
)
VISIT_DURATION = "if(sum(session_starts) = 0, 0, round(sum(session_seconds) / sum(session_starts)))"

DIMENSIONS = (
    "page",
    "source",
    "country",
    "browser",
    "os",
    "device",
    "hostname",
    "utm_source",
    "utm_medium",
    "utm_campaign",
)
BUCKETS: dict[str, str] = {"hour": "hour", "day": "toDate(hour)"}
VITALS = ("lcp", "inp", "cls", "ttfb", "fcp")
MAX_LIMIT = 1000
# ClickHouse compiles an expression or an aggregation to machine code (LLVM) the third time it
# sees it, inside the query that sees it: 20-50 ms, once per process and query shape, for code
# that saves nothing on the few thousand rows a card reads.
NO_JIT = "compile_expressions = 0, compile_aggregate_expressions = 0"


@dataclass(frozen=True, slots=True)
class Scope:
    """Site + time range; the start of every WHERE clause."""

    site_id: int
    period: Period

    def __post_init__(self) -> None:
        if not self.site_id:
            raise ValueError("a query scope needs a site")

    def params(self, **extra: Any) -> dict[str, Any]:
        zone = ZoneInfo(self.period.timezone)
        local_start = self.period.start.astimezone(zone).replace(tzinfo=None)
        local_end = self.period.end.astimezone(zone).replace(tzinfo=None)
        return {
            "site_id": self.site_id,
            "local_start": _wall_seconds(local_start),
            "local_end": _wall_seconds(local_end),
            "first_day": local_start.date().isoformat(),
            "last_day": (local_end - dt.timedelta(seconds=1)).date().isoformat(),
            **extra,
        }


_HOURS = (
    "site_id = {site_id:UInt32} AND hour >= {local_start:DateTime('UTC')} "
    "AND hour < {local_end:DateTime('UTC')}"
)
_DAYS = "site_id = {site_id:UInt32} AND day >= {first_day:Date} AND day <= {last_day:Date}"


OVERVIEW_METRICS = ("visitors", "visits", "pageviews", "bounce_rate", "visit_duration", "events")


@dataclass(frozen=True, slots=True)
class Summary:
    """The overview's numbers for the whole period and per bucket (the chart, the export)."""

    totals: dict[str, int]
    series: list[Row]  # zero-filled, one per bucket of the period (local wall time)


def summary(gateway: Gateway, scope: Scope) -> Summary:
    """Totals and the per-hour (today) or per-day series, from one query; in each, visitors
    are at most the visits (`VISITORS_OF_VISITS`).

    `GROUP BY ROLLUP` adds the row for the whole period (its bucket is NULL), merged from the
    buckets' sketches rather than read again: one scan of the hourly rollup serves both.
    """
    bucket = BUCKETS[scope.period.bucket]
    rows = gateway.query(
        "summary",
        f"SELECT {bucket} AS bucket, {VISITORS_OF_VISITS} AS visitors, {VISITS} AS visits, "
        f"{PAGEVIEWS} AS pageviews, {BOUNCE_RATE} AS bounce_rate, "
        f"{VISIT_DURATION} AS visit_duration, {EVENTS} AS events "
        f"FROM totals_hourly WHERE {_HOURS} GROUP BY ROLLUP(bucket) ORDER BY bucket "
        f"SETTINGS group_by_use_nulls = 1, {NO_JIT}",
        scope.params(),
    )
    total = next((row for row in rows if row["bucket"] is None), None)
    found = {_naive(row["bucket"]): row for row in rows if row["bucket"] is not None}
    return Summary(
        totals={name: int(total[name]) if total else 0 for name in OVERVIEW_METRICS},
        series=[
            {
                "bucket": start,
                **{
                    name: int(found[start][name]) if start in found else 0
                    for name in OVERVIEW_METRICS
                },
            }
            for start in scope.period.buckets()
        ],
    )


def overview(gateway: Gateway, scope: Scope) -> dict[str, int]:
    """Top-line numbers: visitors, visits, pageviews, bounce rate, visit duration, events."""
    return summary(gateway, scope).totals


def breakdown(gateway: Gateway, scope: Scope, dimension: str, limit: int = 10) -> list[Row]:
    """Visitors (and pageviews) per value of one dimension, most visitors first."""
    if dimension not in DIMENSIONS:
        raise InvalidInput(f"unknown dimension {dimension!r}")
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT}")
    return gateway.query(
        f"breakdown_{dimension}",
        f"SELECT value, {VISITORS} AS visitors, {PAGEVIEWS} AS pageviews "
        f"FROM breakdowns_daily WHERE {_DAYS} AND dimension = {{dimension:String}} "
        f"GROUP BY value ORDER BY visitors DESC, value LIMIT {{limit:UInt32}} SETTINGS {NO_JIT}",
        scope.params(dimension=dimension, limit=limit),
    )


def web_vitals(gateway: Gateway, scope: Scope) -> dict[str, float | None]:
    """p75 of each Core Web Vital and TTFB, plus how many page loads reported them."""
    columns = ", ".join(f"quantileTDigestMerge(0.75)({name}) AS {name}" for name in VITALS)
    row = gateway.query(
        "web_vitals",
        f"SELECT sum(samples) AS samples, {columns} FROM vitals_daily WHERE {_DAYS} "
        f"SETTINGS {NO_JIT}",
        scope.params(),
    )[0]
    result: dict[str, float | None] = {"samples": int(row["samples"])}
    for name in VITALS:
        value = row[name]
        result[name] = None if value is None or value != value else float(value)  # NaN → None
    return result


def _naive(value: dt.date | dt.datetime | str) -> dt.datetime:
    """A bucket as naive local time; a running instance's internal port sends ISO strings."""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None)
    return dt.datetime(value.year, value.month, value.day)


def _wall_seconds(local: dt.datetime) -> int:
    """A naive local time as the seconds the rollups store for it (wall clock read as UTC)."""
    return int(local.replace(tzinfo=dt.UTC).timestamp())


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
