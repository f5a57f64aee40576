"""The tracker's engagement beacons and opt-in file downloads in a real browser.

A beacon is sent for the page being left, before the next page view of an SPA navigation and
when the page is hidden, with the deepest scroll reached and the engaged time since the page's
previous beacon; one per hide until the page is visible again. They reach the `engagement`
table and never the events. File downloads are sent only by a script tag that opts in.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page, Request

from tests.e2e.conftest import OWNER_EMAIL
from tests.e2e.support import StaticSite, UrsaInstance, wait_until
from tests.e2e.test_tracker import event_name, is_event

pytestmark = pytest.mark.e2e

ENGAGEMENT_SITE = "engagement.e2e.test"
DOWNLOADS_SITE = "downloads.e2e.test"
DWELL_MS = 400
# A page four windows tall (the viewport is 900 px), an SPA link, and a way to hide the page
# as the browser does when its tab goes to the background (headless Chromium never hides one).
LONG_PAGE = """<!doctype html><html><head><title>Long</title>
<script defer data-domain="{domain}" src="{origin}/js/script.js"></script>
<style>body {{ margin: 0 }} #spa {{ position: fixed }} #body {{ height: 3600px }}</style></head>
<body><a id="spa" href="/article/2">Next article</a><div id="body"></div>
<script>
document.getElementById('spa').addEventListener('click', (event) => {{
  event.preventDefault();
  history.pushState({{}}, '', '/article/2');
}});
window.setHidden = (hidden) => {{
  Object.defineProperty(document, 'hidden', {{value: hidden, configurable: true}});
  Object.defineProperty(document, 'visibilityState',
    {{value: hidden ? 'hidden' : 'visible', configurable: true}});
  document.dispatchEvent(new Event('visibilitychange'));
}};
</script></body></html>"""
DOWNLOADS_PAGE = """<!doctype html><html><head><title>Downloads</title>
<script defer data-domain="{domain}" src="{origin}/js/script.js"{attribute}></script></head>
<body><a id="pdf" href="/files/report.pdf">Report</a>
<a id="csv" href="/files/data.CSV?v=2">Data</a>
<script>document.addEventListener('click', (event) => event.preventDefault());</script>
</body></html>"""


@pytest.fixture(scope="module")
def engagement_sites(ursa: UrsaInstance, static_site: StaticSite) -> dict[str, int]:
    ursa.add_sites(ENGAGEMENT_SITE, DOWNLOADS_SITE, owner=OWNER_EMAIL)
    static_site.extra_pages["/article/1"] = LONG_PAGE.format(
        domain=ENGAGEMENT_SITE, origin=ursa.url
    )
    pages = {"/downloads/off": "", "/downloads/on": " data-file-downloads"}
    pages["/downloads/some"] = ' data-file-downloads="zip, csv"'
    for path, attribute in pages.items():
        static_site.extra_pages[path] = DOWNLOADS_PAGE.format(
            domain=DOWNLOADS_SITE, origin=ursa.url, attribute=attribute
        )
    return {domain: ursa.site_ids[domain] for domain in (ENGAGEMENT_SITE, DOWNLOADS_SITE)}


def body(request: Request) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(request.post_data or "{}")
    return parsed


def test_beacons_on_spa_navigation_and_page_hide(
    context: BrowserContext,
    ursa: UrsaInstance,
    static_site: StaticSite,
    engagement_sites: dict[str, int],
) -> None:
    sent: list[dict[str, Any]] = []
    context.on(
        "request",
        lambda r: sent.append(body(r)) if r.url == f"{ursa.url}/api/event" else None,
    )
    page = context.new_page()
    opened = time.monotonic()
    with page.expect_response(is_event(ursa, "pageview")):
        page.goto(f"{static_site.url}/article/1")
    assert page.evaluate("document.hasFocus()") is True  # engaged time counts while focused
    page.evaluate("window.scrollTo(0, 1800)")  # bottom of the window at 2700 of 3600 px: 75%
    page.wait_for_function("window.scrollY >= 1800")
    page.wait_for_timeout(DWELL_MS)

    with page.expect_request(lambda r: event_name(r) == "engagement") as first:
        page.click("#spa")
    left = (time.monotonic() - opened) * 1000
    beacon = body(first.value)
    assert beacon["u"] == f"{static_site.url}/article/1"  # the page being left
    assert beacon["sd"] == 75
    assert DWELL_MS <= beacon["e"] <= left
    page.wait_for_function("location.pathname == '/article/2'")

    # Hidden: one beacon for the new page; hidden again without being seen, none; seen and
    # hidden, another with the time since the first.
    with page.expect_request(lambda r: event_name(r) == "engagement") as hidden:
        page.evaluate("window.setHidden(true)")
    second = body(hidden.value)
    assert second["u"] == f"{static_site.url}/article/2"
    assert second["sd"] == 75  # the SPA page starts where the window is
    page.wait_for_timeout(DWELL_MS)  # hidden: not engaged
    page.evaluate("window.setHidden(false); window.setHidden(true); window.setHidden(true)")
    with page.expect_response(is_event(ursa, "Marker")):
        page.evaluate("window.ursa('Marker')")
    seen = [event for event in sent if event["n"] != "ursa:performance"]  # the first hide's
    names = [event["n"] for event in seen]
    assert names == ["pageview", "engagement", "pageview", "engagement", "engagement", "Marker"]
    assert seen[2]["u"] == f"{static_site.url}/article/2"
    third = seen[4]
    assert third["u"] == second["u"]
    assert third["e"] < DWELL_MS  # only the moment it was seen: not the time hidden, nor before

    # Leaving the page (pagehide) sends the last one; the server stores every beacon apart.
    page.evaluate("window.setHidden(false)")
    page.goto(f"{static_site.other_host_url}/elsewhere.html")
    site_id = engagement_sites[ENGAGEMENT_SITE]
    stored = wait_until(
        lambda: _beacons(ursa, site_id),
        lambda rows: len(rows) == 4,
        what=f"four engagement rows (browser sent {[e['n'] for e in sent]})",
    )
    assert [row["pathname"] for row in stored] == ["/article/1", *["/article/2"] * 3]
    assert [row["scroll_depth"] for row in stored] == [75] * 4
    assert stored[0]["engaged_ms"] == beacon["e"]
    assert len({row["session_id"] for row in stored}) == 1
    assert stored[0]["session_id"] != 0
    assert stored[0]["screen_size"] == "Laptop"  # the 1280 px wide window
    events = ursa.events(site_id)
    assert [row["name"] for row in events] == ["pageview", "pageview", "Marker"]
    numbers = ursa.overview(site_id)
    assert (numbers["visits"], numbers["pageviews"]) == (1, 2)


def _beacons(ursa: UrsaInstance, site_id: int) -> list[dict[str, Any]]:
    with ursa.clickhouse() as gateway:
        return gateway.query(
            "e2e_engagement",
            "SELECT pathname, scroll_depth, engaged_ms, session_id, screen_size FROM engagement "
            "WHERE site_id = {site:UInt32} ORDER BY timestamp, event_id",
            {"site": site_id},
        )


def _clicks(page: Page, ursa: UrsaInstance, static_site: StaticSite, path: str) -> list[Any]:
    """The events the tracker sends for a click on each download link (then a marker, so that
    everything sent before it has been seen)."""
    sent: list[dict[str, Any]] = []
    page.on("request", lambda r: sent.append(body(r)) if r.url == f"{ursa.url}/api/event" else None)
    with page.expect_response(is_event(ursa, "pageview")):
        page.goto(f"{static_site.url}{path}")
    page.click("#pdf")
    page.click("#csv")
    with page.expect_response(is_event(ursa, "Marker")):
        page.evaluate("window.ursa('Marker')")
    kept = [e for e in sent if e["n"] not in ("pageview", "engagement", "Marker")]
    return [(e["n"], e.get("p")) for e in kept]


def test_file_downloads_are_sent_only_when_opted_in(
    context: BrowserContext,
    ursa: UrsaInstance,
    static_site: StaticSite,
    engagement_sites: dict[str, int],
) -> None:
    files = f"{static_site.url}/files"
    pdf = ("File Download", {"url": f"{files}/report.pdf"})
    csv = ("File Download", {"url": f"{files}/data.CSV?v=2"})
    assert _clicks(context.new_page(), ursa, static_site, "/downloads/off") == []
    assert _clicks(context.new_page(), ursa, static_site, "/downloads/on") == [pdf, csv]
    assert _clicks(context.new_page(), ursa, static_site, "/downloads/some") == [csv]
    downloads = wait_until(
        lambda: [
            row
            for row in ursa.events(engagement_sites[DOWNLOADS_SITE])
            if row["name"] != "pageview"
        ],
        lambda rows: len([row for row in rows if row["name"] == "Marker"]) == 3,
        what="the download events and markers in ClickHouse",
    )
    assert [(row["name"], row["props"]) for row in downloads if row["name"] != "Marker"] == [
        pdf,
        csv,
        csv,
    ]
