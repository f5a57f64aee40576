"""A site owner narrows the dashboard down: a row becomes a filter, a second one is added by
hand, the range changes, comparison goes on, and the back button walks the steps back."""

from __future__ import annotations

import zipfile
from pathlib import Path

import httpx
from playwright.sync_api import BrowserContext, Page

from tests.e2e.conftest import OWNER_EMAIL, VIEWS_SITE
from tests.e2e.support import (
    UrsaInstance,
    breakdown_labels,
    number,
    overview,
    wait_for_cards,
    wait_until,
)

VISITS = [
    ("/", "https://www.google.com/"),
    ("/pricing", "https://www.google.com/"),
    ("/pricing", None),
    ("/blog/hello", "https://news.ycombinator.com/"),
]


def _record_visits(ursa: UrsaInstance, user_agent: str) -> None:
    for index, (path, referrer) in enumerate(VISITS):
        body = {"n": "pageview", "u": f"https://{VIEWS_SITE}{path}", "d": VIEWS_SITE, "r": referrer}
        answer = httpx.post(
            f"{ursa.url}/api/event",
            json=body,
            # one visitor per event: a different browser build each time
            headers={"User-Agent": user_agent.replace(".0.0.0", f".0.{index}.0")},
        )
        assert answer.status_code == 202, answer.text
    wait_until(
        lambda: breakdown_labels(ursa, VIEWS_SITE, "pages"),
        lambda labels: {"/", "/pricing", "/blog/hello"} <= set(labels),
        what="the visits on the pages card",
    )


def _stat(page: Page, metric: str) -> int:
    return number(page.locator(f".stat-value[data-metric={metric}]").inner_text())


def test_filter_range_comparison_and_back(
    owner_context: BrowserContext, ursa: UrsaInstance, user_agent: str, artifacts: Path
) -> None:
    _record_visits(ursa, user_agent)
    page = owner_context.new_page()
    page.goto(f"{ursa.url}/{VIEWS_SITE}?period=today")
    wait_for_cards(page)
    assert _stat(page, "visitors") == 4
    page.screenshot(path=artifacts / "dashboard-views.png", full_page=True)

    # A click on a source row filters the whole dashboard by it.
    page.locator(".card-sources").get_by_role("link", name="Google").click()
    page.wait_for_url("**f=source**")
    wait_for_cards(page)
    assert page.locator(".chip").inner_text().startswith("Source is Google")
    assert _stat(page, "visitors") == 2

    # A second filter, added by hand in the filter dialog (AND), its value suggested.
    page.locator(".add-filter summary").click()
    page.get_by_label("Dimension").select_option("page")
    value = page.get_by_label("Value")
    value.fill("/pri")
    page.wait_for_function(
        "() => [...document.querySelectorAll('#filter-suggestions option')]"
        ".some(o => o.value === '/pricing')"
    )
    value.fill("/pricing")
    page.get_by_role("button", name="Add filter").click()
    page.wait_for_url("**f=page**")
    wait_for_cards(page)
    assert page.locator(".chip").count() == 2
    assert _stat(page, "visitors") == 1
    page.screenshot(path=artifacts / "dashboard-filtered.png", full_page=True)

    # The export is the view: the filtered pages only.
    with page.expect_download() as download:
        page.get_by_role("link", name="Export").click()
    with zipfile.ZipFile(download.value.path()) as archive:
        pages = archive.read("pages.csv").decode().splitlines()
    header = "page,visitors,pageviews,time_on_page_seconds,scroll_depth_percent"
    assert pages == [header, "/pricing,1,1,,"]  # these visits sent no engagement beacon

    # Another range keeps the filters.
    page.locator(".range-menu summary").click()
    page.get_by_role("menuitem", name="Last 7 days").click()
    page.wait_for_url("**period=7d**")
    wait_for_cards(page)
    assert page.locator(".chip").count() == 2

    # Comparison on: each top stat gets its change, the chart a second line.
    page.get_by_label("Compare").select_option("previous_period")
    page.wait_for_url("**comparison=previous_period**")
    wait_for_cards(page)
    assert page.locator("[data-change=visitors]").count() == 1
    assert page.locator(".compare-line").count() == 1
    # Hovering the last bar shows its bucket, its value and the compared period's.
    page.locator(".chart .bar").last.hover()
    tip = page.locator(".chart-tip")
    tip.wait_for(state="visible")
    assert "(so far)" in tip.inner_text()
    assert "Compared period: " in tip.inner_text()
    page.screenshot(path=artifacts / "dashboard-tooltip.png")

    # Back: comparison off again, then today with both filters.
    page.go_back()
    page.wait_for_url("**period=7d**")
    wait_for_cards(page)
    assert "comparison" not in page.url
    assert page.locator("[data-change=visitors]").count() == 0
    page.go_back()
    page.wait_for_url("**period=today**")
    wait_for_cards(page)
    assert page.locator(".chip").count() == 2
    assert _stat(page, "visitors") == 1

    # The keyboard: W is the last 7 days.
    page.keyboard.press("w")
    page.wait_for_url("**period=7d**")

    # On a phone the chart fits the screen: nothing runs off the right edge.
    phone = owner_context.new_page()
    phone.set_viewport_size({"width": 390, "height": 844})
    phone.goto(f"{ursa.url}/{VIEWS_SITE}?period=7d")
    wait_for_cards(phone)
    widths = phone.evaluate(
        "() => [document.documentElement.scrollWidth,"
        " document.querySelector('.chart').getBoundingClientRect().right]"
    )
    assert widths[0] <= 390, widths
    assert widths[1] <= 390, widths
    phone.screenshot(path=artifacts / "dashboard-phone.png", full_page=True)


def test_the_performance_view(
    owner_context: BrowserContext, ursa: UrsaInstance, user_agent: str, artifacts: Path
) -> None:
    timings = [("/", 1200, 0.02, 90), ("/", 2100, 0.04, 150), ("/pricing", 4600, 0.31, 620)]
    for index, (path, lcp, cls, inp) in enumerate(timings):
        body = {
            "n": "ursa:performance",
            "u": f"https://{VIEWS_SITE}{path}",
            "d": VIEWS_SITE,
            "i": False,
            "ursa": {"perf": {"lcp": lcp, "cls": cls, "inp": inp, "ttfb": lcp / 6, "fcp": lcp / 2}},
        }
        agent = user_agent.replace(".0.0.0", f".0.{index}.9")
        answer = httpx.post(f"{ursa.url}/api/event", json=body, headers={"User-Agent": agent})
        assert answer.status_code == 202, answer.text
    page = owner_context.new_page()
    page.goto(f"{ursa.url}/{VIEWS_SITE}?period=today")
    page.get_by_role("link", name="Web performance").click()
    page.wait_for_url("**/performance**")
    wait_until(
        lambda: (page.reload(), page.locator(".perf-table tbody tr").count())[1],
        lambda rows: rows == 2,
        what="the two pages in the performance table",
    )
    assert page.locator(".perf-table tbody tr").first.inner_text().startswith("/pricing")
    page.get_by_role("link", name="CLS").first.click()
    page.wait_for_url("**vital=cls**")
    assert page.locator("#histogram-title").text_content() == "Distribution of CLS"
    page.screenshot(path=artifacts / "performance.png", full_page=True)


DETAILS_SITE = "details.e2e.test"
DETAILS_PAGES = 130


def test_tabs_and_details_page_through_a_long_list(
    owner_context: BrowserContext, ursa: UrsaInstance, user_agent: str, artifacts: Path
) -> None:
    """A card's tabs switch with a click and the arrow keys; Details lists every page, 100 at a
    time, with its search, and fits a phone."""
    ursa.add_sites(DETAILS_SITE, owner=OWNER_EMAIL)
    with httpx.Client(base_url=ursa.url, headers={"User-Agent": user_agent}) as http:
        for index in range(DETAILS_PAGES):
            url = f"https://{DETAILS_SITE}/doc/{index:03d}"
            answer = http.post("/api/event", json={"n": "pageview", "u": url, "d": DETAILS_SITE})
            assert answer.status_code == 202, answer.text
    wait_until(
        lambda: number(overview(ursa, DETAILS_SITE).get("pageviews", "")),
        lambda views: views == DETAILS_PAGES,
        what="every page view stored",
    )
    page = owner_context.new_page()
    page.goto(f"{ursa.url}/{DETAILS_SITE}?period=today")
    wait_for_cards(page)
    card = page.locator(".card-pages")
    selected = card.locator("[role=tab][aria-selected=true]")
    assert selected.inner_text() == "Top pages"

    # A click loads the tab's own partial; the arrow keys move between tabs.
    card.get_by_role("tab", name="Exit pages").click()
    page.wait_for_function(
        "() => document.querySelector('.card-pages [aria-selected=true]').textContent"
        " === 'Exit pages'"
    )
    card.get_by_role("tab", name="Exit pages").focus()
    page.keyboard.press("ArrowLeft")
    page.wait_for_function(
        "() => document.querySelector('.card-pages [aria-selected=true]').textContent"
        " === 'Entry pages'"
    )
    assert page.evaluate("() => document.activeElement.textContent") == "Entry pages"
    assert "period=today" in page.url  # the arrow moved a tab, not the period
    # The tab is in the page's URL: a reload shows it again, and a range link keeps it.
    assert "t=pages%3Aentry" in page.url
    page.reload()
    wait_for_cards(page)
    assert selected.inner_text() == "Entry pages"
    card.get_by_role("tab", name="Entry pages").focus()
    page.keyboard.press("Home")
    page.wait_for_function(
        "() => document.querySelector('.card-pages [aria-selected=true]').textContent"
        " === 'Top pages'"
    )

    # Details of the chosen tab: the full list, 100 rows a page, with the total.
    card.get_by_role("link", name="Details").click()
    page.wait_for_url("**/cards/pages/details**")
    assert page.locator(".details-count").inner_text() == f"1–100 of {DETAILS_PAGES}"
    assert page.locator("tbody tr").count() == 100
    page.get_by_role("link", name="Next ›").click()
    page.wait_for_url("**page=2**")
    assert page.locator(".details-count").inner_text() == f"101–130 of {DETAILS_PAGES}"
    assert page.locator("tbody tr").count() == DETAILS_PAGES - 100
    assert page.locator("tbody .label").last.inner_text() == "/doc/129"
    page.get_by_role("link", name="‹ Previous").click()
    page.wait_for_url(lambda url: "page=2" not in url)
    assert page.locator("tbody tr").count() == 100

    # A search keeps the tab and the range, and starts at its first page.
    page.get_by_label("Search").fill("doc/12")
    page.get_by_role("button", name="Search").click()
    page.wait_for_url("**q=doc%2F12**")
    assert "period=today" in page.url
    labels = page.locator("tbody .label").all_inner_texts()
    assert labels == [f"/doc/{index}" for index in range(120, 130)]
    page.screenshot(path=artifacts / "dashboard-details.png", full_page=True)

    # On a phone the list and its pager fit the screen.
    phone = owner_context.new_page()
    phone.set_viewport_size({"width": 390, "height": 844})
    phone.goto(page.url.replace("q=doc%2F12", "q=") + "&page=2")
    width = phone.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 390, width
    assert phone.get_by_role("link", name="‹ Previous").is_visible()
    phone.screenshot(path=artifacts / "dashboard-details-phone.png", full_page=True)
