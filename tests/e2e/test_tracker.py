"""The tracker in a real browser: page views (also SPA), custom and outbound events, web
vitals, all the way to the dashboard; that it leaves no cookies or storage behind; and that an
automated browser is counted only when the page opts in."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Request, Response

from tests.e2e.conftest import EMPTY_SITE, OWNER_EMAIL, SITE, VIEWPORT, Sites
from tests.e2e.support import (
    StaticSite,
    UrsaInstance,
    breakdown_labels,
    number,
    overview,
    vitals,
    wait_for_cards,
    wait_until,
)

pytestmark = pytest.mark.e2e

OUTBOUND = "Outbound Link: Click"


def event_name(request: Request) -> str | None:
    try:
        return str(json.loads(request.post_data or "")["n"])
    except (ValueError, KeyError, TypeError):
        return None


def is_event(ursa: UrsaInstance, name: str) -> Callable[[Response], bool]:
    def match(response: Response) -> bool:
        return response.url == f"{ursa.url}/api/event" and event_name(response.request) == name

    return match


def open_page_a(page: Page, ursa: UrsaInstance, static_site: StaticSite) -> None:
    """Load page A and wait until its page view was accepted."""
    with page.expect_response(is_event(ursa, "pageview")) as pageview:
        page.goto(f"{static_site.url}/page-a.html")
    assert pageview.value.status == 202
    assert pageview.value.header_value("x-ursa-dropped") is None


def test_visit_reaches_the_dashboard(
    context: BrowserContext,
    owner_context: BrowserContext,
    ursa: UrsaInstance,
    static_site: StaticSite,
    sites: Sites,
    artifacts: Path,
) -> None:
    sent: list[str] = []
    context.on("request", lambda request: sent.append(event_name(request) or request.url))
    page = context.new_page()
    open_page_a(page, ursa, static_site)

    # SPA navigation: history.pushState is a page view of /docs.
    with page.expect_response(is_event(ursa, "pageview")) as spa:
        page.click("#nav-docs")
    assert spa.value.status == 202
    assert json.loads(spa.value.request.post_data or "{}")["u"].endswith("/docs")

    with page.expect_response(is_event(ursa, "Signup")) as signup:
        page.click("#signup")
    assert signup.value.status == 202

    # Leaving through an outbound link sends the click, then (pagehide) the timings.
    page.click("#outbound")
    page.wait_for_url(f"{static_site.other_host_url}/elsewhere.html")

    wait_until(
        lambda: (overview(ursa, SITE), breakdown_labels(ursa, SITE, "pages"), vitals(ursa, SITE)),
        lambda seen: (
            number(seen[0].get("pageviews", "")) >= 2
            and "/docs" in seen[1]
            and seen[2].get("ttfb", "–") not in ("", "–")
        ),
        what=f"page views, /docs and TTFB on the dashboard cards (browser sent {sent})",
    )
    assert "/page-a.html" in breakdown_labels(ursa, SITE, "pages")

    stats = json.loads(ursa.cli("stats", SITE, "--period", "today", "--json").stdout)
    assert stats["pageviews"] >= 2
    assert stats["events"] >= stats["pageviews"] + 2, stats  # Signup and the outbound click
    stored = ursa.events(sites.tracked)
    signups = [row for row in stored if row["name"] == "Signup"]
    assert len(signups) == 1, stored
    assert signups[0]["props"] == {"plan": "pro"}
    assert signups[0]["pathname"] == "/docs"
    outbound = [row for row in stored if row["name"] == OUTBOUND]
    assert [row["props"] for row in outbound] == [
        {"url": f"{static_site.other_host_url}/elsewhere.html"}
    ]
    assert {row["browser"] for row in stored} == {"Chrome"}

    # The dashboard itself, as a site owner sees it.
    dashboard = owner_context.new_page()
    dashboard.goto(f"{ursa.url}/{SITE}?period=today")
    wait_for_cards(dashboard)
    assert number(dashboard.locator("[data-metric=pageviews]").inner_text()) >= 2
    assert number(dashboard.locator("[data-metric=visitors]").inner_text()) >= 1
    assert dashboard.locator(".card-pages").get_by_text("/docs", exact=True).is_visible()
    assert dashboard.locator(".card-overview svg .bar").count() > 0
    assert dashboard.locator("[data-vital=ttfb]").inner_text() != "–"
    dashboard.screenshot(path=artifacts / "dashboard.png", full_page=True)


def test_empty_dashboard(
    owner_context: BrowserContext, ursa: UrsaInstance, sites: Sites, artifacts: Path
) -> None:
    page = owner_context.new_page()
    page.goto(f"{ursa.url}/{EMPTY_SITE}?period=today")
    wait_for_cards(page)
    assert page.locator("[data-metric=visitors]").inner_text() == "0"
    assert page.locator("[data-metric=pageviews]").inner_text() == "0"
    assert page.locator("[data-metric=bounce_rate]").inner_text() == "–"  # no visits, no rate
    assert (
        page.locator(".card .empty").count() >= 7
    )  # chart (in the overview), five breakdowns, vitals
    page.screenshot(path=artifacts / "dashboard-empty.png", full_page=True)


def test_no_cookies_and_no_storage(
    context: BrowserContext, ursa: UrsaInstance, static_site: StaticSite, sites: Sites
) -> None:
    responses: list[Response] = []
    context.on("response", lambda response: responses.append(response))
    page = context.new_page()
    open_page_a(page, ursa, static_site)
    with page.expect_response(is_event(ursa, "Privacy check")):
        page.evaluate("window.ursa('Privacy check', {props: {step: 'storage'}})")
    with page.expect_response(is_event(ursa, "pageview")):
        page.click("#nav-docs")

    assert context.cookies() == []
    storage = page.evaluate(
        """async () => ({
            cookie: document.cookie,
            local: localStorage.length,
            session: sessionStorage.length,
            indexedDB: (await indexedDB.databases()).length,
            caches: 'caches' in window ? (await caches.keys()).length : 0,
        })"""
    )
    assert storage == {"cookie": "", "local": 0, "session": 0, "indexedDB": 0, "caches": 0}

    ours = [r for r in responses if r.url.startswith(ursa.url)]
    script = [r for r in ours if r.url == f"{ursa.url}/js/script.js"]
    events = [r for r in ours if r.url == f"{ursa.url}/api/event"]
    assert script, [r.url for r in responses]
    assert len(events) >= 3, [r.url for r in responses]
    for response in ours:
        headers = response.all_headers()
        assert "set-cookie" not in headers, (response.url, headers)


def test_an_automated_browser_is_counted_only_after_the_page_opts_in(
    browser: Browser, user_agent: str, ursa: UrsaInstance, static_site: StaticSite
) -> None:
    """What the site settings and README tell a site owner testing with Playwright & co.:
    nothing is sent while `navigator.webdriver` is set, until the page sets `window.__ursa`."""
    domain = "automated.e2e.test"
    ursa.add_sites(domain, owner=OWNER_EMAIL)
    static_site.extra_pages["/automated.html"] = (
        "<!doctype html><html><head><title>Automated</title>"
        f'<script defer data-domain="{domain}" src="{ursa.url}/js/script.js"></script>'
        "</head><body><h1>Automated</h1></body></html>"
    )
    ctx = browser.new_context(user_agent=user_agent, viewport=VIEWPORT)  # no opt-in script
    sent: list[str | None] = []
    ctx.on(
        "request",
        lambda r: sent.append(event_name(r)) if r.url == f"{ursa.url}/api/event" else None,
    )
    try:
        page = ctx.new_page()
        page.goto(f"{static_site.url}/automated.html")
        page.wait_for_function("window.ursa && window.ursa.l")  # the tracker ran: no pageview
        assert page.evaluate("navigator.webdriver") is True
        page.evaluate("window.ursa('Before the opt-in')")
        page.evaluate("window.__ursa = true")
        with page.expect_response(is_event(ursa, "After the opt-in")) as accepted:
            page.evaluate("window.ursa('After the opt-in')")
        assert accepted.value.status == 202
        assert accepted.value.header_value("x-ursa-dropped") is None
    finally:
        ctx.close()
    assert sent == ["After the opt-in"]  # requests are recorded in the order they are made
