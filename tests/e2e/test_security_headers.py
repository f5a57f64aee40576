"""The dashboard works in real Chromium under its Content-Security-Policy: htmx loads every
card and nothing the page does is blocked."""

from __future__ import annotations

import pytest
from playwright.sync_api import BrowserContext, ConsoleMessage

from tests.e2e.conftest import SITE, Sites
from tests.e2e.support import UrsaInstance, wait_for_cards

pytestmark = pytest.mark.e2e


def test_dashboard_loads_under_the_csp(
    owner_context: BrowserContext, ursa: UrsaInstance, sites: Sites
) -> None:
    messages: list[str] = []
    errors: list[str] = []
    page = owner_context.new_page()
    page.on("console", lambda message: messages.append(_describe(message)))
    page.on("pageerror", lambda error: errors.append(str(error)))

    response = page.goto(f"{ursa.url}/{SITE}?period=today")
    wait_for_cards(page)

    assert response is not None
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert page.locator(".card").count() > 0
    assert page.locator(".card-error").count() == 0
    assert [text for text in messages if "Content Security Policy" in text] == []
    assert errors == []


def _describe(message: ConsoleMessage) -> str:
    return f"{message.type}: {message.text}"
