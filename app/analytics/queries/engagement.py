"""Time on page and scroll depth, from the tracker's engagement beacons (`engagement` rows).

Plausible's definitions, per page: *time on page* is the engaged time (foreground and active)
its visitors spent on it, on average per visitor (all of a visitor's beacons of the page added
up, then the sum over visitors divided by how many sent one); *scroll depth* is the average over
those visitors of the deepest point each reached (a whole percent of the page's height). Over
several pages (the Stats API's aggregate) each pair of page and visitor counts once, so the
numbers are the average page's.

Beacons are not events: nothing here touches visits, page views or bounces. Rows are kept by
the scope's range and filters (`filters.engagement_where`); without a beacon a page has no time
on page and no scroll depth (None), not a zero. An unfiltered view of whole local days reads
the sums of `engagement_daily` (ClickHouse migration 0005: pairs, engaged time and deepest
scrolls per page and day, from the worker's stamps, `buffer.engaged`) instead of grouping the
period's beacons by page and visitor.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from app.analytics.clickhouse.gateway import Gateway, Row
from app.analytics.queries.filters import engagement_where
from app.analytics.queries.stats import DAYS, NO_JIT, RAW, Scope


@dataclass(frozen=True, slots=True)
class Engagement:
    time_on_page: int | None  # whole seconds
    scroll_depth: int | None  # whole percent
    visitors: int  # those who sent a beacon of the page(s)


NONE = Engagement(None, None, 0)


def by_page(gateway: Gateway, scope: Scope, pages: Sequence[str]) -> dict[str, Engagement]:
    """Time on page and scroll depth of each of `pages` that had a beacon in the scope."""
    if not pages:
        return {}
    rows = _query(gateway, scope, "engagement_by_page", pages)
    return {str(row["page"]): _engagement(row) for row in rows}


def overall(gateway: Gateway, scope: Scope) -> Engagement:
    """Time on page and scroll depth of the average page of the scope."""
    rows = _query(gateway, scope, "engagement_overall", None)
    return _engagement(rows[0]) if rows else NONE


def _query(gateway: Gateway, scope: Scope, name: str, pages: Sequence[str] | None) -> list[Row]:
    page, group = ("pathname AS page, ", " GROUP BY pathname") if pages is not None else ("", "")
    only = " AND has({pages:Array(String)}, pathname)" if pages is not None else ""
    extra = {"pages": list(pages)} if pages is not None else {}
    if _reads_rollup(scope):
        return gateway.query(
            f"{name}_daily",
            f"SELECT {page}sum(pairs) AS visitors, sum(engaged_ms) AS ms, "
            f"sum(depth) / visitors AS depth FROM engagement_daily WHERE {DAYS}{only}{group} "
            "HAVING visitors > 0",
            scope.params(**extra),
        )
    kept = engagement_where(scope.filters, RAW)
    pairs = (
        "SELECT pathname, visitor_id, sum(engaged_ms) AS ms, max(scroll_depth) AS depth "
        f"FROM engagement WHERE {RAW} AND {kept.visits}{only} GROUP BY pathname, visitor_id"
    )
    return gateway.query(
        name,
        f"SELECT {page}count() AS visitors, sum(ms) AS ms, avg(depth) AS depth "
        f"FROM ({pairs}){group} HAVING visitors > 0 SETTINGS {NO_JIT}",
        scope.params(**kept.params, **extra),
    )


def _reads_rollup(scope: Scope) -> bool:
    """Unfiltered, over whole local days: what `engagement_daily` holds."""
    period = scope.period
    return not scope.filters and all(
        moment.time() == dt.time() for moment in (period.local_start, period.local_end)
    )


def _engagement(row: Row) -> Engagement:
    visitors = int(row["visitors"])
    return Engagement(
        time_on_page=round(int(row["ms"]) / visitors / 1000),
        scroll_depth=round(float(row["depth"])),
        visitors=visitors,
    )
