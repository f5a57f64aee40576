"""Allowed hostnames per site: the service, `ursa sites hostnames`, and ingestion through them."""

from __future__ import annotations

import pytest

from app.errors import InvalidInput, NotFound
from app.services import Services
from app.sites.registry import add_site, get_site, update_allowed_hostnames
from tests.integration.helpers import post_event, run_ursa, stored

pytestmark = pytest.mark.db


async def _allow(services: Services, domain: str, *entries: str) -> None:
    await update_allowed_hostnames(services.sessions, domain, add=entries)


async def _stored_pathnames(services: Services, domain: str) -> list[str]:
    site = await get_site(services.sessions, domain)
    assert site.id is not None
    return [row["pathname"] for row in stored(services.clickhouse, site.id)]


async def test_the_service_normalises_removes_and_clears(services, site_domain):
    update = update_allowed_hostnames
    added = await update(services.sessions, f"https://{site_domain}/", add=["B.example", "*.A.ex"])
    assert added == ["*.a.ex", "b.example"]
    assert await update(services.sessions, site_domain, remove=["b.example", "c.example"]) == [
        "*.a.ex"
    ]
    assert await update(services.sessions, site_domain, clear=True, add=["d.example"]) == [
        "d.example"
    ]
    assert (await get_site(services.sessions, site_domain)).allowed_hostnames == ["d.example"]
    with pytest.raises(InvalidInput, match="'not a host' is not a valid hostname"):
        await update(services.sessions, site_domain, clear=True, add=["not a host"])
    assert (await get_site(services.sessions, site_domain)).allowed_hostnames == ["d.example"]
    with pytest.raises(NotFound):
        await update(services.sessions, "missing.example", add=["d.example"])


async def test_an_allowed_hostname_is_stored_and_another_is_dropped(client, services, site_domain):
    await _allow(services, site_domain, site_domain, "*.shop.example")
    for url in (f"https://www.{site_domain}/home", "https://eu.shop.example/cart"):
        response = await post_event(client, {"n": "pageview", "u": url, "d": site_domain})
        assert (response.status_code, response.headers.get("x-ursa-dropped")) == (202, None)
    for url in ("https://elsewhere.example/spam", "https://shop.example/spam"):
        response = await post_event(client, {"n": "pageview", "u": url, "d": site_domain})
        assert (response.status_code, response.headers["x-ursa-dropped"]) == (202, "hostname")
    assert services.pipeline.dropped["hostname"] == 2
    services.flusher.drain()
    assert await _stored_pathnames(services, site_domain) == ["/home", "/cart"]


async def test_an_event_for_several_sites_is_kept_for_those_that_allow_it(
    client, services, site_domain
):
    strict = (await add_site(services.sessions, f"strict-{site_domain}")).domain
    await _allow(services, strict, strict)
    await _allow(services, site_domain, site_domain)
    domains = f"{strict},{site_domain}"
    kept = await post_event(
        client, {"n": "pageview", "u": f"https://{site_domain}/both", "d": domains}
    )
    assert "x-ursa-dropped" not in kept.headers
    dropped = await post_event(
        client, {"n": "pageview", "u": "https://elsewhere.example/", "d": domains}
    )
    assert dropped.headers["x-ursa-dropped"] == "hostname"
    services.flusher.drain()
    assert await _stored_pathnames(services, site_domain) == ["/both"]
    assert await _stored_pathnames(services, strict) == []


async def test_the_cli_lists_and_changes_the_hostnames(settings, services, site_domain):
    empty = await run_ursa(settings, "sites", "hostnames", site_domain)
    assert (empty.exit_code, empty.output) == (0, f"{site_domain}: any hostname is allowed\n")
    args = ("sites", "hostnames", site_domain, "--add", "*.Example.com", "--add", "example.com")
    added = await run_ursa(settings, *args)
    assert (added.exit_code, added.output) == (0, "*.example.com\nexample.com\n")
    removed = await run_ursa(settings, "sites", "hostnames", site_domain, "--remove", "example.com")
    assert removed.output == "*.example.com\n"
    invalid = await run_ursa(settings, "sites", "hostnames", site_domain, "--add", "*.com")
    assert invalid.exit_code == 2
    assert "error: '*.com' is not a valid hostname pattern" in invalid.output
    cleared = await run_ursa(settings, "sites", "hostnames", site_domain, "--clear")
    assert cleared.output == f"{site_domain}: any hostname is allowed\n"
