"""Dashboard cards: each card is a named query turned into numbers ready to render.

Templates only format what these functions return. A card is one htmx partial; the card list
and its order live in `CARDS`, so later cards (filters, comparisons) slot in here.
`export_csv` is the dashboard as a spreadsheet.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio.to_thread

from app.analytics.buffer.referrers import DIRECT
from app.analytics.clickhouse.gateway import Gateway
from app.analytics.queries import stats
from app.analytics.queries.periods import Period, resolve_period
from app.errors import NotFound
from app.models import Site

CHART_WIDTH = 720
CHART_HEIGHT = 180
VITAL_THRESHOLDS: dict[str, tuple[float, float, str]] = {
    # metric: (good up to, poor above, unit) — web.dev's published thresholds
    "lcp": (2500, 4000, "ms"),
    "inp": (200, 500, "ms"),
    "cls": (0.1, 0.25, ""),
    "ttfb": (800, 1800, "ms"),
    "fcp": (1800, 3000, "ms"),
}
VITAL_LABELS = {"lcp": "LCP", "inp": "INP", "cls": "CLS", "ttfb": "TTFB", "fcp": "FCP"}


@dataclass(frozen=True)
class Card:
    name: str
    title: str
    template: str
    build: Callable[[Gateway, stats.Scope], dict[str, Any]]


def overview_card(gateway: Gateway, scope: stats.Scope) -> dict[str, Any]:
    """Top-line numbers and the visitors chart: one card, one query."""
    summary = stats.summary(gateway, scope)
    return {"stats": summary.totals, "chart": bar_chart(summary.series, scope.period)}


def flag(country_code: str) -> str:
    """The country's flag emoji (regional indicator symbols) followed by its code."""
    if len(country_code) != 2 or not country_code.isalpha():
        return country_code
    symbols = "".join(chr(0x1F1E6 + ord(letter) - ord("A")) for letter in country_code.upper())
    return f"{symbols} {country_code.upper()}"


def _breakdown(
    dimension: str, *, blank: str = "(unknown)", label: Callable[[str], str] = str
) -> Callable[[Gateway, stats.Scope], dict[str, Any]]:
    def build(gateway: Gateway, scope: stats.Scope) -> dict[str, Any]:
        rows = stats.breakdown(gateway, scope, dimension)
        top = max((int(row["visitors"]) for row in rows), default=0) or 1
        return {
            "rows": [
                {
                    "label": label(row["value"]) if row["value"] else blank,
                    "visitors": int(row["visitors"]),
                    "pageviews": int(row["pageviews"]),
                    "share": round(100 * int(row["visitors"]) / top),
                }
                for row in rows
            ],
            "dimension": dimension,
        }

    return build


def vitals_card(gateway: Gateway, scope: stats.Scope) -> dict[str, Any]:
    raw = stats.web_vitals(gateway, scope)
    vitals = []
    for name, (good, poor, unit) in VITAL_THRESHOLDS.items():
        value = raw[name]
        rating = (
            "none"
            if value is None
            else "good"
            if value <= good
            else ("poor" if value > poor else "needs-improvement")
        )
        vitals.append(
            {"name": VITAL_LABELS[name], "value": format_vital(value, unit), "rating": rating}
        )
    return {"vitals": vitals, "samples": raw["samples"]}


def format_vital(value: float | None, unit: str) -> str:
    if value is None:
        return "–"
    if unit == "ms":
        return f"{value / 1000:.2f} s" if value >= 1000 else f"{value:.0f} ms"
    return f"{value:.3f}"


def bar_chart(series: list[dict[str, Any]], period: Period) -> dict[str, Any]:
    """Bar geometry for an inline SVG (visitors per bucket), computed here, not in templates."""
    peak = max((point["visitors"] for point in series), default=0)
    scale = nice_ceiling(peak)
    slot = CHART_WIDTH / max(len(series), 1)
    bars = []
    for index, point in enumerate(series):
        height = 0 if not scale else round(CHART_HEIGHT * point["visitors"] / scale, 1)
        bars.append(
            {
                "x": round(index * slot + slot * 0.15, 1),
                "y": round(CHART_HEIGHT - height, 1),
                "width": round(slot * 0.7, 1),
                "height": height,
                "label": bucket_label(point["bucket"], period),
                "visitors": point["visitors"],
                "pageviews": point["pageviews"],
            }
        )
    step = max(1, len(bars) // 6)
    ticks = [{"x": bar["x"] + bar["width"] / 2, "label": bar["label"]} for bar in bars[::step]]
    return {
        "bars": bars,
        "ticks": ticks,
        "max": scale,
        "width": CHART_WIDTH,
        "height": CHART_HEIGHT,
        "empty": peak == 0,
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
    return bucket.strftime("%H:00") if period.bucket == "hour" else bucket.strftime("%b %-d")


CARDS: dict[str, Card] = {
    card.name: card
    for card in (
        Card("overview", "Overview", "partials/overview.html", overview_card),
        Card("pages", "Top pages", "partials/breakdown.html", _breakdown("page")),
        Card(
            "sources", "Top sources", "partials/breakdown.html", _breakdown("source", blank=DIRECT)
        ),
        Card(
            "countries", "Countries", "partials/breakdown.html", _breakdown("country", label=flag)
        ),
        Card("browsers", "Browsers", "partials/breakdown.html", _breakdown("browser")),
        Card("devices", "Devices", "partials/breakdown.html", _breakdown("device")),
        Card("vitals", "Web performance (p75)", "partials/vitals.html", vitals_card),
    )
}


def card_named(name: str) -> Card:
    """The card a URL names; `NotFound` (404) for any other name."""
    card = CARDS.get(name)
    if card is None:
        raise NotFound(f"no card named {name}")
    return card


def site_period(site: Site, period: str) -> Period:
    """The period a dashboard URL names, in the site's time zone, as of now."""
    return resolve_period(period, site.timezone, dt.datetime.now(dt.UTC))


def site_scope(site: Site, period: str) -> stats.Scope:
    """What a dashboard request reads: the site, over `site_period`."""
    assert site.id is not None
    return stats.Scope(site.id, site_period(site, period))


async def build_card(card: Card, gateway: Gateway, scope: stats.Scope) -> dict[str, Any]:
    """Run a card's (blocking) queries in a worker thread."""
    return await anyio.to_thread.run_sync(card.build, gateway, scope)


# CSV header → summary metric. Visitors of a day are unique that day: rows do not add up.
EXPORT_COLUMNS = {
    "visitors": "visitors",
    "visits": "visits",
    "pageviews": "pageviews",
    "bounce_rate_percent": "bounce_rate",
    "visit_duration_seconds": "visit_duration",
}


@dataclass(frozen=True)
class Export:
    filename: str
    body: bytes

    @property
    def etag(self) -> str:
        """A strong validator: a browser revalidating an unchanged export gets a 304."""
        return f'"{hashlib.sha256(self.body).hexdigest()[:32]}"'


def export_csv(gateway: Gateway, scope: stats.Scope, domain: str) -> Export:
    """The period's time series as CSV (blocking: one query), named after site and dates.

    The overview's numbers per day (per hour for today). One CSV rather than a zip of one per
    card: it opens straight in a spreadsheet, and it holds only dates and numbers, so no tracked
    value (a page path, a referrer) can reach a spreadsheet as a formula (`=HYPERLINK(...)`),
    which breakdown exports would have to neutralise cell by cell.
    """
    period = scope.period
    hourly = period.bucket == "hour"
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")  # RFC 4180
    writer.writerow(["hour" if hourly else "date", *EXPORT_COLUMNS])
    series = stats.summary(gateway, scope).series
    for point in series:
        when = point["bucket"].strftime("%Y-%m-%d %H:00" if hourly else "%Y-%m-%d")
        writer.writerow([when, *(point[metric] for metric in EXPORT_COLUMNS.values())])
    first, last = series[0]["bucket"].date(), series[-1]["bucket"].date()
    dates = first.isoformat() if first == last else f"{first.isoformat()}_{last.isoformat()}"
    return Export(f"{domain}_{dates}.csv", out.getvalue().encode())
