"""Every tab of every breakdown card on real chDB, against numbers worked out by hand.

Five visits on 18 November 2026 (UTC site), one visitor each:

    A  Google (organic)                 DE Bavaria/Munich          Firefox 132 Windows 11  Desktop
       / → /pricing                                                                     (Desktop)
    B  Facebook, utm cpc/facebook/winter/banner/analytics
                                        US California/San Francisco Chrome 131 Android 14 Mobile
       /pricing                                                                          (Mobile)
    C  ChatGPT (utm_source chatgpt.com) US California/Los Angeles  Chrome 131 macOS 15    Desktop
       /blog/a → /                                                                       (Laptop)
    D  direct                           FR (no region or city)     Safari 18  iOS 18      Mobile
       /                                                                                 (Mobile)
    E  Newsletter, utm email/newsletter/winter
                                        (no country)               Firefox 132 Linux      Desktop
       /blog/a                                                                (no screen size)

(Screen sizes in brackets.)

Unfiltered, the tabs with a rollup read it; with a filter that keeps everything they read the
raw events, and must give the same rows.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest

from app.analytics.queries import stats
from app.analytics.queries.channels import CHANNEL, PARAMS, classify
from app.analytics.queries.filters import Filter
from app.analytics.queries.periods import resolve_period
from app.dashboard.cards import CARDS, Options
from app.services import Services
from tests.integration.site_rows import site_id_of

pytestmark = pytest.mark.db

NOW = dt.datetime(2026, 11, 20, 15, 30, tzinfo=dt.UTC)
DAY = dt.datetime(2026, 11, 18, tzinfo=dt.UTC)
COLUMNS = (
    "referrer_source", "referrer", "utm_medium", "utm_source", "utm_campaign", "utm_content",
    "utm_term", "country_code", "region", "city", "browser", "browser_version", "os",
    "os_version", "device", "screen_size",
)  # fmt: skip
VISITS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "A": (("Google", "https://www.google.com/", "", "", "", "", "", "DE", "Bavaria", "Munich",
           "Firefox", "132", "Windows", "11", "Desktop", "Desktop"), ("/", "/pricing")),
    "B": (("Facebook", "https://facebook.com/", "cpc", "facebook", "winter", "banner", "analytics",
           "US", "California", "San Francisco", "Chrome", "131", "Android", "14", "Mobile", "Mobile"),
          ("/pricing",)),
    "C": (("ChatGPT", "", "", "chatgpt.com", "", "", "", "US", "California", "Los Angeles",
           "Chrome", "131", "macOS", "15", "Desktop", "Laptop"), ("/blog/a", "/")),
    "D": (("", "", "", "", "", "", "", "FR", "", "", "Safari", "18", "iOS", "18", "Mobile",
           "Mobile"),
          ("/",)),
    "E": (("Newsletter", "", "email", "newsletter", "winter", "", "", "", "", "", "Firefox", "132",
           "Linux", "", "Desktop", ""), ("/blog/a",)),
}  # fmt: skip

EXPECTED: dict[tuple[str, str], list[tuple[str, int]]] = {
    ("pages", "pages"): [("/", 3), ("/blog/a", 2), ("/pricing", 2)],
    ("pages", "entry"): [("/", 2), ("/blog/a", 2), ("/pricing", 1)],
    ("pages", "exit"): [("/", 2), ("/pricing", 2), ("/blog/a", 1)],
    ("sources", "sources"): [("", 1), ("ChatGPT", 1), ("Facebook", 1), ("Google", 1),
                             ("Newsletter", 1)],
    ("sources", "channels"): [("AI Assistants", 1), ("Direct", 1), ("Email", 1),
                              ("Organic Search", 1), ("Paid Social", 1)],
    ("sources", "referrers"): [("", 3), ("https://facebook.com/", 1), ("https://www.google.com/", 1)],
    ("sources", "utm_medium"): [("", 3), ("cpc", 1), ("email", 1)],
    ("sources", "utm_source"): [("", 2), ("chatgpt.com", 1), ("facebook", 1), ("newsletter", 1)],
    ("sources", "utm_campaign"): [("", 3), ("winter", 2)],
    ("sources", "utm_content"): [("", 4), ("banner", 1)],
    ("sources", "utm_term"): [("", 4), ("analytics", 1)],
    ("locations", "countries"): [("US", 2), ("", 1), ("DE", 1), ("FR", 1)],
    ("locations", "regions"): [("", 2), ("California", 2), ("Bavaria", 1)],
    ("locations", "cities"): [("", 2), ("Los Angeles", 1), ("Munich", 1), ("San Francisco", 1)],
    ("devices", "browsers"): [("Chrome", 2), ("Firefox", 2), ("Safari", 1)],
    ("devices", "browser_versions"): [("131", 2), ("132", 2), ("18", 1)],
    ("devices", "os"): [("Android", 1), ("Linux", 1), ("Windows", 1), ("iOS", 1), ("macOS", 1)],
    ("devices", "os_versions"): [("", 1), ("11", 1), ("14", 1), ("15", 1), ("18", 1)],
    ("devices", "devices"): [("Desktop", 3), ("Mobile", 2)],
    ("devices", "screen_sizes"): [("Mobile", 2), ("", 1), ("Desktop", 1), ("Laptop", 1)],
}  # fmt: skip
KEEP_ALL = Filter("hostname", "is_not", ("nowhere.example",))


def _events(site: int) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for number, (values, pages) in enumerate(VISITS.values(), start=1):
        for step, path in enumerate(pages):
            events.append(
                {
                    **dict(zip(COLUMNS, values, strict=True)),
                    "site_id": site,
                    "event_id": site << 32 | len(events),
                    "visitor_id": number,
                    "session_id": 100 * number,
                    "timestamp": int(DAY.replace(hour=8 + number, minute=step).timestamp()),
                    "name": "pageview",
                    "pathname": path,
                    "hostname": "example.com",
                    "session_start": int(step == 0),
                    "session_bounce": (1 if len(pages) == 1 else 0) if step == 0 else 0,
                    "session_seconds": 60 * step,
                    "props": {},
                }
            )
    return events


def insert(services: Services, events: list[dict[str, Any]]) -> None:
    columns = list(events[0])
    data = [[event[column] for event in events] for column in columns]
    services.clickhouse.insert("events", columns, data, token=f"tabs:{uuid.uuid4()}")


@pytest.fixture
async def site_id(services: Services, site_domain: str) -> int:
    found = await site_id_of(services, site_domain)
    insert(services, _events(found))
    return found


def _tab(services: Services, site: int, card: str, tab: str, *filters: Filter) -> list[Any]:
    spec = CARDS[card]
    scope = stats.Scope(site, resolve_period("7d", "UTC", NOW), filters)
    data = spec.build(services.clickhouse, scope, Options(tab=spec.tab(tab)))
    return [(row["value"], row["visitors"]) for row in data["rows"]]


def test_every_breakdown_tab_is_listed_here():
    # (the tabs of one event's property are in test_properties_and_links)
    tabs = {(c.name, tab.name) for c in CARDS.values() for tab in c.tabs if tab.event is None}
    assert tabs == set(EXPECTED)


@pytest.mark.parametrize(("card", "tab"), list(EXPECTED))
async def test_each_tab_gives_the_hand_computed_rows(services, site_id, card, tab):
    assert _tab(services, site_id, card, tab) == EXPECTED[card, tab]
    # the raw events (what a filtered view reads) give the same rows as the rollups
    assert _tab(services, site_id, card, tab, KEEP_ALL) == EXPECTED[card, tab]


@pytest.mark.parametrize(
    ("filters", "card", "tab", "expected"),
    [
        ([Filter("channel", "is", ("AI Assistants",))], "pages", "pages", [("/", 1), ("/blog/a", 1)]),
        ([Filter("channel", "is_not", ("Direct", "Email"))], "devices", "devices",
         [("Desktop", 2), ("Mobile", 1)]),
        ([Filter("channel", "contains", ("social",))], "locations", "cities",
         [("San Francisco", 1)]),
        ([Filter("country", "is", ("US",))], "sources", "channels",
         [("AI Assistants", 1), ("Paid Social", 1)]),
        ([Filter("channel", "is_not", ("Direct",))], "sources", "channels",
         [("AI Assistants", 1), ("Email", 1), ("Organic Search", 1), ("Paid Social", 1)]),
        ([Filter("page", "is", ("/pricing",))], "pages", "entry", [("/", 1), ("/pricing", 1)]),
        ([Filter("utm_campaign", "is", ("winter",))], "sources", "utm_medium",
         [("cpc", 1), ("email", 1)]),
    ],
)  # fmt: skip
async def test_tabs_obey_filters_including_one_on_the_channel(
    services, site_id, filters, card, tab, expected
):
    assert _tab(services, site_id, card, tab, *filters) == expected


async def test_the_channel_sql_agrees_with_the_python_rules(services, site_domain):
    cases = [
        ("", "", ""), ("Google", "", ""), ("google", "cpc", "google"), ("Facebook", "cpc", "fb"),
        ("Reddit", "", ""), ("Weekly", "email", "weekly"), ("Newsletter", "", "newsletter"),
        ("ChatGPT", "", "chatgpt.com"), ("Perplexity", "", ""), ("claude.ai", "", ""),
        ("Gemini", "", ""), ("Copilot", "", ""), ("blog.example.org", "", ""),
        ("Partner", "referral", "partner"), ("x", "paid_social", "x"), ("Bing", "PPC", "bing"),
        ("Ünïcode", "", ""), ("'; DROP TABLE events; --", "cpc", ""),
    ]  # fmt: skip
    site = await site_id_of(services, site_domain)
    events = [
        {
            "site_id": site, "event_id": site << 32 | index, "visitor_id": index + 1,
            "session_id": index + 1, "timestamp": int(DAY.timestamp()), "name": "pageview",
            "pathname": f"/{index}", "referrer_source": source, "utm_medium": medium,
            "utm_source": utm_source,
        }
        for index, (source, medium, utm_source) in enumerate(cases)
    ]  # fmt: skip
    insert(services, events)
    rows = services.clickhouse.query(
        "test_channels",
        f"SELECT {CHANNEL} AS channel FROM events WHERE site_id = {{site_id:UInt32}} "
        "ORDER BY visitor_id",
        {**PARAMS, "site_id": site},
    )
    assert [row["channel"] for row in rows] == [classify(*case) for case in cases]
    assert len({row["channel"] for row in rows}) == 8  # every channel came out once at least
