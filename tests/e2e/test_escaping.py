"""Hostile values sent through `/api/event` stay text in real Chromium: no element, no attribute,
no script run, on the dashboard page and in every card htmx loads into it."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import BrowserContext, Dialog

from app.dashboard.cards import CARDS
from tests.e2e.conftest import HOSTILE_SITE
from tests.e2e.support import UrsaInstance, wait_for_cards, wait_until
from tests.integration.helpers import BROWSER_UA

pytestmark = pytest.mark.e2e
PAYLOADS = (
    '<script id="xss-script">window.__xss = 1</script>',
    '"><img id="xss-img" src=x onerror="window.__xss = 2">',
    "' autofocus onfocus='window.__xss = 3' x='",
    '<div id="xss-htmx" hx-get="/xss" hx-trigger="load" hx-on:click="window.__xss = 4">x</div>',
    "{{7*7}}<svg/onload=window.__xss=5>",
)
# No element of the page may carry these: every one would come from a payload.
PLANTED = "#xss-script, #xss-img, #xss-htmx, svg[onload], [onerror], [onfocus], [hx-get='/xss']"


def send_hostile_events(ursa: UrsaInstance) -> None:
    with httpx.Client(base_url=ursa.url, timeout=10.0) as client:
        for number, payload in enumerate(PAYLOADS):
            url = f"https://{HOSTILE_SITE}/{payload}?utm_source={payload}&utm_campaign={payload}"
            for name in ("pageview", payload[:100]):
                event = {
                    "n": name,
                    "u": url,
                    "d": HOSTILE_SITE,
                    "r": f"https://referrer-{number}.example/{payload}",
                    "p": {"value": payload},
                }
                answer = client.post(
                    "/api/event",
                    json=event,
                    headers={"User-Agent": BROWSER_UA, "X-Forwarded-For": f"203.0.113.{number}"},
                )
                assert answer.status_code == 202, answer.text


def test_tracked_values_never_become_markup_in_chromium(
    owner_context: BrowserContext, ursa: UrsaInstance
) -> None:
    send_hostile_events(ursa)
    wait_until(lambda: ursa.card(HOSTILE_SITE, "pages").findall(".//tbody/tr"), bool, what="pages")

    dialogs: list[str] = []
    page = owner_context.new_page()
    page.on("dialog", lambda dialog: _dismiss(dialog, dialogs))
    page.goto(f"{ursa.url}/{HOSTILE_SITE}?period=today")
    wait_for_cards(page)
    page.wait_for_timeout(500)  # let any planted handler or htmx trigger fire

    assert page.locator(".card").count() == len(CARDS)
    assert page.locator(PLANTED).count() == 0
    assert page.evaluate("() => window.__xss === undefined")
    assert dialogs == []
    assert 'id="xss-script"' in page.locator(".card-pages").inner_text()  # shown, as text


def _dismiss(dialog: Dialog, seen: list[str]) -> None:
    seen.append(dialog.message)
    dialog.dismiss()
