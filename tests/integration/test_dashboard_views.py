"""The dashboard's view in its URL: ranges, filters from card rows, comparison, bad input."""

from __future__ import annotations

from urllib.parse import quote

import html5lib
import pytest

from app.dashboard.cards import CARDS
from app.dashboard.page import RANGE_GROUPS, SHORTCUTS
from tests.integration.helpers import post_event

pytestmark = pytest.mark.db
HTML = {"Accept": "text/html"}


async def _traffic(client, services, domain: str) -> None:
    for path, referrer in (("/", "https://www.google.com/"), ("/pricing", None), ("/a", None)):
        body = {"n": "pageview", "u": f"https://{domain}{path}", "d": domain, "r": referrer}
        assert (await post_event(client, body)).status_code == 202
    services.flusher.drain()


def _links(markup: str) -> list[str]:
    tree = html5lib.parse(markup, namespaceHTMLElements=False)
    return [node.attrib["href"] for node in tree.iter("a") if "href" in node.attrib]


async def test_every_range_renders_its_page_and_cards(owner_client, client, services, site_domain):
    await _traffic(client, services, site_domain)
    for key in [key for group in RANGE_GROUPS for key in group]:
        page = await owner_client.get(f"/{site_domain}?period={key}", headers=HTML)
        assert page.status_code == 200, key
        for name in CARDS:
            card = await owner_client.get(f"/{site_domain}/cards/{name}?period={key}")
            assert card.status_code == 200, (key, name)
    custom = f"/{site_domain}/cards/overview?period=custom&from=2026-01-01&to=2026-01-31"
    assert (await owner_client.get(custom)).status_code == 200


async def test_a_card_row_links_to_the_filtered_view_and_a_chip_removes_it(
    owner_client, client, services, site_domain
):
    await _traffic(client, services, site_domain)
    pages = await owner_client.get(f"/{site_domain}/cards/pages?period=today")
    link = f"/{site_domain}?period=today&f=page%3Ais%3A%2Fpricing"
    assert link in _links(pages.text)
    page = await owner_client.get(link, headers=HTML)
    assert "Page is /pricing" in page.text
    assert f"/{site_domain}?period=today" in _links(page.text)  # the chip's remove link
    card = await owner_client.get(f"/{site_domain}/cards/overview?period=today&f=page:is:/pricing")
    assert 'data-metric="pageviews">1</span>' in card.text
    assert 'data-metric="visitors">1</span>' in card.text
    unfiltered = await owner_client.get(f"/{site_domain}/cards/overview?period=today")
    assert 'data-metric="pageviews">3</span>' in unfiltered.text


async def test_comparison_shows_the_change_and_a_second_line(
    owner_client, client, services, site_domain
):
    await _traffic(client, services, site_domain)
    card = await owner_client.get(
        f"/{site_domain}/cards/overview?period=7d&comparison=previous_period"
    )
    assert card.status_code == 200
    assert 'data-change="visitors"' in card.text
    assert 'class="compare-line"' in card.text
    assert "new" in card.text  # nothing the week before
    plot = await owner_client.get(f"/{site_domain}/cards/overview?period=7d&metric=pageviews")
    assert "Pageviews" in plot.text


@pytest.mark.parametrize(
    "query",
    [
        "period=forever",
        "period=custom&from=2026-02-01&to=2026-01-01",
        "period=custom&from=yesterday&to=2026-01-01",
        "period=custom",
        "period=7d&interval=minute",
        "comparison=sideways",
        "f=planet:is:earth",
        "f=page:resembles:/",
        "f=page",
        "f=page:matches:(",
        "metric=profit",
        "period=7d&period=30d",
        "f=" + quote("page:is:" + "x" * 5000),
    ],
)
async def test_bad_views_are_a_clear_400(owner_client, site_domain, query):
    for path in (f"/{site_domain}", f"/{site_domain}/cards/overview", f"/{site_domain}/export.zip"):
        response = await owner_client.get(f"{path}?{query}", headers=HTML)
        assert response.status_code == 400, (path, query, response.text[:300])


async def test_filter_values_are_shown_escaped(owner_client, site_domain):
    hostile = quote('page:is:"><script>alert(1)</script>')
    page = await owner_client.get(f"/{site_domain}?f={hostile}", headers=HTML)
    assert page.status_code == 200
    assert "<script>alert(1)" not in page.text
    assert "&lt;script&gt;alert(1)" in page.text


async def test_the_help_lists_the_shortcuts_and_what_the_numbers_mean(owner_client, site_domain):
    page = await owner_client.get(f"/{site_domain}", headers=HTML)
    tree = html5lib.parse(page.text, namespaceHTMLElements=False)
    [help_menu] = [node for node in tree.iter("details") if "shortcuts" in node.get("class", "")]
    terms = ["".join(dt.itertext()).strip() for dt in help_menu.iter("dt")]
    assert set(SHORTCUTS.values()) | {"X"} <= set(terms)
    assert {"T", "Y", "D", "W", "M", "A"} <= set(SHORTCUTS.values())
    for metric in ("Unique visitors", "Bounce rate", "Time on page", "Scroll depth", "Engagement"):
        assert metric in terms
    text = " ".join(help_menu.itertext())
    assert "never create a visit or a page view" in text
    assert "never turn a bounce into a non-bounce" in text
