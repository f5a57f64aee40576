"""Named dashboard queries, composed from metric fragments written once.

Every query starts from a `Scope` (site + time range; it cannot be built without a site), binds
all values as `{name:Type}` parameters, and takes column names only from the allowlists below.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from app.analytics.clickhouse import Gateway, Row
from app.analytics.ids import RANDOM_BITS
from app.analytics.periods import Period
from app.errors import InvalidInput

# Metric fragments over the events table.
VISITORS = "uniq(visitor_id)"
PAGEVIEWS = "countIf(name = 'pageview')"
EVENTS = "count()"
# Metric fragments over per-session aggregates (see `_SESSIONS`).
VISITS = "count()"
BOUNCE_RATE = "if(count() = 0, 0, round(100 * countIf(interactions <= 1) / count()))"
VISIT_DURATION = "if(count() = 0, 0, round(avg(ended - started)))"

DIMENSIONS: dict[str, str] = {
    "page": "pathname",
    "source": "referrer_source",
    "country": "country_code",
    "browser": "browser",
    "os": "os",
    "device": "device",
    "hostname": "hostname",
    "utm_source": "utm_source",
    "utm_medium": "utm_medium",
    "utm_campaign": "utm_campaign",
}
BUCKETS: dict[str, str] = {
    "hour": "toStartOfHour(timestamp, {tz:String})",
    "day": "toDate(timestamp, {tz:String})",
}
VITALS = ("lcp", "inp", "cls", "ttfb", "fcp")
MAX_LIMIT = 1000


@dataclass(frozen=True, slots=True)
class Scope:
    """Site + time range; the start of every WHERE clause."""

    site_id: int
    period: Period

    def __post_init__(self) -> None:
        if not self.site_id:
            raise ValueError("a query scope needs a site")

    def params(self, **extra: Any) -> dict[str, Any]:
        start_ms = int(self.period.start.timestamp() * 1000)
        end_ms = int(self.period.end.timestamp() * 1000)
        return {
            "site_id": self.site_id,
            "start": start_ms // 1000,
            "end": end_ms // 1000,
            "session_lo": start_ms << RANDOM_BITS,
            "session_hi": end_ms << RANDOM_BITS,
            "tz": self.period.timezone,
            **extra,
        }


_IN_RANGE = (
    "site_id = {site_id:UInt32} AND timestamp >= {start:DateTime('UTC')} "
    "AND timestamp < {end:DateTime('UTC')}"
)
_SESSIONS = """
    SELECT session_id, min(started) AS started, max(ended) AS ended,
           sum(interactions) AS interactions
    FROM sessions
    WHERE site_id = {site_id:UInt32}
      AND session_id >= {session_lo:UInt64} AND session_id < {session_hi:UInt64}
    GROUP BY session_id
"""


def overview(gateway: Gateway, scope: Scope) -> dict[str, float]:
    """Top-line numbers: visitors, visits, pageviews, bounce rate, visit duration, events."""
    events = gateway.query(
        "overview_events",
        f"SELECT {VISITORS} AS visitors, {PAGEVIEWS} AS pageviews, {EVENTS} AS events "
        f"FROM events WHERE {_IN_RANGE}",
        scope.params(),
    )[0]
    sessions = gateway.query(
        "overview_sessions",
        f"SELECT {VISITS} AS visits, {BOUNCE_RATE} AS bounce_rate, "
        f"{VISIT_DURATION} AS visit_duration FROM ({_SESSIONS})",
        scope.params(),
    )[0]
    return {
        "visitors": int(events["visitors"]),
        "visits": int(sessions["visits"]),
        "pageviews": int(events["pageviews"]),
        "bounce_rate": int(sessions["bounce_rate"]),
        "visit_duration": int(sessions["visit_duration"]),
        "events": int(events["events"]),
    }


def timeseries(gateway: Gateway, scope: Scope) -> list[Row]:
    """Visitors and pageviews per hour (today) or per day, zero-filled, in the site timezone."""
    bucket = BUCKETS[scope.period.bucket]
    rows = gateway.query(
        "timeseries",
        f"SELECT {bucket} AS bucket, {VISITORS} AS visitors, {PAGEVIEWS} AS pageviews "
        f"FROM events WHERE {_IN_RANGE} GROUP BY bucket ORDER BY bucket",
        scope.params(),
    )
    found = {_naive(row["bucket"]): row for row in rows}
    return [
        {
            "bucket": start,
            "visitors": int(found[start]["visitors"]) if start in found else 0,
            "pageviews": int(found[start]["pageviews"]) if start in found else 0,
        }
        for start in scope.period.buckets()
    ]


def breakdown(gateway: Gateway, scope: Scope, dimension: str, limit: int = 10) -> list[Row]:
    """Visitors (and pageviews) per value of one dimension, most visitors first."""
    column = DIMENSIONS.get(dimension)
    if column is None:
        raise InvalidInput(f"unknown dimension {dimension!r}")
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT}")
    pageviews_only = " AND name = 'pageview'" if dimension == "page" else ""
    return gateway.query(
        f"breakdown_{dimension}",
        f"SELECT {column} AS value, {VISITORS} AS visitors, {PAGEVIEWS} AS pageviews "
        f"FROM events WHERE {_IN_RANGE}{pageviews_only} "
        f"GROUP BY value ORDER BY visitors DESC, value LIMIT {{limit:UInt32}}",
        scope.params(limit=limit),
    )


def web_vitals(gateway: Gateway, scope: Scope) -> dict[str, float | None]:
    """p75 of each Core Web Vital and TTFB, plus how many page loads reported them."""
    columns = ", ".join(
        f"quantileIf(0.75)({name}, {name} IS NOT NULL) AS {name}" for name in VITALS
    )
    row = gateway.query(
        "web_vitals",
        f"SELECT count() AS samples, {columns} FROM performance WHERE {_IN_RANGE}",
        scope.params(),
    )[0]
    result: dict[str, float | None] = {"samples": int(row["samples"])}
    for name in VITALS:
        value = row[name]
        result[name] = None if value is None or value != value else float(value)  # NaN → None
    return result


def _naive(value: dt.date | dt.datetime) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None)
    return dt.datetime(value.year, value.month, value.day)
