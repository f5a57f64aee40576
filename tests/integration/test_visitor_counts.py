"""Unique visitor counts are exact for the sizes small sites have, and never exceed visits.

300 visitors come through the whole path (HTTP, buffer, flush, rollups, overview card); the
larger counts are inserted into `events` as the flusher inserts them (one block, the rollups
filled by their materialized views), all in one hour of one day, so one rollup cell holds them.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from app.analytics.queries import stats
from app.analytics.queries.periods import resolve_period
from app.services import Services
from tests.integration.helpers import BROWSER_UA, post_event
from tests.integration.site_rows import site_id_of

pytestmark = pytest.mark.db

NOW = dt.datetime(2026, 11, 20, 15, 30, tzinfo=dt.UTC)


async def test_300_visitors_with_one_visit_each_show_as_300_visitors_and_300_visits(
    client, owner_client, services, site_domain
):
    for number in range(300):
        body = {"n": "pageview", "u": f"https://{site_domain}/", "d": site_domain}
        user_agent = BROWSER_UA.replace("Chrome/131.0.0.0", f"Chrome/131.0.{number}.0")
        response = await post_event(client, body, user_agent=user_agent)
        assert (response.status_code, response.headers.get("x-ursa-dropped")) == (202, None)
    services.flusher.drain()

    site_id = await site_id_of(services, site_domain)
    scope = stats.Scope(site_id, resolve_period("today", "UTC", dt.datetime.now(dt.UTC)))
    numbers = stats.overview(services.clickhouse, scope)
    assert (numbers["visitors"], numbers["visits"], numbers["pageviews"]) == (300, 300, 300)
    [page] = stats.breakdown(services.clickhouse, scope, "page")
    assert (page["value"], page["visitors"], page["pageviews"]) == ("/", 300, 300)
    card = await owner_client.get(f"/{site_domain}/cards/overview?period=today")
    assert 'data-metric="visitors">300</span>' in card.text
    assert 'data-metric="visits">300</span>' in card.text


def _insert_visits(services: Services, site_id: int, visitors: int, pages: int = 1) -> None:
    """`visitors` distinct visitors with one visit of `pages` page views each, in one hour."""
    events = visitors * pages
    start = int(NOW.replace(minute=0).timestamp())
    columns: dict[str, list[Any]] = {
        "site_id": [site_id] * events,
        "timestamp": [start + index % 3600 for index in range(events)],
        "event_id": [site_id << 40 | index for index in range(events)],
        "name": ["pageview"] * events,
        "visitor_id": [0x5EED << 32 | index % visitors for index in range(events)],
        "session_id": [site_id << 40 | index % visitors for index in range(events)],
        "session_start": [int(index < visitors) for index in range(events)],
        "session_bounce": [int(pages == 1 and index < visitors) for index in range(events)],
        "pathname": ["/"] * events,
    }
    services.clickhouse.insert(
        "events", list(columns), list(columns.values()), token=f"visits:{site_id}:{visitors}"
    )


@pytest.mark.parametrize("visitors", [5_000, 10_000])
async def test_visitors_are_exact_up_to_10000_in_one_rollup_cell(services, site_domain, visitors):
    site_id = await site_id_of(services, site_domain)
    _insert_visits(services, site_id, visitors)
    for key in ("today", "30d"):  # one hourly cell, and the same cell merged into days
        scope = stats.Scope(site_id, resolve_period(key, "UTC", NOW))
        numbers = stats.overview(services.clickhouse, scope)
        assert (numbers["visitors"], numbers["visits"]) == (visitors, visitors), key
        [page] = stats.breakdown(services.clickhouse, scope, "page")
        assert page["visitors"] == visitors, key
