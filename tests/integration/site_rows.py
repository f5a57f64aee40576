"""Helpers for deletion tests: give a site rows in every ClickHouse table, and count them."""

from __future__ import annotations

import httpx

from app.analytics.clickhouse.erase import SITE_TABLES
from app.services import Services
from app.sites.registry import get_site
from tests.integration.helpers import post_event


async def record_traffic(services: Services, client: httpx.AsyncClient, domain: str) -> None:
    """Post a page view, a performance beacon and an engagement beacon for `domain` and flush
    them to ClickHouse."""
    page = {"u": f"https://{domain}/", "d": domain}
    beacon = {"n": "ursa:performance", "i": False, "ursa": {"perf": {"ttfb": 90, "lcp": 900}}}
    engagement = {"n": "engagement", "sd": 40, "e": 3_000}
    for body in ({"n": "pageview", **page}, {**beacon, **page}, {**engagement, **page}):
        response = await post_event(client, body)
        assert (response.status_code, response.headers.get("x-ursa-dropped")) == (202, None)
    services.flusher.drain()


def row_counts(services: Services, site_id: int) -> dict[str, int]:
    """How many rows site `site_id` has in each analytics table."""
    return {
        table: services.clickhouse.query(
            "test_count",
            f"SELECT count() AS n FROM {table} WHERE site_id = {{site:UInt32}}",
            {"site": site_id},
        )[0]["n"]
        for table in SITE_TABLES
    }


async def site_id_of(services: Services, domain: str) -> int:
    site = await get_site(services.sessions, domain)
    assert site.id is not None
    return site.id
