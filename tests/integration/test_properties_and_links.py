"""The Properties card and the Outbound links card (outbound clicks, file downloads) on real
chDB, against numbers worked out by hand.

18 November 2026, UTC site, one visit each:

    A  / → Signup {plan: pro, source: ad}   → Outbound Link: Click {url: https://github.com/x}
    B  / → Signup {plan: free}              → File Download {url: https://s.example/a.pdf}
    C  / → Signup {plan: pro}               → Outbound Link: Click {url: https://github.com/x}
                                            → Outbound Link: Click {url: https://docs.example/}
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Any

import pytest

from app.analytics.queries import stats
from app.analytics.queries.filters import Filter
from app.analytics.queries.periods import resolve_period
from app.dashboard.cards import CARDS, FILE_DOWNLOAD, OUTBOUND_LINK, Options
from app.services import Services
from tests.integration.site_rows import site_id_of

pytestmark = pytest.mark.db

NOW = dt.datetime(2026, 11, 20, 15, 30, tzinfo=dt.UTC)
DAY = dt.datetime(2026, 11, 18, tzinfo=dt.UTC)
GITHUB, DOCS, PDF = "https://github.com/x", "https://docs.example/", "https://s.example/a.pdf"
VISITS: dict[int, list[tuple[str, dict[str, str]]]] = {
    1: [("Signup", {"plan": "pro", "source": "ad"}), (OUTBOUND_LINK, {"url": GITHUB})],
    2: [("Signup", {"plan": "free"}), (FILE_DOWNLOAD, {"url": PDF})],
    3: [("Signup", {"plan": "pro"}), (OUTBOUND_LINK, {"url": GITHUB}),
        (OUTBOUND_LINK, {"url": DOCS})],
}  # fmt: skip
URL = "period=custom&from=2026-11-18&to=2026-11-18"


def _events(site: int) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for visitor, custom in VISITS.items():
        for step, (name, props) in enumerate([("pageview", {}), *custom]):
            events.append(
                {
                    "site_id": site,
                    "event_id": site << 32 | len(events),
                    "visitor_id": visitor,
                    "session_id": 100 * visitor,
                    "timestamp": int(DAY.replace(hour=8 + visitor, minute=step).timestamp()),
                    "name": name,
                    "pathname": "/",
                    "hostname": "example.com",
                    "session_start": int(step == 0),
                    "session_bounce": int(step == 0),
                    "session_seconds": 0,
                    "props": props,
                }
            )
    return events


@pytest.fixture
async def site_id(services: Services, site_domain: str) -> int:
    found = await site_id_of(services, site_domain)
    events = _events(found)
    columns = list(events[0])
    data = [[event[column] for event in events] for column in columns]
    services.clickhouse.insert("events", columns, data, token=f"props:{uuid.uuid4()}")
    return found


def _card(services: Services, site: int, card: str, tab: str | None, *filters: Filter) -> Any:
    spec = CARDS[card]
    scope = stats.Scope(site, resolve_period("7d", "UTC", NOW), filters)
    return spec.build(services.clickhouse, scope, Options(tab=spec.tab(tab)))


def _rows(data: dict[str, Any]) -> list[tuple[str, int]]:
    return [(row["value"], row["visitors"]) for row in data["rows"]]


async def test_the_properties_card_offers_every_property_and_breaks_one_down(services, site_id):
    first = _card(services, site_id, "properties", None)
    # url: A, B, C; plan: A, B, C; source: A — the most visitors first, then by name
    assert first["names"] == ["plan", "url", "source"]
    assert first["tab"] == "plan"
    assert _rows(first) == [("pro", 2), ("free", 1)]
    assert _rows(_card(services, site_id, "properties", "source")) == [("ad", 1)]
    # The view's filters apply: a property filter keeps the events it matches (B's Signup,
    # which carries only its plan), a page filter the events on that page.
    free = _card(services, site_id, "properties", None, Filter("prop:plan", "is", ("free",)))
    assert free["names"] == ["plan"]
    assert _rows(free) == [("free", 1)]
    elsewhere = _card(services, site_id, "properties", None, Filter("page", "is", ("/else",)))
    assert (elsewhere["names"], elsewhere["rows"]) == ([], [])
    clicks = _card(services, site_id, "properties", None, Filter("event", "is", (OUTBOUND_LINK,)))
    assert (clicks["names"], _rows(clicks)) == (["url"], [(GITHUB, 2), (DOCS, 1)])


async def test_outbound_links_and_file_downloads_are_each_their_events_urls(services, site_id):
    assert _rows(_card(services, site_id, "links", "outbound")) == [(GITHUB, 2), (DOCS, 1)]
    assert _rows(_card(services, site_id, "links", "downloads")) == [(PDF, 1)]
    tabs = {(c.name, tab.name) for c in CARDS.values() for tab in c.tabs if tab.event}
    assert tabs == {("links", "outbound"), ("links", "downloads")}


async def test_the_cards_through_http_with_details_and_a_bad_property(
    owner_client, site_domain, site_id
):
    card = await owner_client.get(f"/{site_domain}/cards/properties?{URL}")
    assert card.status_code == 200
    options = re.findall(r'<option value="([^"]+)"[^>]*>([^<]+)</option>', card.text)
    assert [name for _, name in options] == ["plan", "url", "source"]
    assert all("/cards/properties?" in link and "t=properties%3A" in link for link, _ in options)
    assert "Filter by pro" in card.text
    chosen = await owner_client.get(f"/{site_domain}/cards/properties?{URL}&tab=url")
    assert f"Filter by {GITHUB}" in chosen.text
    details = await owner_client.get(f"/{site_domain}/cards/properties/details?{URL}&tab=plan")
    assert details.status_code == 200
    assert "pro" in details.text
    links = await owner_client.get(f"/{site_domain}/cards/links/details?{URL}&tab=outbound")
    assert links.status_code == 200
    assert DOCS in links.text
    assert PDF not in links.text
    bad = await owner_client.get(f"/{site_domain}/cards/properties?{URL}&tab=a:b")
    assert bad.status_code == 400


async def test_a_view_without_properties_says_how_to_send_them(owner_client, site_domain):
    card = await owner_client.get(f"/{site_domain}/cards/properties?period=7d")
    assert card.status_code == 200
    assert "No custom properties in this period" in card.text
    links = await owner_client.get(f"/{site_domain}/cards/links?period=7d")
    assert "Nothing to show for this period." in links.text


async def test_the_dashboards_url_keeps_each_cards_tab(owner_client, site_domain, site_id):
    page = await owner_client.get(f"/{site_domain}?{URL}&t=links:downloads&t=properties:url")
    assert page.status_code == 200
    loads = re.findall(r'hx-get="([^"]*/cards/(?:links|properties)\?[^"]*)"', page.text)
    assert len(loads) == 2
    assert all("t=links%3Adownloads" in url and "t=properties%3Aurl" in url for url in loads)
    card = await owner_client.get(f"/{site_domain}/cards/links?{URL}&t=links:downloads")
    assert f"Filter by {PDF}" in card.text
    assert 'aria-selected="true" tabindex="0" data-tab-url' in card.text
    # each tab's partial and page URL carry the card on that tab
    assert (
        f'data-page-url="/{site_domain}?{URL.replace("&", "&amp;")}&amp;t=links%3Aoutbound"'
        in card.text
    )
    for bad in ("t=links:nope", "t=nocard:x", "t=links"):
        assert (await owner_client.get(f"/{site_domain}?{URL}&{bad}")).status_code == 400
