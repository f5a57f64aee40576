"""Tabs as URL-addressable partials and the Details list: search, sort, pages, bad input,
and the same on public and shared (read-only) dashboards."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Any
from urllib.parse import quote, unquote

import html5lib
import pytest
from sqlmodel import select

from app.dashboard.cards import CARDS
from app.models import Site
from app.services import Services
from app.sites import sharing
from tests.conftest import make_client
from tests.integration.site_rows import site_id_of

pytestmark = pytest.mark.db
HTML = {"Accept": "text/html"}
PAGES = 150  # /p000 … /p149: one visitor each, /p<n> viewed n % 5 + 1 times


@pytest.fixture
async def many_pages(services: Services, site_domain: str) -> int:
    site = await site_id_of(services, site_domain)
    when = int((dt.datetime.now(dt.UTC) - dt.timedelta(days=2)).timestamp())
    rows = [(number, view) for number in range(PAGES) for view in range(number % 5 + 1)]
    columns = ["site_id", "event_id", "visitor_id", "session_id", "timestamp", "name",
               "pathname", "session_start", "country_code", "referrer_source"]  # fmt: skip
    data: list[list[Any]] = [
        [site] * len(rows),
        [site << 32 | index for index in range(len(rows))],
        [number + 1 for number, _ in rows],
        [number + 1 for number, _ in rows],
        [when + view for _, view in rows],
        ["pageview"] * len(rows),
        [f"/p{number:03d}" for number, _ in rows],
        [int(view == 0) for _, view in rows],
        ["DE" if number < 100 else "GB" for number, _ in rows],
        ["Google" if number % 2 else "" for number, _ in rows],
    ]
    services.clickhouse.insert("events", columns, data, token=f"details:{uuid.uuid4()}")
    return site


def _labels(markup: str) -> list[str]:
    tree = html5lib.parse(markup, namespaceHTMLElements=False)
    return [
        "".join(node.itertext()).strip()
        for node in tree.iter("a")
        if "label" in node.attrib.get("class", "").split()
    ]


def _links(markup: str, rel: str) -> list[str]:
    tree = html5lib.parse(markup, namespaceHTMLElements=False)
    return [node.attrib["href"] for node in tree.iter("a") if node.attrib.get("rel") == rel]


def _total(markup: str) -> int:
    found = re.search(r'data-total="(\d+)"', markup)
    return int(found.group(1)) if found else 0


async def test_each_tab_is_its_own_partial_with_an_accessible_tablist(
    owner_client, many_pages, site_domain
):
    for card in (spec for spec in CARDS.values() if spec.tabs):
        for tab in card.tabs:
            url = f"/{site_domain}/cards/{card.name}?period=30d&tab={tab.name}"
            response = await owner_client.get(url)
            assert response.status_code == 200, url
            tree = html5lib.parse(response.text, namespaceHTMLElements=False)
            (tablist,) = [n for n in tree.iter() if n.attrib.get("role") == "tablist"]
            buttons = [n for n in tablist.iter() if n.attrib.get("role") == "tab"]
            assert len(buttons) == len(card.tabs)
            selected = [n for n in buttons if n.attrib["aria-selected"] == "true"]
            assert [n.attrib["id"] for n in selected] == [f"tab-{card.name}-{tab.name}"]
            assert selected[0].attrib["tabindex"] == "0"
            assert all(n.attrib["tabindex"] == "-1" for n in buttons if n not in selected)
            (panel,) = [n for n in tree.iter() if n.attrib.get("role") == "tabpanel"]
            assert panel.attrib["aria-labelledby"] == f"tab-{card.name}-{tab.name}"
            # each tab button names the partial it loads, keeping the view
            urls = [unquote(n.attrib["data-tab-url"]) for n in buttons]
            assert all("period=30d" in u and "/cards/" + card.name in u for u in urls)
            assert f"/cards/{card.name}/details?period=30d&amp;tab={tab.name}" in response.text


async def test_countries_read_by_name_with_their_code(owner_client, many_pages, site_domain):
    card = await owner_client.get(f"/{site_domain}/cards/locations?period=30d")
    assert _labels(card.text)[:2] == ["🇩🇪 Germany (DE)", "🇬🇧 United Kingdom (GB)"]
    assert 'class="decoration" aria-hidden="true">🇩🇪</span>' in card.text


async def test_regions_and_cities_say_when_no_geo_database_is_configured(
    owner_client, many_pages, site_domain
):
    for tab in ("regions", "cities"):
        card = await owner_client.get(f"/{site_domain}/cards/locations?period=30d&tab={tab}")
        assert "none is configured" in card.text
        assert "GEOIP_DB" in card.text
    countries = await owner_client.get(f"/{site_domain}/cards/locations?period=30d")
    assert "none is configured" not in countries.text


async def test_details_pages_through_every_row_in_pages_of_100(
    owner_client, many_pages, site_domain
):
    base = f"/{site_domain}/cards/pages/details?period=30d&tab=pages"
    first = await owner_client.get(base, headers=HTML)
    assert first.status_code == 200
    assert _total(first.text) == PAGES
    rows = _labels(first.text)
    assert rows == [f"/p{number:03d}" for number in range(100)]  # all 1 visitor: by value
    assert "1–100 of 150" in first.text
    assert _links(first.text, "prev") == []
    (after,) = _links(first.text, "next")
    assert "page=2" in after
    assert "period=30d" in after
    second = await owner_client.get(after, headers=HTML)
    assert _labels(second.text) == [f"/p{number:03d}" for number in range(100, PAGES)]
    assert _links(second.text, "next") == []
    assert "page=2" not in _links(second.text, "prev")[0]
    assert "Page 2 of 2" in second.text


async def test_details_sorts_by_a_metric_column(owner_client, many_pages, site_domain):
    url = f"/{site_domain}/cards/pages/details?period=30d&tab=pages&sort=pageviews"
    page = await owner_client.get(url, headers=HTML)
    labels = _labels(page.text)
    assert labels[:3] == ["/p004", "/p009", "/p014"]  # 5 views each, then by value
    assert len(labels) == 100
    assert 'aria-sort="descending"><a href="' in page.text


@pytest.mark.parametrize(
    ("search", "expected"),
    [
        ("p14", ["/p140", "/p141", "/p142", "/p143", "/p144", "/p145", "/p146", "/p147",
                 "/p148", "/p149"]),
        ("P149", ["/p149"]),  # case-insensitive
        ("'; DROP TABLE events; --", []),
        ("{search:String}", []),
        ("%", []),
        ("_", []),
        ("\\", []),
        ("/p\u00fc\U0001f642", []),
        ("x" * 200, []),
    ],
)  # fmt: skip
async def test_details_search_is_a_bound_contains(
    owner_client, many_pages, site_domain, search, expected
):
    url = f"/{site_domain}/cards/pages/details?period=30d&tab=pages&q={quote(search)}"
    page = await owner_client.get(url, headers=HTML)
    assert page.status_code == 200, page.text[:300]
    assert _labels(page.text) == expected
    assert _total(page.text) == len(expected)
    if not expected:
        assert "Nothing matches" in page.text
    after = await owner_client.get(f"/{site_domain}/cards/pages/details?period=30d")
    assert _total(after.text) == PAGES  # the table is still there


async def test_details_of_countries_finds_them_by_name_or_code(
    owner_client, many_pages, site_domain
):
    base = f"/{site_domain}/cards/locations/details?period=30d&tab=countries"
    for search in ("kingdom", "GB", "united"):
        page = await owner_client.get(f"{base}&q={search}", headers=HTML)
        assert _labels(page.text) == ["🇬🇧 United Kingdom (GB)"], search


async def test_details_keep_the_filters_and_a_row_filters_the_dashboard(
    owner_client, many_pages, site_domain
):
    url = f"/{site_domain}/cards/sources/details?period=30d&tab=channels&f=page:contains:p00"
    page = await owner_client.get(url, headers=HTML)
    assert _labels(page.text) == ["Direct", "Organic Search"]
    assert f"/{site_domain}?period=30d&amp;f=page%3Acontains%3Ap00&amp;f=channel%3Ais%3ADirect" in (
        page.text
    )
    assert "Page contains p00" in page.text  # the filter is named on the page
    empty = await owner_client.get(url + "&q=nothing-like-this", headers=HTML)
    assert "Nothing matches" in empty.text


@pytest.mark.parametrize(
    "query",
    [
        "tab=planets",
        "tab=PAGES",
        "tab=pages&tab=entry",
        "tab=pages&period=forever",
        "tab=pages&sort=bounce_rate",
        "tab=pages&sort=visitors&sort=pageviews",
        "tab=pages&page=0",
        "tab=pages&page=two",
        "tab=pages&page=-1",
        "tab=pages&q=" + "x" * 201,
    ],
)
async def test_bad_details_requests_are_a_clear_400(owner_client, site_domain, query):
    response = await owner_client.get(f"/{site_domain}/cards/pages/details?{query}", headers=HTML)
    assert response.status_code == 400, (query, response.text[:300])
    assert "<h1>" in response.text


@pytest.mark.parametrize("query", ["tab=planets", "tab=PAGES", "tab=pages&tab=entry"])
async def test_an_unknown_tab_of_a_card_is_a_400(owner_client, site_domain, query):
    response = await owner_client.get(f"/{site_domain}/cards/pages?{query}")
    assert response.status_code == 400
    assert "tab" in response.json()["error"]


async def test_a_card_without_tabs_has_neither_tabs_nor_details(owner_client, site_domain):
    assert (await owner_client.get(f"/{site_domain}/cards/overview?tab=pages")).status_code == 400
    assert (await owner_client.get(f"/{site_domain}/cards/overview/details")).status_code == 404


async def test_details_on_public_and_shared_dashboards_are_read_only(
    services, owner, many_pages, site_domain
):
    async with services.sessions() as session:
        site = (await session.exec(select(Site).where(Site.domain == site_domain))).one()
    await sharing.set_public(services, site, True)
    link = await sharing.create_link(services, site, owner, "Board")
    async with make_client(services, scheme="https") as anonymous:
        for base in (f"/public/{site_domain}", f"/share/{link.slug}"):
            url = f"{base}/cards/pages/details?period=30d&tab=pages&sort=pageviews&page=2"
            page = await anonymous.get(url, headers=HTML)
            assert page.status_code == 200, base
            assert _total(page.text) == PAGES
            assert len(_labels(page.text)) == 50
            assert "Log out" not in page.text
            assert "csrf" not in page.text.lower()
            assert all(href.startswith(base) for href in _links(page.text, "prev"))
            card = await anonymous.get(f"{base}/cards/sources?period=30d&tab=channels")
            assert _labels(card.text) == ["Direct", "Organic Search"]
            assert f"{base}/cards/sources/details?period=30d&amp;tab=channels" in card.text
            bad = await anonymous.get(f"{base}/cards/pages/details?tab=nope", headers=HTML)
            assert bad.status_code == 400


async def test_details_of_a_protected_link_ask_for_its_password(
    services, owner, many_pages, site_domain
):
    async with services.sessions() as session:
        site = (await session.exec(select(Site).where(Site.domain == site_domain))).one()
    link = await sharing.create_link(services, site, owner, "Board", "a long shared secret")
    async with make_client(services, scheme="https") as anonymous:
        url = f"/share/{link.slug}/cards/pages/details?period=30d&tab=pages"
        page = await anonymous.get(url, headers=HTML)
    assert page.status_code == 200
    assert 'type="password"' in page.text
    assert "/p000" not in page.text
    assert _total(page.text) == 0
