"""Plausible's published npm tracker (`@plausible-analytics/tracker`) pointed at Ursa."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest
from playwright.sync_api import BrowserContext, Response

from tests.e2e.conftest import NPM_SITE, Sites
from tests.e2e.support import (
    StaticSite,
    UrsaInstance,
    breakdown_labels,
    number,
    overview,
    wait_until,
)

pytestmark = pytest.mark.e2e


def test_plausible_npm_tracker(
    context: BrowserContext, ursa: UrsaInstance, static_site: StaticSite, sites: Sites
) -> None:
    def is_pageview(response: Response) -> bool:
        body = json.loads(response.request.post_data or "{}")
        return response.url == f"{ursa.url}/api/event" and body.get("n") == "pageview"

    page = context.new_page()
    with page.expect_response(is_pageview) as pageview:
        page.goto(f"{static_site.url}/page-b.html")
    assert pageview.value.status == 202
    assert pageview.value.header_value("x-ursa-dropped") is None
    assert json.loads(pageview.value.request.post_data or "{}")["d"] == NPM_SITE

    page.wait_for_selector("body[data-ready=true]", state="attached")
    page.click("#purchase")
    page.wait_for_function("() => window.purchaseStatus !== null")
    assert page.evaluate("window.purchaseStatus") == 202

    wait_until(
        lambda: (overview(ursa, NPM_SITE), breakdown_labels(ursa, NPM_SITE, "pages")),
        lambda seen: number(seen[0].get("pageviews", "")) >= 1 and "/page-b.html" in seen[1],
        what="the npm tracker's page view on the dashboard cards",
    )
    purchases = wait_until(
        lambda: [row for row in ursa.events(sites.npm) if row["name"] == "Purchase"],
        lambda rows: len(rows) > 0,
        what="the Purchase event in ClickHouse",
    )
    assert len(purchases) == 1
    assert purchases[0]["props"] == {"tier": "startup"}
    assert purchases[0]["pathname"] == "/page-b.html"
    assert str(purchases[0]["revenue"]) == "15.990"
    assert purchases[0]["revenue_currency"] == "USD"


def test_plausible_engagement_events_are_engagement_not_custom_events(
    context: BrowserContext, ursa: UrsaInstance, static_site: StaticSite, sites: Sites
) -> None:
    def is_event(name: str) -> Callable[[Response], bool]:
        def match(response: Response) -> bool:
            body = json.loads(response.request.post_data or "{}")
            return response.url == f"{ursa.url}/api/event" and body.get("n") == name

        return match

    page = context.new_page()
    with page.expect_response(is_event("pageview")):
        page.goto(f"{static_site.url}/page-b.html")
    # The tracker reports engagement when the window loses focus (or the page is hidden).
    with page.expect_response(is_event("engagement")) as engagement:
        page.evaluate("document.hasFocus = () => false; window.dispatchEvent(new Event('blur'))")
    assert engagement.value.status == 202
    assert engagement.value.header_value("x-ursa-dropped") is None
    sent = json.loads(engagement.value.request.post_data or "{}")
    # Events are flushed in order: once this marker is stored, so is anything sent before it.
    marker = f"Marker {time.monotonic_ns()}"
    with page.expect_response(is_event(marker)):
        page.evaluate("(name) => window.plausible(name)", marker)
    wait_until(
        lambda: [row for row in ursa.events(sites.npm) if row["name"] == marker],
        lambda rows: len(rows) == 1,
        what="the marker event in ClickHouse",
    )

    stored = ursa.events(sites.npm)
    custom = [row for row in stored if row["name"] not in ("pageview", "engagement")]
    stats = ursa.overview(sites.npm)
    assert stats["events"] == stats["pageviews"] + len(custom), (stats, stored)
    assert "engagement" not in {row["name"] for row in stored}
    # ... but an engagement row, with what the npm tracker measured
    with ursa.clickhouse() as gateway:
        beacons = gateway.query(
            "e2e_npm_engagement",
            "SELECT scroll_depth, engaged_ms FROM engagement WHERE site_id = {site:UInt32} "
            "AND pathname = '/page-b.html'",
            {"site": sites.npm},
        )
    assert {"scroll_depth": sent["sd"], "engaged_ms": sent["e"]} in beacons
