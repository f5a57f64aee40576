"""The dashboard's export, a ZIP of CSV files: its rows for known events, the filters it obeys,
formula-looking values neutralised, its headers, who may download it."""

from __future__ import annotations

import csv
import datetime as dt
import io
import zipfile
from urllib.parse import quote

import pytest

from app.cache.ratelimit import EXPORT_PER_USER
from app.dashboard.export import neutralise
from app.models import Role
from tests.conftest import join, logged_in, new_user
from tests.integration.helpers import BROWSER_UA, post_event

pytestmark = pytest.mark.db
HEADER = [
    "date",
    "visitors",
    "visits",
    "pageviews",
    "views_per_visit",
    "bounce_rate_percent",
    "visit_duration_seconds",
]
FILES = {
    "visitors.csv", "pages.csv", "entry_pages.csv", "exit_pages.csv", "hostnames.csv",
    "events.csv", "sources.csv", "referrer_urls.csv", "utm_mediums.csv", "utm_sources.csv",
    "utm_campaigns.csv", "utm_contents.csv", "utm_terms.csv", "countries.csv", "regions.csv",
    "cities.csv", "browsers.csv", "browser_versions.csv", "operating_systems.csv",
    "os_versions.csv", "devices.csv", "screen_sizes.csv", "goals.csv", "channels.csv",
}  # fmt: skip
OTHER_UA = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


def _files(body: bytes) -> dict[str, list[list[str]]]:
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        return {
            name: list(csv.reader(io.StringIO(archive.read(name).decode())))
            for name in archive.namelist()
        }


async def test_the_export_holds_the_period_day_by_day(client, owner_client, services, site_domain):
    for agent in (BROWSER_UA, OTHER_UA):  # two visitors, one page view each
        body = {"n": "pageview", "u": f"https://{site_domain}/pricing", "d": site_domain}
        assert (await post_event(client, body, user_agent=agent)).status_code == 202
    today = dt.datetime.now(dt.UTC).date()  # the site's time zone is UTC
    services.flusher.drain()

    response = await owner_client.get(f"/{site_domain}/export.zip?period=7d")
    assert response.status_code == 200
    files = _files(response.content)
    assert set(files) == FILES
    rows = files["visitors.csv"]
    assert rows[0] == HEADER
    days = [today - dt.timedelta(days=back) for back in range(6, -1, -1)]
    assert [row[0] for row in rows[1:]] == [day.isoformat() for day in days]
    assert [row for row in rows[1:] if row[1] != "0"] == [
        [today.isoformat(), "2", "2", "2", "1.0", "100", "0"]
    ]
    assert files["pages.csv"] == [
        ["page", "visitors", "pageviews", "time_on_page_seconds", "scroll_depth_percent"],
        ["/pricing", "2", "2", "", ""],  # no engagement beacon
    ]
    assert files["browsers.csv"][1:] == [["Chrome", "1", "1"], ["Firefox", "1", "1"]]
    assert files["cities.csv"] == [["city", "visitors", "pageviews"], ["", "2", "2"]]  # no geo db


async def test_the_export_obeys_the_filters(client, owner_client, services, site_domain):
    for path, agent in (("/a", BROWSER_UA), ("/b", OTHER_UA)):
        body = {"n": "pageview", "u": f"https://{site_domain}{path}", "d": site_domain}
        assert (await post_event(client, body, user_agent=agent)).status_code == 202
    services.flusher.drain()
    response = await owner_client.get(f"/{site_domain}/export.zip?period=7d&f=page:is:/b")
    files = _files(response.content)
    assert files["pages.csv"][1:] == [["/b", "1", "1", "", ""]]
    assert files["browsers.csv"][1:] == [["Firefox", "1", "1"]]
    assert sum(int(row[1]) for row in files["visitors.csv"][1:]) == 1


async def test_values_a_spreadsheet_would_run_are_neutralised(
    client, owner_client, services, site_domain
):
    campaigns = ['=HYPERLINK("http://x")', "+1+1", "-2", "@SUM(A1)", "\tx", "plain"]
    for index, campaign in enumerate(campaigns):
        body = {
            "n": "pageview",
            "u": f"https://{site_domain}/?utm_campaign={quote(campaign)}",
            "d": site_domain,
        }
        agent = BROWSER_UA.replace(".0.0.0", f".0.{index}.0")  # one visitor each
        assert (await post_event(client, body, user_agent=agent)).status_code == 202
    services.flusher.drain()
    response = await owner_client.get(f"/{site_domain}/export.zip?period=today")
    cells = {row[0] for row in _files(response.content)["utm_campaigns.csv"][1:]}
    assert cells == {'\'=HYPERLINK("http://x")', "'+1+1", "'-2", "'@SUM(A1)", "'\tx", "plain"}


async def test_today_is_exported_hour_by_hour(owner_client, site_domain):
    response = await owner_client.get(f"/{site_domain}/export.zip?period=today")
    rows = _files(response.content)["visitors.csv"]
    assert rows[0] == ["hour", *HEADER[1:]]
    assert len(rows) == 1 + 24
    assert rows[1][0].endswith(" 00:00")
    assert rows[1][1:] == ["0"] * 6


async def test_export_headers_keep_it_private_to_the_browser(owner_client, site_domain):
    response = await owner_client.get(f"/{site_domain}/export.zip?period=30d")
    today = dt.datetime.now(dt.UTC).date()
    first = today - dt.timedelta(days=29)
    assert response.headers["content-type"] == "application/zip"
    assert response.headers["content-disposition"] == (
        f'attachment; filename="{site_domain}_{first.isoformat()}_{today.isoformat()}.zip"'
    )
    assert response.headers["cache-control"] == "max-age=60, private"
    assert response.headers["vary"] == "Cookie"
    etag = response.headers["etag"]
    again = await owner_client.get(
        f"/{site_domain}/export.zip?period=30d", headers={"If-None-Match": etag}
    )
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    changed = await owner_client.get(
        f"/{site_domain}/export.zip?period=7d", headers={"If-None-Match": etag}
    )
    assert changed.status_code == 200


async def test_another_organizations_site_is_not_found(services, site_domain):
    async with logged_in(services, await new_user(services)) as stranger:
        response = await stranger.get(f"/{site_domain}/export.zip")
        assert response.status_code == 404
        assert (await stranger.get("/missing.example/export.zip")).status_code == 404


async def test_bad_period_is_refused(owner_client, site_domain):
    assert (await owner_client.get(f"/{site_domain}/export.zip?period=1y")).status_code == 400


async def test_exports_are_limited_per_user(services, owner, site_domain):
    viewer = await new_user(services)
    await join(services, viewer, site_domain, Role.VIEWER)
    async with logged_in(services, viewer) as http:
        for _ in range(EXPORT_PER_USER.limit):
            assert (await http.get(f"/{site_domain}/export.zip")).status_code == 200
        refused = await http.get(f"/{site_domain}/export.zip")
        assert refused.status_code == 429
        assert int(refused.headers["retry-after"]) > 0
        assert (await http.get(f"/{site_domain}")).status_code == 200  # pages still load


async def test_the_dashboard_links_to_the_export(owner_client, services, site_domain):
    page = await owner_client.get(f"/{site_domain}?period=7d", headers={"Accept": "text/html"})
    assert f'<a href="/{site_domain}/export.zip?period=7d" download>Export</a>' in page.text


def test_only_text_cells_are_neutralised():
    assert neutralise("\rx") == "'\rx"
    assert neutralise("/=x") == "/=x"
    assert neutralise(-2) == -2  # a number is a number, not a formula
