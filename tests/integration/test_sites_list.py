"""The sites list: visitors of the last 24 hours, the change, a sparkline; and when
ClickHouse does not answer, the sites all the same."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest

from app.analytics.clickhouse.gateway import ClickHouse
from app.analytics.queries import stats
from app.analytics.queries.periods import resolve_period
from app.dashboard.home import SPARK_HEIGHT, sparkline
from app.services import Services
from tests.conftest import free_port, logged_in
from tests.integration.site_rows import site_id_of

pytestmark = pytest.mark.db


def _insert(services: Services, site_id: int, visits: list[tuple[int, float]]) -> None:
    """Page views of (visitor, hours ago), each starting a visit."""
    now = dt.datetime.now(dt.UTC)
    columns = ["site_id", "event_id", "timestamp", "name", "visitor_id", "session_start"]
    data: list[list[Any]] = [
        [site_id] * len(visits),
        [site_id << 32 | index for index in range(len(visits))],
        [int((now - dt.timedelta(hours=ago)).timestamp()) for _, ago in visits],
        ["pageview"] * len(visits),
        [visitor for visitor, _ in visits],
        [1] * len(visits),
    ]
    services.clickhouse.insert("events", columns, data, token=f"sites-list:{uuid.uuid4()}")


async def test_visitors_now_and_the_day_before(services, site_domain):
    site_id = await site_id_of(services, site_domain)
    _insert(services, site_id, [(1, 1), (2, 3), (2, 3), (3, 30), (4, 30), (5, 40), (6, 50)])
    period = resolve_period("24h", "UTC", dt.datetime.now(dt.UTC))
    found = stats.recent_visitors(services.clickhouse, {site_id: period})[site_id]
    assert (found["visitors"], found["previous"]) == (2, 3)  # 50 hours ago is neither
    assert len(found["series"]) == 24
    assert sum(found["series"]) == 2
    assert stats.recent_visitors(services.clickhouse, {}) == {}
    month = resolve_period("30d", "UTC", dt.datetime.now(dt.UTC))
    # the last 30 days: all six visitors; a site without events has none
    assert stats.site_visitors(services.clickhouse, {site_id: month, site_id + 99: month}) == {
        site_id: 6,
        site_id + 99: 0,
    }


async def test_the_list_shows_each_sites_numbers(owner_client, services, site_domain):
    site_id = await site_id_of(services, site_domain)
    _insert(services, site_id, [(1, 1), (2, 2), (3, 30)])
    page = await owner_client.get("/", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert f'<strong data-visitors="{site_domain}">2</strong> visitors in 24 h' in page.text
    assert '<span class="change good">↑ 100%</span>' in page.text
    assert f'<span data-month-visitors="{site_domain}">3</span> in 30 days' in page.text
    assert '<polyline points="0.0,' in page.text


async def test_the_list_still_shows_the_sites_when_clickhouse_is_down(settings, owner, site_domain):
    refusing = ClickHouse(f"http://127.0.0.1:{free_port()}")  # nothing listens there
    services = Services(settings, gateway=refusing)
    try:
        async with logged_in(services, owner) as http:
            page = await http.get("/", headers={"Accept": "text/html"})
            assert page.status_code == 200
            assert f'href="/{site_domain}"' in page.text
            assert "Numbers unavailable right now." in page.text
    finally:
        await services.aclose()


def test_sparkline_scales_into_its_box():
    assert sparkline([0, 5, 10]) == f"0.0,{SPARK_HEIGHT}.0 48.0,12.0 96.0,0.0"
    assert sparkline([0, 0]) == f"0.0,{SPARK_HEIGHT}.0 96.0,{SPARK_HEIGHT}.0"
