"""Dashboard pages and card partials render real data, escape it, and handle bad input."""

from __future__ import annotations

import html5lib
import pytest

from app.analytics.clickhouse.gateway import ClickHouse
from app.dashboard.cards import CARDS
from app.models import Role, User
from app.services import Services
from tests.conftest import free_port, join, logged_in, make_client, new_user
from tests.integration.helpers import mark_deleted, post_event

pytestmark = pytest.mark.db
MARKER = '"><script id="xss">alert(1)</script><img src=x onerror=alert(1) hx-get="/x">'


def _elements(markup: str) -> list[tuple[str, dict[str, str]]]:
    tree = html5lib.parse(markup, namespaceHTMLElements=False)
    return [(node.tag, dict(node.attrib)) for node in tree.iter()]


async def test_every_card_renders_and_escapes_tracked_values(
    client, owner_client, services, site_domain
):
    hostile = {
        "n": MARKER[:100],
        "u": f"https://{site_domain}/{MARKER}?utm_source={MARKER}",
        "d": site_domain,
        "r": f"https://evil.example/{MARKER}",
        "p": {"k": MARKER},
    }
    assert (await post_event(client, hostile)).status_code == 202
    pageview = {"n": "pageview", "u": f"https://{site_domain}/{MARKER}", "d": site_domain}
    assert (await post_event(client, pageview)).status_code == 202
    services.flusher.drain()

    page = await owner_client.get(f"/{site_domain}?period=today", headers={"Accept": "text/html"})
    assert page.status_code == 200
    for name in CARDS:
        response = await owner_client.get(f"/{site_domain}/cards/{name}?period=today")
        assert response.status_code == 200, name
        for tag, attributes in _elements(response.text):
            assert tag not in ("script", "img"), name
            assert not any(a.startswith(("on", "hx-")) for a in attributes), name
    pages = (await owner_client.get(f"/{site_domain}/cards/pages?period=today")).text
    assert "&lt;script" in pages  # shown as text, not markup


async def test_dashboard_page_lists_cards_and_periods(owner_client, site_domain):
    page = await owner_client.get(f"/{site_domain}?period=7d", headers={"Accept": "text/html"})
    assert page.status_code == 200
    for name in CARDS:
        assert f'hx-get="/{site_domain}/cards/{name}?period=7d"' in page.text
    assert (
        f'href="/{site_domain}?period=7d" data-key="W" aria-current="true">Last 7 days' in page.text
    )
    assert f'href="/{site_domain}?period=today" data-key="T">Today' in page.text


async def test_empty_site_shows_empty_states(owner_client, site_domain):
    overview = await owner_client.get(f"/{site_domain}/cards/overview?period=30d")
    assert "Nothing in this period yet." in overview.text
    vitals = await owner_client.get(f"/{site_domain}/cards/vitals?period=30d")
    assert "No performance data yet." in vitals.text


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/{site}?period=1y", 400),
        ("/{site}/cards/overview?period=forever", 400),
        ("/{site}/cards/nope", 404),
        ("/missing.example", 404),
        ("/missing.example/cards/overview", 404),
    ],
)
async def test_bad_dashboard_requests(owner_client, site_domain, path, status):
    url = path.format(site=site_domain)
    response = await owner_client.get(url, headers={"Accept": "text/html"})
    assert response.status_code == status
    assert "<h1>" in response.text
    json_response = await owner_client.get(url)
    assert json_response.status_code == status
    assert "error" in json_response.json()


async def test_a_user_deleted_while_logged_in_is_logged_out_on_the_next_dashboard_request(
    services, owner, site_domain
):
    async with logged_in(services, owner) as http:
        assert (await http.get(f"/{site_domain}/cards/overview")).status_code == 200
        await mark_deleted(services, User, owner.id)
        card = await http.get(f"/{site_domain}/cards/overview", headers={"HX-Request": "true"})
        assert card.status_code == 401
        assert card.headers["HX-Redirect"].startswith("/login")
        # The session is gone: the next request is anonymous (to the login page, like any page).
        for path in (f"/{site_domain}", f"/{site_domain}/cards/nope", f"/{site_domain}/export.zip"):
            response = await http.get(path, follow_redirects=False)
            assert response.status_code in (302, 303), path
            assert response.headers["location"].startswith("/login"), path


async def test_health_endpoints(client):
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {
        "status": "ok",
        "checks": {"redis": "ok", "database": "ok", "clickhouse": "ok"},
    }


async def test_web_stays_ready_for_ingest_while_clickhouse_is_down(settings, site_domain):
    """Every web process shares ClickHouse: failing readiness on it would take ingest offline."""
    refusing = ClickHouse(f"http://127.0.0.1:{free_port()}")  # nothing listens there
    services = Services(settings, gateway=refusing)
    try:
        async with make_client(services) as http:
            ready = await http.get("/readyz")
            assert ready.status_code == 200
            assert ready.json()["status"] == "degraded"
            assert ready.json()["checks"]["clickhouse"].startswith("failed")
            event = {"n": "pageview", "u": f"https://{site_domain}/", "d": site_domain}
            assert (await post_event(http, event)).status_code == 202
    finally:
        await services.aclose()


async def test_admins_see_settings_and_sharing_links_viewers_do_not(
    services, owner_client, site_domain
):
    links = (f'href="/{site_domain}/settings"', f'href="/{site_domain}/sharing"')
    page = (await owner_client.get(f"/{site_domain}")).text
    assert all(link in page for link in links)
    viewer = await new_user(services)
    await join(services, viewer, site_domain, Role.VIEWER)
    async with logged_in(services, viewer) as http:
        page = (await http.get(f"/{site_domain}")).text
    assert "Loading…" in page
    assert not any(link in page for link in links)
