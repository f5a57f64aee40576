"""The web-performance page: the view's page loads as percentiles and web.dev ratings, a
chart of one metric, a table of the slowest pages (or countries, devices, browsers) and the
distribution of that metric. Filtered to one page, it is that page's detail view."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlencode

from app.analytics.clickhouse.gateway import Gateway
from app.analytics.queries import performance
from app.analytics.queries.filters import Filter
from app.dashboard.cards import VITAL_LABELS, bar_chart, format_vital, site_scope
from app.dashboard.view import View, filter_label
from app.errors import InvalidInput
from app.models import Site

GROUP_LABELS = {"page": "Page", "country": "Country", "device": "Device", "browser": "Browser"}
VITAL_NAMES = {
    "lcp": "Largest Contentful Paint",
    "inp": "Interaction to Next Paint",
    "cls": "Cumulative Layout Shift",
    "fcp": "First Contentful Paint",
    "ttfb": "Time to First Byte",
    "page_load": "Page load (load event)",
}


@dataclass(frozen=True, slots=True)
class Shown:
    """What the performance page shows of the view: the metric charted, the table's grouping
    and its sort (query parameters `vital`, `by`, `sort`)."""

    vital: str = "lcp"
    group: str = "page"
    sort: str = "lcp"

    @classmethod
    def from_query(cls, params: Mapping[str, Sequence[str]]) -> Shown:
        def one(name: str, default: str, allowed: Sequence[str]) -> str:
            values = params.get(name) or ()
            if len(values) > 1:
                raise InvalidInput(f"{name} is given more than once")
            value = values[0] if values and values[0] else default
            if value not in allowed:
                raise InvalidInput(
                    f"unknown {name} {value[:40]!r}; use one of {', '.join(allowed)}"
                )
            return value

        return cls(
            vital=one("vital", "lcp", performance.PAGE_LOAD_METRICS),
            group=one("by", "page", tuple(performance.GROUPS)),
            sort=one("sort", "lcp", performance.SORTS),
        )

    def link(self, view: View, **changes: str) -> str:
        """The page's query string: the view's, then these choices (defaults left out)."""
        shown = replace(self, **changes)
        own = [
            (name, value)
            for name, value, default in (
                ("vital", shown.vital, "lcp"),
                ("by", shown.group, "page"),
                ("sort", shown.sort, "lcp"),
            )
            if value != default
        ]
        return "?" + urlencode([*view.query(), *own])


def performance_context(
    gateway: Gateway, site: Site, view: View, shown: Shown, page: str
) -> dict[str, Any]:
    """Everything the page at path `page` renders (blocking: four queries over page loads)."""
    scope = site_scope(gateway, site, view)
    vitals = performance.vitals(gateway, scope)
    unit = performance.UNITS[shown.vital]
    series = [
        {**point, "p75": _rounded(point["p75"], unit)}
        for point in performance.vitals_series(gateway, scope, shown.vital)
    ]
    rows = performance.vitals_by(gateway, scope, shown.group, shown.sort)
    histogram = performance.vitals_histogram(gateway, scope, shown.vital)
    peak = max((b["loads"] for b in histogram), default=0)
    return {
        "scope": scope,
        "shown": shown,
        "tiles": [
            {
                "metric": name,
                "label": VITAL_LABELS[name],
                "name": VITAL_NAMES[name],
                "samples": found["samples"],
                "percentiles": {
                    key: format_vital(found[key], performance.UNITS[name])
                    for key in performance.PERCENTILES
                },
                "rating": performance.rating(name, found["p75"]),
                "shares": found.get("shares"),
            }
            for name, found in vitals.items()
        ],
        "chart": bar_chart(series, scope.period, "p75"),
        "rows": [
            {
                **row,
                "detail": view.with_filter(Filter("page", "is", (row["value"],))),
                "cells": {
                    m: (format_vital(row[m], performance.UNITS[m]), performance.rating(m, row[m]))
                    for m in performance.PAGE_LOAD_METRICS
                },
            }
            for row in rows
        ],
        "histogram": [
            {
                **b,
                "label": _bin_label(b, unit),
                "share": round(100 * b["loads"] / peak, 1) if peak else 0,
                "rating": performance.rating(shown.vital, b["from"]),
            }
            for b in histogram
        ],
        "interval_link": lambda interval: f"{page}{view.link(interval=interval)}",
        "ignored": [
            filter_label(item)
            for item in performance.page_loads(scope).ignored
            if isinstance(item, Filter)  # a dashboard view's filters are never trees
        ],
        "vital_names": VITAL_NAMES,
        "vital_labels": VITAL_LABELS,
        "group_labels": GROUP_LABELS,
    }


def _rounded(value: float | None, unit: str) -> float:
    if value is None:
        return 0
    return round(value) if unit == "ms" else round(value, 3)


def _bin_label(found: dict[str, Any], unit: str) -> str:
    start = format_vital(found["from"], unit)
    return f"≥ {start}" if found["to"] is None else f"{start} – {format_vital(found['to'], unit)}"
