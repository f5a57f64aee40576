"""The sites list: each site with its visitors in the last 24 hours, the change against the
24 hours before, a sparkline of them per hour, and its visitors in the last 30 days."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from typing import Any

from app.analytics.clickhouse.gateway import ClickHouseError, Gateway
from app.analytics.queries import stats
from app.analytics.queries.periods import resolve_period
from app.dashboard.cards import change
from app.models import Site

log = logging.getLogger(__name__)

SPARK_WIDTH = 96
SPARK_HEIGHT = 24


def site_rows(gateway: Gateway, sites: Sequence[Site], now: dt.datetime) -> list[dict[str, Any]]:
    """One row per site (blocking: one query); without numbers when ClickHouse does not answer,
    so the list of sites still shows."""
    periods = {site.id: resolve_period("24h", site.timezone, now) for site in sites if site.id}
    months = {site.id: resolve_period("30d", site.timezone, now) for site in sites if site.id}
    try:
        numbers = stats.recent_visitors(gateway, periods)
        monthly = stats.site_visitors(gateway, months)
    except ClickHouseError as exc:
        log.warning("the sites list shows no numbers: %s", exc)
        numbers, monthly = {}, {}
    rows = []
    for site in sites:
        found = numbers.get(site.id or 0)
        rows.append(
            {
                "site": site,
                "visitors": None if found is None else found["visitors"],
                "change": None
                if found is None
                else change("visitors", found["visitors"], found["previous"]),
                "sparkline": None if found is None else sparkline(found["series"]),
                "month": monthly.get(site.id or 0),
            }
        )
    return rows


def sparkline(values: Sequence[int]) -> str:
    """The points of an SVG polyline through `values`, scaled into the sparkline's box."""
    peak = max(values, default=0) or 1
    step = SPARK_WIDTH / max(len(values) - 1, 1)
    return " ".join(
        f"{round(index * step, 1)},{round(SPARK_HEIGHT - SPARK_HEIGHT * value / peak, 1)}"
        for index, value in enumerate(values)
    )
