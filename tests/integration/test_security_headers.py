"""Every HTML response carries the security headers; the tracker and `/api/event` do not."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from app.services import Services
from app.web.security_headers import CONTENT_SECURITY_POLICY, HSTS
from tests.conftest import make_client
from tests.integration.helpers import post_event

pytestmark = pytest.mark.db
HTML = {"Accept": "text/html"}


@pytest.fixture
async def https_client(services: Services) -> AsyncIterator[httpx.AsyncClient]:
    async with make_client(services, scheme="https") as http:
        yield http


ANONYMOUS_PAGES = [("/login", 200), ("/no-such-page/at/all", 404)]


def _private_pages(site_domain: str) -> list[str]:
    return ["/", f"/{site_domain}?period=7d", f"/{site_domain}/cards/pages?period=7d"]


def _assert_html_headers(response: httpx.Response) -> None:
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "unsafe-inline" not in CONTENT_SECURITY_POLICY
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "same-origin"


async def test_html_responses_carry_headers_and_hsts_only_over_https(
    client, https_client, site_domain
):
    for path, status in ANONYMOUS_PAGES:
        plain = await client.get(path, headers=HTML)
        assert plain.status_code == status, path
        _assert_html_headers(plain)
        assert "strict-transport-security" not in plain.headers, path
        assert "no-store" not in plain.headers.get("cache-control", ""), path

        secure = await https_client.get(path, headers=HTML)
        assert secure.status_code == status, path
        _assert_html_headers(secure)
        assert secure.headers["strict-transport-security"] == HSTS, path


async def test_tracker_and_ingest_stay_cors_open_without_page_headers(https_client, site_domain):
    script = await https_client.get("/js/script.js")
    event = await post_event(
        https_client, {"n": "pageview", "u": f"https://{site_domain}/", "d": site_domain}
    )
    preflight = await https_client.options(
        "/api/event",
        headers={"Origin": "https://elsewhere.example", "Access-Control-Request-Method": "POST"},
    )
    assert (script.status_code, event.status_code) == (200, 202)
    assert preflight.status_code < 300
    for response in (script, event, preflight):
        assert response.headers["access-control-allow-origin"] == "*"
        assert "set-cookie" not in response.headers
        assert "content-security-policy" not in response.headers
        assert "strict-transport-security" not in response.headers


async def test_authenticated_pages_are_not_stored(owner_client, site_domain):
    for path in _private_pages(site_domain):
        response = await owner_client.get(path, headers=HTML)
        assert response.status_code == 200, path
        assert response.headers["cache-control"] == "no-store", path
        assert response.headers["strict-transport-security"] == HSTS, path
        _assert_html_headers(response)


async def test_json_errors_get_no_page_headers(client):
    response = await client.get("/no/such/page/here", headers={"Accept": "application/json"})
    assert response.status_code == 404
    assert "content-security-policy" not in response.headers


async def test_json_errors_are_not_sniffed_and_behind_the_login_not_stored(
    client, owner_client, site_domain
):
    """Errors answered as JSON: from a route open to all, from the logged-in router (its
    `no-store` holds for its errors too, and for a form post without a CSRF token), and from
    `/api/event`."""
    json_accept = {"Accept": "application/json"}
    public = await client.get("/no/such/page/here", headers=json_accept)
    private = await owner_client.get(f"/{site_domain}?period=nonsense", headers=json_accept)
    forged = await client.post(f"/{site_domain}/settings/timezone", headers=json_accept)
    wrong_method = await client.get("/api/event", headers=json_accept)
    malformed = await post_event(client, b"{not json")
    cases = {
        "public": (public, 404, None),
        "private": (private, 400, "no-store"),
        "no csrf token": (forged, 403, "no-store"),
        "wrong method": (wrong_method, 405, None),
        "malformed": (malformed, 400, "no-store"),  # /api/event's own answer
    }
    for name, (response, status, cache_control) in cases.items():
        assert response.status_code == status, name
        assert response.headers["content-type"] == "application/json", name
        assert response.headers.get_list("x-content-type-options") == ["nosniff"], name
        assert response.headers.get("cache-control") == cache_control, name


async def test_error_pages_behind_the_login_are_not_stored(owner_client, site_domain):
    response = await owner_client.get(f"/{site_domain}?period=nonsense", headers=HTML)
    assert response.status_code == 400
    _assert_html_headers(response)
    assert response.headers["cache-control"] == "no-store"
