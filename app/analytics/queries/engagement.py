"""Time on page and scroll depth, from the tracker's engagement beacons (`engagement` rows).

Plausible's definitions, per page: *time on page* is the engaged time (foreground and active)
its visitors spent on it, on average per visitor (all of a visitor's beacons of the page added
up, then the sum over visitors divided by how many sent one); *scroll depth* is the average over
those visitors of the deepest point each reached (a whole percent of the page's height). Over
several pages (the Stats API's aggregate) each pair of page and visitor counts once, so the
numbers are the average page's.

Beacons are not events: nothing here touches visits, page views or bounces. Rows are kept by
the scope's range and filters (`filters.engagement_where`); without a beacon a page has no time
on page and no scroll depth (None), not a zero.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from app.analytics.clickhouse.gateway import Gateway, Row
from app.analytics.queries.filters import engagement_where
from app.analytics.queries.stats import NO_JIT, RAW, Scope


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
    kept = engagement_where(scope.filters, RAW)
    params = scope.params(**kept.params)
    condition = f"{RAW} AND {kept.visits}"
    if pages is not None:
        condition += " AND has({pages:Array(String)}, pathname)"
        params["pages"] = list(pages)
    pairs = (
        "SELECT pathname, visitor_id, sum(engaged_ms) AS ms, max(scroll_depth) AS depth "
        f"FROM engagement WHERE {condition} GROUP BY pathname, visitor_id"
    )
    page, group = ("pathname AS page, ", " GROUP BY pathname") if pages is not None else ("", "")
    return gateway.query(
        name,
        f"SELECT {page}count() AS visitors, sum(ms) AS ms, avg(depth) AS depth "
        f"FROM ({pairs}){group} HAVING visitors > 0 SETTINGS {NO_JIT}",
        params,
    )


def _engagement(row: Row) -> Engagement:
    visitors = int(row["visitors"])
    return Engagement(
        time_on_page=round(int(row["ms"]) / visitors / 1000),
        scroll_depth=round(float(row["depth"])),
        visitors=visitors,
    )
