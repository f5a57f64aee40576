"""The shared cache in the cache Redis: public and shared views' cards, and its failure modes."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from prometheus_client import REGISTRY

from app.cache.shared import VIEW_SECONDS, SharedCache
from app.services import Services
from app.sites import sharing
from app.sites.registry import get_site
from tests.conftest import free_port, make_client, random_peer
from tests.integration.helpers import post_event

pytestmark = pytest.mark.db


def _lookups(result: str) -> float:
    labels = {"cache": "view-cards", "result": result}
    return REGISTRY.get_sample_value("ursa_cache_requests_total", labels) or 0.0


async def _public_site(services: Services, site_domain: str) -> int:
    """Make `site_domain` (owned by the `owner` fixture's organization) public."""
    site = await get_site(services.sessions, site_domain)
    assert site is not None
    assert site.id is not None
    await sharing.set_public(services, site, True)
    return site.id


async def _visit(services: Services, client: httpx.AsyncClient, domain: str, path: str) -> None:
    body = {"n": "pageview", "u": f"https://{domain}{path}", "d": domain}
    assert (await post_event(client, body)).status_code == 202
    services.flusher.drain()


@pytest.fixture
async def anonymous(services: Services) -> AsyncIterator[httpx.AsyncClient]:
    async with make_client(services, peer=random_peer(), scheme="https") as http:
        yield http


async def test_a_public_card_is_computed_once_per_minute(services, anonymous, site_domain, owner):
    site_id = await _public_site(services, site_domain)
    await _visit(services, anonymous, site_domain, "/first")
    card = f"/public/{site_domain}/cards/pages"
    hits, misses = _lookups("hit"), _lookups("miss")

    first = await anonymous.get(card)
    assert first.status_code == 200
    assert "/first" in first.text
    await _visit(services, anonymous, site_domain, "/later")
    again = await anonymous.get(card)
    assert again.status_code == 200
    assert "/later" not in again.text  # the cached numbers, not a new query
    assert (_lookups("hit") - hits, _lookups("miss") - misses) == (1, 1)

    keys = [key.decode() async for key in services.cache_redis.scan_iter("ursa:cache:*")]
    [key] = [key for key in keys if f":view-cards:{site_id}:pages:" in key]
    assert 0 < await services.cache_redis.ttl(key) <= VIEW_SECONDS
    await services.cache_redis.delete(key)  # what expiry does a minute later
    assert "/later" in (await anonymous.get(card)).text


async def test_views_work_without_the_cache_redis(settings, clickhouse, site_domain, owner):
    dead = settings.model_copy(update={"CACHE_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"})
    services = Services(dead, gateway=clickhouse)
    try:
        await _public_site(services, site_domain)
        errors = _lookups("error")
        async with make_client(services, peer=random_peer(), scheme="https") as http:
            response = await http.get(f"/public/{site_domain}/cards/overview")
        assert response.status_code == 200
        assert _lookups("error") - errors == 1  # the read failed: computed, no write tried
    finally:
        await services.aclose()


async def test_an_entry_that_does_not_decode_is_recomputed(services):
    cache = SharedCache(services.cache_redis, "test-cache", ttl_seconds=30)
    key = cache.key("broken")
    await services.cache_redis.set(key, b"\xff not json", ex=30)

    async def build() -> dict[str, int]:
        return {"answer": 42}

    assert await cache.get_or_build(key, build) == {"answer": 42}


def test_a_shared_cache_needs_a_ttl(services):
    with pytest.raises(ValueError, match="TTL"):
        SharedCache(services.cache_redis, "forever", ttl_seconds=0)
