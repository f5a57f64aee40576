"""The capacity rule on the ingest path, against a real Redis and the app database: the cached
answer (hit, expiry, invalidation on a plan change), over-limit drops answered 202 and counted,
and staff's functions."""

from __future__ import annotations

import asyncio
import datetime as dt

import html5lib
import pytest
from prometheus_client import REGISTRY
from sqlmodel import select

from app.analytics.ingest.sites import SiteRef
from app.billing import staff
from app.billing.capacity_cache import REDIS_SECONDS, CapacityCache
from app.billing.metering import calendar_month, usage_record
from app.errors import InvalidInput
from app.models import BillingProfile
from app.models.columns import utcnow
from app.services import Services
from app.sites.registry import get_site
from app.store import keys
from tests.conftest import make_client
from tests.integration.helpers import post_event
from tests.integration.org_helpers import own_organization, set_plan

pytestmark = pytest.mark.db


async def refuse(services: Services, org_id: int, since: dt.datetime | None = None) -> None:
    """Put the organization in the state the metering job leaves when its grace period ended."""
    async with services.sessions() as session:
        query = select(BillingProfile).where(BillingProfile.organization_id == org_id)
        profile = (await session.exec(query)).one()
        profile.dropping_since = since or utcnow()
        profile.grace_started_at = profile.dropping_since - dt.timedelta(days=7)
        profile.grace_ends_at = profile.dropping_since
        session.add(profile)
        await session.commit()


async def _profile(services: Services, org_id: int) -> BillingProfile:
    async with services.sessions() as session:
        query = select(BillingProfile).where(BillingProfile.organization_id == org_id)
        return (await session.exec(query)).one()


def dropped_over_limit() -> float:
    value = REGISTRY.get_sample_value("ursa_events_dropped_total", {"reason": "over_limit"})
    return value or 0.0


async def test_the_answer_is_held_in_redis_and_in_process(services, owner, site_domain):
    org_id = await own_organization(services, owner)
    site = SiteRef(1, site_domain, organization_id=org_id)
    cache = CapacityCache(services.cache_redis, services.sessions, local_seconds=0.2)
    assert cache.cached(site) is None
    assert await cache.has_enough_capacity(site) is True
    assert cache.cached(site) is True  # held in process: no round trip
    key = keys.CAPACITY + str(org_id)
    assert 0 < await services.cache_redis.ttl(key) <= REDIS_SECONDS

    await refuse(services, org_id)  # the database changed, the shared answer did not
    other_process = CapacityCache(services.cache_redis, services.sessions)
    assert await other_process.has_enough_capacity(site) is True  # a Redis hit
    await asyncio.sleep(0.25)
    assert cache.cached(site) is None  # the in-process answer expired

    await cache.invalidate(org_id)
    assert await cache.has_enough_capacity(site) is False
    assert await services.cache_redis.get(key) == b"0"


async def test_a_site_of_no_organization_always_collects(services):
    cache = CapacityCache(services.cache_redis, services.sessions)
    site = SiteRef(1, "nobody.example")
    assert (cache.cached(site), await cache.has_enough_capacity(site)) == (True, True)


async def test_over_the_limit_after_grace_events_are_refused_with_202_and_counted(
    services, owner, site_domain
):
    org_id = await own_organization(services, owner)
    await refuse(services, org_id, since=utcnow() - dt.timedelta(hours=1))
    before = dropped_over_limit()
    body = {"n": "pageview", "u": f"https://{site_domain}/", "d": site_domain}
    async with make_client(services) as http:
        answers = [await post_event(http, body) for _ in range(3)]
    assert [(a.status_code, a.headers.get("x-ursa-dropped")) for a in answers] == [
        (202, "over_limit")
    ] * 3
    assert dropped_over_limit() - before == 3
    assert await services.capacity.take_refused(org_id) == 3
    assert await services.capacity.take_refused(org_id) == 0


async def test_a_plan_change_by_staff_collects_again_at_once(services, owner, site_domain):
    org_id = await own_organization(services, owner)
    await refuse(services, org_id)
    body = {"n": "pageview", "u": f"https://{site_domain}/", "d": site_domain}
    async with make_client(services) as http:
        assert (await post_event(http, body)).headers.get("x-ursa-dropped") == "over_limit"
        await staff.set_plan(services.sessions, services.capacity, org_id, "basic")
        kept = await post_event(http, body)
    assert (kept.status_code, kept.headers.get("x-ursa-dropped")) == (202, None)
    profile = await _profile(services, org_id)
    assert (profile.plan_code, profile.dropping_since, profile.grace_ends_at) == (
        "basic",
        None,
        None,
    )


async def test_staff_extend_the_grace_period(services, owner):
    org_id = await own_organization(services, owner)
    since = utcnow() - dt.timedelta(hours=1)
    await refuse(services, org_id, since=since)
    now = utcnow()
    state = await staff.extend_grace(services.sessions, services.capacity, org_id, 3, now)
    assert (state.accepting, state.grace_ends_at) == (True, now + dt.timedelta(days=3))
    profile = await _profile(services, org_id)
    assert (profile.dropping_since, profile.grace_ends_at) == (None, now + dt.timedelta(days=3))
    with pytest.raises(InvalidInput, match="days must be from 1 to 366"):
        await staff.extend_grace(services.sessions, services.capacity, org_id, 0, now)


async def test_staff_set_enterprise_limits_only_on_enterprise(services, owner):
    org_id = await own_organization(services, owner)
    limits = staff.CustomLimits(monthly_event_limit=5_000_000, max_sites=200)
    with pytest.raises(InvalidInput, match="on the free plan; custom limits apply to Enterprise"):
        await staff.set_limits(services.sessions, services.capacity, org_id, limits)
    await set_plan(services, org_id, "enterprise")
    await staff.set_limits(services.sessions, services.capacity, org_id, limits)
    profile = await _profile(services, org_id)
    assert (profile.custom_monthly_event_limit, profile.custom_max_sites) == (5_000_000, 200)
    assert profile.custom_max_members is None  # not named: left as it was
    with pytest.raises(InvalidInput, match="name at least one limit"):
        await staff.set_limits(services.sessions, None, org_id, staff.CustomLimits())


async def test_the_site_reference_carries_its_organization(services, owner, site_domain):
    site = await get_site(services.sessions, site_domain)
    ref = await services.sites.lookup(site_domain)
    assert ref is not None
    assert ref.organization_id == site.organization_id == await own_organization(services, owner)


async def _counted(services: Services, org_id: int, events: int, refused: int) -> None:
    """The metering job's work for this period: a count, and the refused events moved on."""
    period = calendar_month(utcnow())
    async with services.sessions() as session:
        query = select(BillingProfile).where(BillingProfile.organization_id == org_id)
        profile = (await session.exec(query)).one()
        profile.capacity_period_start = period.start
        profile.refused_events = refused
        session.add(profile)
        session.add(usage_record(org_id, period, events, utcnow()))
        await session.commit()


def _alerts(page: str) -> list[str]:
    document = html5lib.parse(page, namespaceHTMLElements=False)
    return [
        " ".join("".join(p.itertext()).split())
        for p in document.iter("p")
        if p.get("role") == "alert"
    ]


async def test_the_billing_page_and_the_dashboard_show_usage_and_refused_events(
    services, owner, owner_client, site_domain
):
    org_id = await own_organization(services, owner)
    await _counted(services, org_id, 2_500, 0)
    page = (await owner_client.get(f"/orgs/{org_id}/billing")).text
    assert "2,500 of 10,000 billable events" in page
    assert '<progress class="usage" max="100" value="25"' in page
    [day] = html5lib.parse(page, namespaceHTMLElements=False).iterfind(
        ".//table[@class='breakdown usage-days']/tbody/tr"
    )
    assert ["".join(cell.itertext()) for cell in day] == [f"{utcnow():%Y-%m-%d}", "2,500"]
    assert _alerts(page) == []
    assert _alerts((await owner_client.get(f"/{site_domain}")).text) == []

    since = utcnow().replace(microsecond=0) - dt.timedelta(hours=1)
    await refuse(services, org_id, since=since)
    await _counted(services, org_id, 12_000, 340)
    page = (await owner_client.get(f"/orgs/{org_id}/billing")).text
    assert '<progress class="usage" max="100" value="100"' in page
    [alert] = _alerts(page)
    assert alert.startswith(f"New events are refused since {since:%Y-%m-%d %H:%M} UTC")
    assert "340 events refused so far." in alert
    dashboard = (await owner_client.get(f"/{site_domain}")).text
    assert _alerts(dashboard) == [alert]


async def test_the_dashboard_tells_of_the_grace_period(services, owner, owner_client, site_domain):
    org_id = await own_organization(services, owner)
    ends = utcnow().replace(microsecond=0) + dt.timedelta(days=3)
    async with services.sessions() as session:
        query = select(BillingProfile).where(BillingProfile.organization_id == org_id)
        profile = (await session.exec(query)).one()
        profile.grace_started_at, profile.grace_ends_at = ends - dt.timedelta(days=7), ends
        session.add(profile)
        await session.commit()
    await _counted(services, org_id, 10_001, 0)
    [alert] = _alerts((await owner_client.get(f"/{site_domain}")).text)
    assert alert.startswith("Over the 10,000 events of this billing period.")
    assert f"still collected until {ends:%Y-%m-%d %H:%M} UTC" in alert


async def test_the_dashboard_tells_of_a_failed_payment(services, owner, owner_client, site_domain):
    org_id = await own_organization(services, owner)
    failed = utcnow().replace(microsecond=0) - dt.timedelta(days=1)
    async with services.sessions() as session:
        query = select(BillingProfile).where(BillingProfile.organization_id == org_id)
        profile = (await session.exec(query)).one()
        profile.payment_failed_at = failed
        session.add(profile)
        await session.commit()
    page = (await owner_client.get(f"/{site_domain}")).text
    [alert] = _alerts(page)
    assert alert.startswith(
        f"The last payment for this site's organization failed on {failed:%Y-%m-%d}."
    )
    assert f'href="/orgs/{org_id}/billing"' in page
    await _counted(services, org_id, 10_001, 0)  # and over its limit too: both banners
    async with services.sessions() as session:
        profile = (await session.exec(query)).one()
        profile.grace_started_at, profile.grace_ends_at = failed, failed + dt.timedelta(days=7)
        session.add(profile)
        await session.commit()
    alerts = _alerts((await owner_client.get(f"/{site_domain}")).text)
    assert [alert[:20] for alert in alerts] == ["The last payment for", "Over the 10,000 even"]
