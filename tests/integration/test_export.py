"""The dashboard's CSV export: its rows for known events, its headers, who may download it."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest

from app.cache.ratelimit import EXPORT_PER_USER
from app.models import Role
from tests.conftest import join, logged_in, new_user
from tests.integration.helpers import BROWSER_UA, post_event

pytestmark = pytest.mark.db
HEADER = [
    "date",
    "visitors",
    "visits",
    "pageviews",
    "bounce_rate_percent",
    "visit_duration_seconds",
]
OTHER_UA = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


def _rows(body: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(body)))


async def test_the_export_holds_the_period_day_by_day(client, owner_client, services, site_domain):
    for agent in (BROWSER_UA, OTHER_UA):  # two visitors, one page view each
        body = {"n": "pageview", "u": f"https://{site_domain}/pricing", "d": site_domain}
        assert (await post_event(client, body, user_agent=agent)).status_code == 202
    today = dt.datetime.now(dt.UTC).date()  # the site's time zone is UTC
    services.flusher.drain()

    response = await owner_client.get(f"/{site_domain}/export.csv?period=7d")
    assert response.status_code == 200
    rows = _rows(response.text)
    assert rows[0] == HEADER
    days = [today - dt.timedelta(days=back) for back in range(6, -1, -1)]
    assert [row[0] for row in rows[1:]] == [day.isoformat() for day in days]
    assert [row for row in rows[1:] if row[1] != "0"] == [
        [today.isoformat(), "2", "2", "2", "100", "0"]
    ]
    assert response.text.endswith("\r\n")


async def test_today_is_exported_hour_by_hour(owner_client, site_domain):
    response = await owner_client.get(f"/{site_domain}/export.csv?period=today")
    rows = _rows(response.text)
    assert rows[0] == ["hour", *HEADER[1:]]
    assert len(rows) == 1 + 24
    assert rows[1][0].endswith(" 00:00")
    assert rows[1][1:] == ["0"] * 5


async def test_export_headers_keep_it_private_to_the_browser(owner_client, site_domain):
    response = await owner_client.get(f"/{site_domain}/export.csv?period=30d")
    today = dt.datetime.now(dt.UTC).date()
    first = today - dt.timedelta(days=29)
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == (
        f'attachment; filename="{site_domain}_{first.isoformat()}_{today.isoformat()}.csv"'
    )
    assert response.headers["cache-control"] == "max-age=60, private"
    assert response.headers["vary"] == "Cookie"
    etag = response.headers["etag"]
    again = await owner_client.get(
        f"/{site_domain}/export.csv?period=30d", headers={"If-None-Match": etag}
    )
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    changed = await owner_client.get(
        f"/{site_domain}/export.csv?period=7d", headers={"If-None-Match": etag}
    )
    assert changed.status_code == 200


async def test_another_organizations_site_is_not_found(services, site_domain):
    async with logged_in(services, await new_user(services)) as stranger:
        response = await stranger.get(f"/{site_domain}/export.csv")
        assert response.status_code == 404
        assert (await stranger.get("/missing.example/export.csv")).status_code == 404


async def test_bad_period_is_refused(owner_client, site_domain):
    assert (await owner_client.get(f"/{site_domain}/export.csv?period=1y")).status_code == 400


async def test_exports_are_limited_per_user(services, owner, site_domain):
    viewer = await new_user(services)
    await join(services, viewer, site_domain, Role.VIEWER)
    async with logged_in(services, viewer) as http:
        for _ in range(EXPORT_PER_USER.limit):
            assert (await http.get(f"/{site_domain}/export.csv")).status_code == 200
        refused = await http.get(f"/{site_domain}/export.csv")
        assert refused.status_code == 429
        assert int(refused.headers["retry-after"]) > 0
        assert (await http.get(f"/{site_domain}")).status_code == 200  # pages still load


async def test_the_dashboard_links_to_the_export(owner_client, services, site_domain):
    page = await owner_client.get(f"/{site_domain}?period=7d", headers={"Accept": "text/html"})
    assert f'<a href="/{site_domain}/export.csv?period=7d" download>Export CSV</a>' in page.text
