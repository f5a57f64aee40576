"""A stranger's first day, in real Chromium: sign up, confirm the email from the SMTP sink, log
in, turn on 2FA with a TOTP computed here, add a site, install its snippet on a page, and watch
the settings page switch from "waiting" to "receiving events" by itself."""

from __future__ import annotations

import re
from pathlib import Path

import pyotp
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.e2e.conftest import new_context
from tests.e2e.support import StaticSite, UrsaInstance, wait_until
from tests.integration.smtp_sink import SmtpSink

pytestmark = pytest.mark.e2e
EMAIL = "newcomer@journey.e2e.test"
PASSWORD = "a long new password"
DOMAIN = "journey.e2e.test"


def link_in_latest_mail(sink: SmtpSink, to: str, path: str) -> str:
    """The `path…` link of the newest email to `to`, waiting for it to arrive."""
    messages = wait_until(
        lambda: [r.message for r in sink.received if to in r.rcpt_tos],
        bool,
        what=f"an email to {to}",
    )
    body = messages[-1].get_body(preferencelist=("plain",))
    assert body is not None
    found = re.search(rf"https?://[^\s]+{re.escape(path)}[^\s]+", body.get_content())
    assert found, body.get_content()
    return found[0]


def log_in(page: Page, ursa: UrsaInstance) -> None:
    page.goto(f"{ursa.url}/login")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()


def test_sign_up_to_first_event(
    browser: Browser,
    user_agent: str,
    context: BrowserContext,
    ursa: UrsaInstance,
    mail_sink: SmtpSink,
    static_site: StaticSite,
    artifacts: Path,
) -> None:
    page = context.new_page()

    # Sign up, then confirm the address with the link from the email.
    page.goto(f"{ursa.url}/signup")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("heading", name="Check your inbox")).to_be_visible()
    page.goto(link_in_latest_mail(mail_sink, EMAIL, "/verify-email/"))
    page.get_by_role("button", name=re.compile("^Confirm")).click()
    expect(page.get_by_role("status")).to_contain_text("confirmed")

    # Log in and turn on two-factor authentication with a code computed from the shown secret.
    log_in(page, ursa)
    page.wait_for_url(f"{ursa.url}/")
    page.goto(f"{ursa.url}/account/security")
    page.get_by_label("Current password").fill(PASSWORD)
    page.get_by_role("button", name="Turn on two-factor authentication").click()
    secret = page.locator(".security-secret").inner_text().replace(" ", "")
    totp = pyotp.TOTP(secret)
    page.get_by_label("6-digit code").fill(totp.now())
    page.get_by_role("button", name="Turn on", exact=True).click()
    expect(page.get_by_role("heading", name="Two-factor authentication is on")).to_be_visible()
    assert page.locator("#recovery-codes li").count() == 10

    # The next login asks for a code (a fresh one: each code works once).
    page.get_by_role("button", name="Log out").click()
    log_in(page, ursa)
    page.wait_for_url(re.compile(r"/login/2fa"))
    used = totp.now()
    code = wait_until(totp.now, lambda current: current != used, timeout=35.0, what="next code")
    page.get_by_label(re.compile("6-digit code")).fill(code)
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url(f"{ursa.url}/")

    # Add a site and copy its snippet onto a page of the "customer's" site.
    page.get_by_role("link", name="Add a site").click()
    page.get_by_label("Domain").fill(f"https://www.{DOMAIN}/")
    page.get_by_role("button", name="Add site").click()
    page.wait_for_url(f"{ursa.url}/{DOMAIN}/settings")
    status = page.locator("#sites-install-status")
    expect(status).to_contain_text("Waiting for the first event")
    snippet = page.locator("#sites-snippet-code").inner_text()
    assert f'data-domain="{DOMAIN}"' in snippet
    static_site.extra_pages["/installed.html"] = (
        f"<!doctype html><html><head><title>Installed</title>{snippet}</head>"
        "<body><h1>Installed</h1></body></html>"
    )

    visitor = new_context(browser, user_agent)  # someone else, visiting the customer's site
    visit = visitor.new_page()
    with visit.expect_response(lambda r: r.url == f"{ursa.url}/api/event") as sent:
        visit.goto(f"{static_site.url}/installed.html")
    assert sent.value.status == 202
    assert sent.value.header_value("x-ursa-dropped") is None
    visitor.close()

    # The settings page notices on its own (htmx polling), without a reload.
    expect(status).to_contain_text("Receiving events", timeout=20_000)
    page.screenshot(path=artifacts / "signup-journey.png", full_page=True)
