"""The whole event path on real Redis and chDB: POST → stream → flush → dashboard queries."""

from __future__ import annotations

import datetime as dt

import pytest

from app.analytics.queries import stats
from app.analytics.queries.periods import resolve_period
from app.services import Services
from app.sites.registry import get_site
from tests.conftest import PEER_IP, PROXY_IP, make_client, random_peer
from tests.integration.helpers import BROWSER_UA, post_event, stored

pytestmark = pytest.mark.db


async def _site_id(services: Services, domain: str) -> int:
    site = await get_site(services.sessions, domain)
    assert site.id is not None
    return site.id


async def test_pageview_is_enriched_and_stored(client, services, site_domain):
    body = {
        "n": "pageview",
        "u": f"https://{site_domain}/pricing?utm_source=newsletter&utm_campaign=fall",
        "d": site_domain,
        "r": "https://www.google.com/search?q=ursa",
        "ursa": {"id": "0190abcdef012345"},
    }
    response = await post_event(client, body)
    assert response.status_code == 202
    assert response.headers["access-control-allow-origin"] == "*"
    assert "x-ursa-dropped" not in response.headers
    assert "set-cookie" not in response.headers
    services.flusher.drain()

    [row] = stored(services.clickhouse, await _site_id(services, site_domain))
    assert row["event_id"] == 0x0190ABCDEF012345
    assert row["name"] == "pageview"
    assert row["pathname"] == "/pricing"
    assert row["hostname"] == site_domain
    assert row["referrer_source"] == "Newsletter"  # utm_source wins over the referrer
    assert (row["utm_source"], row["utm_campaign"]) == ("newsletter", "fall")
    assert row["country_code"] == "GB"
    assert (row["browser"], row["os"], row["device"]) == ("Chrome", "Windows", "Desktop")
    assert row["visitor_id"] > 0
    assert row["session_id"] > 0


async def test_behind_a_proxy_the_visitor_hash_is_the_clients_whatever_it_forwards(
    proxied_services, site_domain
):
    """The proxy adds its own X-Forwarded-For line after the client's (HAProxy's `forwardfor`):
    a client that writes one of its own neither changes its visitor hash nor takes another's."""
    event = {"n": "pageview", "u": f"https://{site_domain}/", "d": site_domain}
    sent = [(PEER_IP, "8.8.8.8"), (PEER_IP, "9.9.9.9"), (random_peer(), PEER_IP)]
    for n, (client, spoofed) in enumerate(sent, start=1):
        async with make_client(proxied_services, PROXY_IP, proxy_adds=client) as http:
            http.headers["X-Forwarded-For"] = spoofed
            response = await post_event(http, {**event, "ursa": {"id": f"{n:016x}"}})
            assert response.status_code == 202
    proxied_services.flusher.drain()

    first, second, impostor = stored(
        proxied_services.clickhouse, await _site_id(proxied_services, site_domain)
    )
    assert first["visitor_id"] == second["visitor_id"] != impostor["visitor_id"]
    assert (first["country_code"], second["country_code"]) == ("GB", "GB")  # PEER_IP's, not US
    assert impostor["country_code"] != "GB"


async def test_session_spans_pages_and_dashboard_numbers(client, services, site_domain):
    for path in ("/", "/docs", "/pricing"):
        response = await post_event(
            client, {"n": "pageview", "u": f"https://{site_domain}{path}", "d": site_domain}
        )
        assert response.status_code == 202
    custom = {
        "n": "Signup",
        "u": f"https://{site_domain}/pricing",
        "d": site_domain,
        "p": {"plan": "pro"},
    }
    assert (await post_event(client, custom)).status_code == 202
    services.flusher.drain()

    site_id = await _site_id(services, site_domain)
    rows = stored(services.clickhouse, site_id)
    assert len({row["session_id"] for row in rows}) == 1
    assert [row["props"] for row in rows if row["name"] == "Signup"] == [{"plan": "pro"}]

    period = resolve_period("today", "UTC", dt.datetime.now(dt.UTC))
    numbers = stats.overview(services.clickhouse, stats.Scope(site_id, period))
    assert numbers == {
        "visitors": 1,
        "visits": 1,
        "pageviews": 3,
        "bounce_rate": 0,
        "visit_duration": numbers["visit_duration"],
        "events": 4,
    }
    pages = stats.breakdown(services.clickhouse, stats.Scope(site_id, period), "page")
    assert sorted(row["value"] for row in pages) == ["/", "/docs", "/pricing"]


async def test_bots_and_unknown_sites_are_dropped_with_a_reason(client, services, site_domain):
    bot = await post_event(
        client,
        {"n": "pageview", "u": f"https://{site_domain}/", "d": site_domain},
        user_agent="Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    )
    assert (bot.status_code, bot.headers["x-ursa-dropped"]) == (202, "bot")
    headless = await post_event(
        client,
        {"n": "pageview", "u": f"https://{site_domain}/", "d": site_domain},
        user_agent=BROWSER_UA.replace("Chrome/", "HeadlessChrome/"),
    )
    assert headless.headers["x-ursa-dropped"] == "bot"
    unknown = await post_event(
        client, {"n": "pageview", "u": "https://nobody.example/", "d": "nobody.example"}
    )
    assert (unknown.status_code, unknown.headers["x-ursa-dropped"]) == (202, "unknown_site")
    services.flusher.drain()
    assert stored(services.clickhouse, await _site_id(services, site_domain)) == []


async def test_performance_event_goes_to_its_own_table(client, services, site_domain):
    body = {
        "n": "ursa:performance",
        "u": f"https://{site_domain}/",
        "d": site_domain,
        "i": False,
        "ursa": {"perf": {"ttfb": 120, "lcp": 1800.4, "cls": 0.05, "inp": 80}},
    }
    assert (await post_event(client, body)).status_code == 202
    services.flusher.drain()
    site_id = await _site_id(services, site_domain)
    assert stored(services.clickhouse, site_id) == []
    [perf] = stored(services.clickhouse, site_id, "performance")
    assert (perf["ttfb"], perf["lcp"], perf["inp"], perf["dns"]) == (120, 1800, 80, None)
    assert abs(perf["cls"] - 0.05) < 1e-6


async def test_one_event_for_several_domains(client, services, site_domain):
    from app.sites.registry import add_site

    other = await add_site(services.sessions, f"rollup-{site_domain}")
    body = {"n": "pageview", "u": f"https://{site_domain}/", "d": f"{site_domain}, {other.domain}"}
    assert (await post_event(client, body)).status_code == 202
    services.flusher.drain()
    assert len(stored(services.clickhouse, await _site_id(services, site_domain))) == 1
    assert other.id is not None
    assert len(stored(services.clickhouse, other.id)) == 1


async def test_preflight_and_tracker_headers(client):
    preflight = await client.options("/api/event")
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in preflight.headers
    script = await client.get("/js/script.js")
    assert script.status_code == 200
    assert script.headers["content-type"] == "application/javascript; charset=utf-8"
    assert script.headers["cross-origin-resource-policy"] == "cross-origin"
    assert script.headers["x-content-type-options"] == "nosniff"
    assert "set-cookie" not in script.headers


async def test_rollups_file_events_under_the_sites_local_hour_and_day(client, services):
    """India is UTC+5:30: a half-hour offset that whole-hour UTC rollups would get wrong."""
    from app.sites.registry import add_site

    site = await add_site(services.sessions, "kolkata-rollups.example", "Asia/Kolkata")
    assert site.id is not None
    page = {"u": "https://kolkata-rollups.example/menu", "d": site.domain}
    assert (await post_event(client, {"n": "pageview", **page})).status_code == 202
    beacon = {"n": "ursa:performance", "ursa": {"perf": {"ttfb": 300, "lcp": 1500}}, **page}
    assert (await post_event(client, beacon)).status_code == 202
    services.flusher.drain()

    [event] = stored(services.clickhouse, site.id)
    assert event["utc_offset"] == 330
    local = event["timestamp"].replace(tzinfo=None) + dt.timedelta(minutes=330)
    [total] = services.clickhouse.query(
        "test_hours",
        "SELECT hour, session_starts FROM totals_hourly WHERE site_id = {site:UInt32}",
        {"site": site.id},
    )
    assert total["hour"].replace(tzinfo=None) == local.replace(minute=0, second=0)
    days = services.clickhouse.query(
        "test_days",
        "SELECT DISTINCT day FROM breakdowns_daily WHERE site_id = {site:UInt32} "
        "UNION ALL SELECT day FROM vitals_daily WHERE site_id = {site:UInt32}",
        {"site": site.id},
    )
    assert {row["day"] for row in days} == {local.date()}

    period = resolve_period("today", "Asia/Kolkata", dt.datetime.now(dt.UTC))
    scope = stats.Scope(site.id, period)
    assert stats.overview(services.clickhouse, scope)["visits"] == 1
    assert stats.breakdown(services.clickhouse, scope, "page")[0]["value"] == "/menu"
    assert stats.web_vitals(services.clickhouse, scope)["samples"] == 1
