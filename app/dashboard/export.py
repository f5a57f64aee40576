"""The dashboard's export: the current view (range and filters) as a ZIP of CSV files.

`visitors.csv` holds the time series, `goals.csv` the conversions, and each breakdown dimension
has its own file (its top `stats.MAX_LIMIT` values), as Plausible's export does; `pages.csv`
also has each page's time on page and scroll depth (empty without an engagement beacon).
Tracked values (paths, referrers, campaign names) come from visitors' browsers and reach the
owner's spreadsheet, so a text cell that a spreadsheet would read as a formula is neutralised
(`neutralise`).
"""

from __future__ import annotations

import csv
import hashlib
import io
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from app.analytics.clickhouse.gateway import Gateway
from app.analytics.queries import engagement, stats
from app.analytics.queries.filters import DIMENSIONS, Dimension
from app.dashboard.cards import site_scope, with_views_per_visit
from app.dashboard.view import View
from app.models import Site

SERIES_COLUMNS = {
    "visitors": "visitors",
    "visits": "visits",
    "pageviews": "pageviews",
    "views_per_visit": "views_per_visit",
    "bounce_rate_percent": "bounce_rate",
    "visit_duration_seconds": "visit_duration",
}
BREAKDOWN_COLUMNS = ("visitors", "pageviews")
ENGAGEMENT_COLUMNS = ("time_on_page_seconds", "scroll_depth_percent")
GOAL_COLUMNS = ("visitors", "events", "conversion_rate", "revenue")
# OWASP's CSV injection rule: a cell starting with one of these is a formula to a spreadsheet.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# Entries carry a fixed time, so the same numbers give the same bytes (and the same ETag).
ENTRY_TIME = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class Export:
    filename: str
    body: bytes

    @property
    def etag(self) -> str:
        """A strong validator: a browser revalidating an unchanged export gets a 304."""
        return f'"{hashlib.sha256(self.body).hexdigest()[:32]}"'


def neutralise(value: Any) -> Any:
    """A text cell a spreadsheet would run as a formula, prefixed with `'` (shown as text)."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def file_name(spec: Dimension) -> str:
    """`Entry page` → `entry_pages.csv`, `City` → `cities.csv`."""
    slug = spec.label.lower().replace(" ", "_")
    plural = slug[:-1] + "ies" if slug.endswith("y") else slug + "s"
    return f"{plural}.csv"


def export_zip(gateway: Gateway, site: Site, view: View) -> Export:
    """The view as a ZIP (blocking: one query per file), named after the site and dates."""
    scope = site_scope(gateway, site, view)
    hourly = scope.period.interval in ("hour", "minute")
    series = [with_views_per_visit(point) for point in stats.summary(gateway, scope).series]
    files = {
        "visitors.csv": _csv(
            ["hour" if hourly else "date", *SERIES_COLUMNS],
            (
                [
                    point["bucket"].strftime("%Y-%m-%d %H:%M" if hourly else "%Y-%m-%d"),
                    *(point[metric] for metric in SERIES_COLUMNS.values()),
                ]
                for point in series
            ),
        )
    }
    for name, spec in DIMENSIONS.items():
        if name == "goal":  # goals have their own file, below
            continue
        rows = stats.breakdown(gateway, scope, name, limit=stats.MAX_LIMIT)
        cells = [[row["value"], *(row[column] for column in BREAKDOWN_COLUMNS)] for row in rows]
        header = [name, *BREAKDOWN_COLUMNS]
        if name == "page":
            header += ENGAGEMENT_COLUMNS
            found = engagement.by_page(gateway, scope, [row["value"] for row in rows])
            for line in cells:
                page = found.get(line[0], engagement.NONE)
                line += [page.time_on_page, page.scroll_depth]
        files[file_name(spec)] = _csv(header, cells)
    files["goals.csv"] = _csv(
        ["goal", *GOAL_COLUMNS],
        (
            [row["goal"], *(row[c] for c in GOAL_COLUMNS)]
            for row in stats.conversions(gateway, scope, scope.goals)
        ),
    )
    first, last = scope.period.first_day, scope.period.last_day
    dates = first.isoformat() if first == last else f"{first.isoformat()}_{last.isoformat()}"
    return Export(f"{site.domain}_{dates}.zip", _zip(files))


def _csv(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")  # RFC 4180
    writer.writerow(header)
    writer.writerows([neutralise(cell) for cell in row] for row in rows)
    return out.getvalue().encode()


def _zip(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, body in files.items():
            archive.writestr(zipfile.ZipInfo(name, ENTRY_TIME), body, zipfile.ZIP_DEFLATED)
    return out.getvalue()
