"""Named queries of the web-performance view, over the raw page loads (`performance` rows).

A page load carries its timings and its page, country, browser and device; the filters on
those apply (`filters.page_load_where`), the others are left aside and named on the page.
Percentiles are t-digest estimates (exact for small samples, within about 1% beyond).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.analytics.clickhouse.gateway import Gateway, Row
from app.analytics.queries.filters import Clause, page_load_where
from app.analytics.queries.stats import LOCAL_TIME, NO_JIT, RAW, Scope, bucket_of, naive
from app.errors import InvalidInput

PAGE_LOAD_METRICS = ("lcp", "inp", "cls", "fcp", "ttfb", "page_load")
# web.dev's thresholds: good up to the first, poor above the second (page load has none).
THRESHOLDS: dict[str, tuple[float, float]] = {
    "lcp": (2500, 4000),
    "inp": (200, 500),
    "cls": (0.1, 0.25),
    "ttfb": (800, 1800),
    "fcp": (1800, 3000),
}
UNITS = dict.fromkeys(PAGE_LOAD_METRICS, "ms") | {"cls": ""}
PERCENTILES = ("p50", "p75", "p95")
GROUPS = {"page": "pathname", "country": "country_code", "device": "device", "browser": "browser"}
SORTS = (*PAGE_LOAD_METRICS, "samples")
# The histogram's bins: a fixed width per metric up to a ceiling; slower loads share the last.
BINS: dict[str, tuple[float, float]] = {
    "lcp": (250, 10_000),
    "inp": (25, 1_000),
    "cls": (0.025, 1.0),
    "fcp": (200, 8_000),
    "ttfb": (100, 4_000),
    "page_load": (250, 12_000),
}
MAX_GROUPS = 500
_QUANTILES = "quantilesTDigest(0.5, 0.75, 0.95)"


@dataclass(frozen=True, slots=True)
class PageLoads:
    """The page loads of a scope: the condition over `performance`, and the filters left aside."""

    condition: str
    params: dict[str, Any]
    ignored: tuple[Clause, ...]


def rating(metric: str, value: float | None) -> str:
    """web.dev's rating of a value: good, needs-improvement or poor (`none`: no value or no
    thresholds)."""
    if value is None or metric not in THRESHOLDS:
        return "none"
    good, poor = THRESHOLDS[metric]
    return "good" if value <= good else "poor" if value > poor else "needs-improvement"


def page_loads(scope: Scope) -> PageLoads:
    rows, ignored = page_load_where(scope.filters)
    return PageLoads(f"{RAW} AND {rows.visits}", scope.params(**rows.params), ignored)


def check_metric(name: str) -> str:
    if name not in PAGE_LOAD_METRICS:
        raise InvalidInput(f"unknown vital {name!r}; use one of {', '.join(PAGE_LOAD_METRICS)}")
    return name


def vitals(gateway: Gateway, scope: Scope) -> dict[str, dict[str, Any]]:
    """Per metric: its samples, p50 / p75 / p95 and, where web.dev rates it, the shares (%) of
    good, needs-improvement and poor loads."""
    loads = page_loads(scope)
    columns = []
    for metric in PAGE_LOAD_METRICS:
        columns += [f"count({metric}) AS {metric}_samples", f"{_QUANTILES}({metric}) AS {metric}_q"]
        if metric in THRESHOLDS:
            columns += [
                f"countIf({metric} <= {{{metric}_good:Float64}}) AS {metric}_good",
                f"countIf({metric} > {{{metric}_poor:Float64}}) AS {metric}_poor",
            ]
    limits = {f"{m}_good": good for m, (good, _) in THRESHOLDS.items()}
    limits |= {f"{m}_poor": poor for m, (_, poor) in THRESHOLDS.items()}
    row = gateway.query(
        "page_load_vitals",
        f"SELECT {', '.join(columns)} FROM performance WHERE {loads.condition} SETTINGS {NO_JIT}",
        {**loads.params, **limits},
    )[0]
    return {metric: _vital(row, metric) for metric in PAGE_LOAD_METRICS}


def _vital(row: Row, metric: str) -> dict[str, Any]:
    samples = int(row[f"{metric}_samples"])
    result: dict[str, Any] = {"samples": samples, **_percentiles(row[f"{metric}_q"], samples)}
    if metric in THRESHOLDS and samples:
        good, poor = int(row[f"{metric}_good"]), int(row[f"{metric}_poor"])
        result["shares"] = {
            "good": _share(good, samples),
            "needs-improvement": _share(samples - good - poor, samples),
            "poor": _share(poor, samples),
        }
    return result


def _percentiles(values: list[float] | None, samples: int) -> dict[str, float | None]:
    if not samples or values is None:
        return dict.fromkeys(PERCENTILES)
    return {name: float(value) for name, value in zip(PERCENTILES, values, strict=True)}


def _share(part: int, whole: int) -> float:
    return round(100 * part / whole, 1)


def vitals_series(gateway: Gateway, scope: Scope, metric: str) -> list[Row]:
    """p50 / p75 / p95 of one metric per bucket of the period (None where no load reported)."""
    metric = check_metric(metric)
    loads = page_loads(scope)
    bucket = bucket_of(scope.period.interval, LOCAL_TIME)
    rows = gateway.query(
        "page_load_series",
        f"SELECT {bucket} AS bucket, count({metric}) AS samples, {_QUANTILES}({metric}) AS q "
        f"FROM performance WHERE {loads.condition} GROUP BY bucket ORDER BY bucket "
        f"SETTINGS {NO_JIT}",
        loads.params,
    )
    found = {naive(row["bucket"]): row for row in rows}
    series = []
    for start in scope.period.buckets():
        row = found.get(start)
        samples = int(row["samples"]) if row else 0
        quantiles = row["q"] if row else None
        series.append({"bucket": start, "samples": samples, **_percentiles(quantiles, samples)})
    return series


def vitals_by(
    gateway: Gateway, scope: Scope, group: str, sort: str = "lcp", limit: int = 100
) -> list[Row]:
    """p75 of every metric per page, country, device or browser; the slowest (by `sort`'s
    p75) first, groups without a sample of it last."""
    column = GROUPS.get(group)
    if column is None:
        raise InvalidInput(f"unknown grouping {group!r}; use one of {', '.join(GROUPS)}")
    if sort not in SORTS:
        raise InvalidInput(f"unknown sort {sort!r}; use one of {', '.join(SORTS)}")
    if not 1 <= limit <= MAX_GROUPS:
        raise InvalidInput(f"limit must be between 1 and {MAX_GROUPS}")
    loads = page_loads(scope)
    p75 = ", ".join(f"quantileTDigest(0.75)({m}) AS p75_{m}" for m in PAGE_LOAD_METRICS)
    order = "samples DESC" if sort == "samples" else f"count({sort}) > 0 DESC, p75_{sort} DESC"
    rows = gateway.query(
        f"page_load_by_{group}",
        f"SELECT {column} AS value, count() AS samples, {p75} FROM performance "
        f"WHERE {loads.condition} GROUP BY value ORDER BY {order}, value "
        f"LIMIT {{limit:UInt32}} SETTINGS {NO_JIT}",
        loads.params | {"limit": limit},
    )
    return [
        {"value": row["value"], "samples": int(row["samples"])}
        | {m: _finite(row[f"p75_{m}"]) for m in PAGE_LOAD_METRICS}
        for row in rows
    ]


def _finite(value: Any) -> float | None:
    return None if value is None or value != value else float(value)  # NaN: no sample


def vitals_histogram(gateway: Gateway, scope: Scope, metric: str) -> list[dict[str, Any]]:
    """How many loads fell in each bin of one metric (`BINS`); the last bin is open-ended."""
    metric = check_metric(metric)
    width, ceiling = BINS[metric]
    last = round(ceiling / width)
    loads = page_loads(scope)
    rows = gateway.query(
        "page_load_histogram",
        f"SELECT least(toUInt32(floor({metric} / {{width:Float64}})), {{last:UInt32}}) AS bin, "
        f"count() AS loads FROM performance WHERE {loads.condition} AND {metric} IS NOT NULL "
        f"GROUP BY bin ORDER BY bin SETTINGS {NO_JIT}",
        loads.params | {"width": width, "last": last},
    )
    counts = {int(row["bin"]): int(row["loads"]) for row in rows}
    return [
        {
            "from": round(index * width, 3),
            "to": None if index == last else round((index + 1) * width, 3),
            "loads": counts.get(index, 0),
        }
        for index in range(last + 1)
    ]
