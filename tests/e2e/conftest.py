"""End-to-end fixtures: one `ursa serve` per session, a static site, Debian's Chromium.

The browser runs headless but presents itself as a desktop Chrome (the bot filter drops
"HeadlessChrome"), and pages get `window.__ursa`/`window.__plausible` before any script runs
(both trackers skip `navigator.webdriver` browsers otherwise).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Playwright,
    ViewportSize,
    sync_playwright,
)

from tests.e2e.support import ARTIFACTS_DIR, StaticSite, UrsaInstance
from tests.integration.billing_helpers import PRICES, WEBHOOK_SECRET
from tests.integration.fake_stripe import FakeStripe
from tests.integration.smtp_sink import SmtpSink

OWNER_EMAIL = "owner@e2e.test"
OWNER_PASSWORD = "e2e owner password"
SITE = "e2e.test"
NPM_SITE = "plausible.e2e.test"
EMPTY_SITE = "empty.e2e.test"
HOSTILE_SITE = "hostile.e2e.test"
VIEWS_SITE = "views.e2e.test"

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
VIEWPORT: ViewportSize = {"width": 1280, "height": 900}
INIT_SCRIPT = "window.__ursa = true; window.__plausible = true;"


@dataclass(frozen=True)
class Sites:
    """Registered site ids by role."""

    tracked: int
    npm: int
    empty: int


def chromium_path() -> str:
    path = os.environ.get("URSA_E2E_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        pytest.fail("Chromium is missing: apt-get install -y chromium (or set URSA_E2E_CHROMIUM)")
    return path


@pytest.fixture(scope="session")
def mail_sink() -> Iterator[SmtpSink]:
    """The SMTP server `ursa serve` sends its emails to."""
    sink = SmtpSink()
    sink.start()
    yield sink
    sink.stop()


@pytest.fixture(scope="session")
def fake_stripe() -> Iterator[FakeStripe]:
    """The Stripe API `ursa serve` bills through (customers, Checkout, the portal)."""
    server = FakeStripe()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def ursa(
    tmp_path_factory: pytest.TempPathFactory, mail_sink: SmtpSink, fake_stripe: FakeStripe
) -> Iterator[UrsaInstance]:
    """A real `ursa serve` on free ports; stopped with SIGINT, which must exit 0."""
    stripe = {
        "STRIPE_SECRET_KEY": "sk_test_" + "e2e" * 8,
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "STRIPE_API_BASE": fake_stripe.url,
        **PRICES,
    }
    instance = UrsaInstance(
        tmp_path_factory.mktemp("ursa"), extra_env={"SMTP_URL": mail_sink.url(), **stripe}
    )
    # Before serve: the CLI creates and migrates the database.
    instance.add_user(OWNER_EMAIL, OWNER_PASSWORD)
    instance.add_sites(SITE, owner=OWNER_EMAIL)
    try:
        instance.start()
        # while serve starts
        instance.add_sites(NPM_SITE, EMPTY_SITE, HOSTILE_SITE, VIEWS_SITE, owner=OWNER_EMAIL)
        instance.wait_ready()
        instance.log_in(OWNER_EMAIL, OWNER_PASSWORD)
    except BaseException:
        instance.kill()
        raise
    yield instance
    code = instance.stop()
    log = instance.log()
    assert code == 0, f"ursa serve exited {code} after SIGINT:\n{log}"
    assert "Traceback" not in log, log
    assert "flushed" in log, f"no final flush logged:\n{log}"


@pytest.fixture(scope="session")
def sites(ursa: UrsaInstance) -> Sites:
    return Sites(
        tracked=ursa.site_ids[SITE], npm=ursa.site_ids[NPM_SITE], empty=ursa.site_ids[EMPTY_SITE]
    )


@pytest.fixture(scope="session")
def static_site(ursa: UrsaInstance) -> Iterator[StaticSite]:
    site = StaticSite(ursa.url)
    site.start()
    yield site
    site.stop()


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def chromium() -> str:
    return chromium_path()


@pytest.fixture(scope="session")
def user_agent(chromium: str) -> str:
    """A desktop Chrome User-Agent of this Chromium's major version (not HeadlessChrome)."""
    version = subprocess.run(
        [chromium, "--version"], capture_output=True, text=True, timeout=30, check=False
    ).stdout
    found = re.search(r"(\d+)\.\d+\.\d+\.\d+", version)
    major = found.group(1) if found else "140"
    return (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        f"Chrome/{major}.0.0.0 Safari/537.36"
    )


@pytest.fixture(scope="session")
def browser(playwright: Playwright, chromium: str, user_agent: str) -> Iterator[Browser]:
    # The User-Agent goes on the command line too: a context's override does not cover
    # keepalive requests (beacons) that outlive their page, e.g. the timings sent on pagehide.
    instance = playwright.chromium.launch(
        executable_path=chromium, headless=True, args=[*CHROMIUM_ARGS, f"--user-agent={user_agent}"]
    )
    yield instance
    instance.close()


def new_context(browser: Browser, user_agent: str) -> BrowserContext:
    ctx = browser.new_context(user_agent=user_agent, viewport=VIEWPORT, locale="en-GB")
    ctx.add_init_script(INIT_SCRIPT)
    ctx.set_default_timeout(15_000)
    return ctx


@pytest.fixture
def context(browser: Browser, user_agent: str) -> Iterator[BrowserContext]:
    ctx = new_context(browser, user_agent)
    yield ctx
    ctx.close()


@pytest.fixture
def owner_context(
    browser: Browser, user_agent: str, ursa: UrsaInstance
) -> Iterator[BrowserContext]:
    """Another browser context, logged in as the owner of the test sites."""
    ctx = new_context(browser, user_agent)
    page = ctx.new_page()
    page.goto(f"{ursa.url}/login")
    page.get_by_label("Email").fill(OWNER_EMAIL)
    page.get_by_label("Password").fill(OWNER_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{ursa.url}/")
    page.close()
    yield ctx
    ctx.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS_DIR.mkdir(exist_ok=True)
    return ARTIFACTS_DIR
