"""Usage metering on real chDB and the app database: billable events of an organization's sites
in its UTC billing period, across a period boundary and site time zones, stored with history,
and the capacity rule applied by the metering job."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from sqlmodel import select

from app.analytics.clickhouse.gateway import ClickHouse, ClickHouseError, Row
from app.analytics.queries.usage import billable_events
from app.billing.capacity import Notice
from app.billing.metering import (
    BillingPeriod,
    billing_period,
    calendar_month,
    meter_organization,
    usage_history,
)
from app.models import BillingProfile
from app.services import Services
from app.sites.registry import add_site
from app.tasks.billing_jobs import meter_everyone, meter_usage
from app.tasks.schedule import Job, jobs
from tests.conftest import new_user
from tests.integration.org_helpers import move_site, own_organization, set_plan

pytestmark = pytest.mark.db
UTC = dt.UTC
DECEMBER = BillingPeriod(dt.datetime(2026, 12, 1, tzinfo=UTC), dt.datetime(2027, 1, 1, tzinfo=UTC))
GRACE = dt.timedelta(days=7)


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


# (UTC instant, the site's offset then in minutes, event name). Billing periods are UTC: the
# local time (the dashboard's day) never moves an event into another period.
FIRST_SITE = [
    ("2026-11-30 23:30", 120, "pageview"),  # local Dec 1 01:30: November's
    ("2026-12-01 00:10", -300, "pageview"),  # local Nov 30 19:10: December's
    ("2026-12-15 12:00", 60, "pageview"),  # the middle of the month: from the hourly rollup
    ("2026-12-15 12:05", 60, "signup"),  # custom events are billable too
    ("2026-12-15 13:00", 60, "pageview"),
]
SECOND_SITE = [
    ("2026-12-31 10:00", 840, "pageview"),  # UTC+14, local Jan 1 00:00: December's
    ("2026-12-31 23:50", 60, "pageview"),  # local Jan 1 00:50: December's
    ("2027-01-01 00:00", -600, "pageview"),  # local Dec 31 14:00: January's
]


def insert_events(services: Services, site_id: int, rows: Sequence[tuple[str, int, str]]) -> None:
    columns = ["site_id", "event_id", "visitor_id", "session_id", "timestamp", "name", "utc_offset"]
    data: list[list[Any]] = [
        [site_id] * len(rows),
        [site_id << 32 | index for index in range(len(rows))],
        [index + 1 for index in range(len(rows))],
        [index + 1 for index in range(len(rows))],
        [int(at(when).timestamp()) for when, _, _ in rows],
        [name for _, _, name in rows],
        [offset for _, offset, _ in rows],
    ]
    services.clickhouse.insert("events", columns, data, token=f"metering:{uuid.uuid4()}")


def insert_beacons(services: Services, site_id: int, when: str) -> None:
    """A performance beacon: not billable."""
    columns = ["site_id", "timestamp", "event_id", "pathname"]
    data: list[list[Any]] = [[site_id], [int(at(when).timestamp())], [site_id << 32 | 999], ["/"]]
    services.clickhouse.insert("performance", columns, data, token=f"metering:{uuid.uuid4()}")


async def organization_with_traffic(services: Services) -> tuple[int, list[int]]:
    """An organization of two sites with the traffic above, and a site of another one."""
    org_id = await own_organization(services, await new_user(services))
    site_ids = []
    for rows in (FIRST_SITE, SECOND_SITE):
        site = await add_site(services.sessions, f"m-{uuid.uuid4().hex[:10]}.example")
        await move_site(services, site.domain, org_id)
        assert site.id is not None
        insert_events(services, site.id, rows)
        site_ids.append(site.id)
    insert_beacons(services, site_ids[0], "2026-12-10 10:00")
    other = await add_site(services.sessions, f"m-{uuid.uuid4().hex[:10]}.example")
    assert other.id is not None
    insert_events(services, other.id, [("2026-12-15 12:00", 0, "pageview")])
    return org_id, site_ids


async def test_usage_counts_billable_events_by_utc_period(services):
    _, site_ids = await organization_with_traffic(services)
    counts = {
        name: billable_events(services.clickhouse, site_ids, period.start, period.end)
        for name, period in {
            "november": calendar_month(at("2026-11-15 00:00")),
            "december": DECEMBER,
            "january": calendar_month(at("2027-01-02 00:00")),
            # a subscription's period of two days: read from the raw events alone
            "new year": BillingPeriod(at("2026-12-31 00:00"), at("2027-01-02 00:00")),
            "first site's edge": BillingPeriod(at("2026-11-30 23:00"), at("2026-12-01 01:00")),
        }.items()
    }
    assert counts == {
        "november": 1,
        "december": 6,
        "january": 1,
        "new year": 3,
        "first site's edge": 2,
    }
    assert billable_events(services.clickhouse, [site_ids[0]], *_bounds(DECEMBER)) == 4
    assert billable_events(services.clickhouse, [], *_bounds(DECEMBER)) == 0


def _bounds(period: BillingPeriod) -> tuple[dt.datetime, dt.datetime]:
    return period.start, period.end


def test_the_billing_period_is_the_subscriptions_else_the_utc_month():
    start, end = at("2026-12-10 08:30"), at("2027-01-10 08:30")
    subscribed = BillingProfile(
        organization_id=1,
        subscription_status="active",
        current_period_start=start,
        current_period_end=end,
    )
    assert billing_period(subscribed, at("2026-12-31 23:00")) == BillingPeriod(start, end)
    # its period over (the renewal's webhook not arrived yet), or no paying subscription
    assert billing_period(subscribed, end) == calendar_month(end)
    subscribed.subscription_status = "canceled"
    assert billing_period(subscribed, at("2026-12-31 23:00")) == DECEMBER
    assert calendar_month(at("2026-12-31 23:59")) == DECEMBER
    assert calendar_month(at("2027-01-01 00:00")).start == DECEMBER.end


async def _profile(services: Services, org_id: int) -> BillingProfile:
    async with services.sessions() as session:
        query = select(BillingProfile).where(BillingProfile.organization_id == org_id)
        return (await session.exec(query)).one()


async def test_metering_stores_the_count_and_starts_the_grace_period(services):
    org_id, _ = await organization_with_traffic(services)
    await set_plan(services, org_id, "enterprise", custom_monthly_event_limit=5)
    runs = []
    for now in (at("2026-12-20 10:00"), at("2026-12-20 10:15")):
        runs.append(
            await meter_organization(
                services.sessions,
                services.clickhouse,
                services.capacity,
                org_id,
                now=now,
                grace=GRACE,
            )
        )
    first, second = runs
    assert (first.events, first.limit, first.period) == (6, 5, DECEMBER)
    assert (set(first.notices), set(second.notices)) == ({Notice.DEPLETED}, set())
    profile = await _profile(services, org_id)
    assert (profile.capacity_period_start, profile.grace_started_at, profile.grace_ends_at) == (
        DECEMBER.start,
        at("2026-12-20 10:00"),
        at("2026-12-27 10:00"),
    )
    assert (profile.dropping_since, profile.depleted_email_period) == (None, DECEMBER.start)
    history = await usage_history(services.sessions, org_id, DECEMBER)
    assert [(row.events, row.counted_at) for row in history] == [
        (6, at("2026-12-20 10:00")),
        (6, at("2026-12-20 10:15")),
    ]
    assert (
        await usage_history(services.sessions, org_id, calendar_month(at("2026-11-02 00:00"))) == []
    )


def test_the_metering_job_runs_every_15_minutes():
    assert Job(meter_usage, 15 * 60) in jobs(flush_interval_seconds=1.0)
    assert (meter_usage.queue_name, meter_usage.options["max_retries"]) == ("billing", 0)


class _FailingFor(ClickHouse):
    """The test's ClickHouse, except that counting one site's events fails (as a ClickHouse
    outage would for the node holding it)."""

    def __init__(self, inner: ClickHouse, site_id: int) -> None:
        super().__init__(inner.dsn, inner.database)
        self._client = inner.client  # one chDB directory opens once per process
        self._site_id = site_id

    def query(self, name: str, sql: str, params: Mapping[str, Any] | None = None) -> list[Row]:
        if self._site_id in (params or {}).get("sites", ()):
            raise ClickHouseError(f"query {name} failed: the node is down")
        return super().query(name, sql, params)

    def close(self) -> None:
        """The client is the test's, closed with it."""


async def test_one_organizations_failure_leaves_the_others_metered(settings, services):
    bad_org, bad_sites = await organization_with_traffic(services)
    good_org, _ = await organization_with_traffic(services)
    failing = Services(settings, gateway=_FailingFor(services.clickhouse, bad_sites[0]))
    now = at("2026-12-20 11:00")
    try:
        _, failed = await meter_everyone(failing, now)
    finally:
        await failing.aclose()
    assert bad_org in failed
    assert good_org not in failed
    assert [row.events for row in await usage_history(services.sessions, good_org, DECEMBER)] == [6]
    assert await usage_history(services.sessions, bad_org, DECEMBER) == []
