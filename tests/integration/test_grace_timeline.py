"""The whole grace-period timeline with an injected clock: under → over → "capacity depleted"
email → reminder → drop → upgrade → accept, and the period rollover. Events go through
`/api/event` and the flusher into chDB; emails through a real SMTP sink. Not one event
accepted (202 without a drop) is missing from ClickHouse, and the refused ones are counted."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlmodel import select

from app.analytics.clickhouse.gateway import ClickHouse
from app.analytics.ingest.ids import make_id
from app.billing import staff
from app.models import BillingProfile, Organization, User
from app.models.columns import utcnow
from app.services import Services
from app.settings import Settings
from app.sites.registry import get_site
from app.tasks.billing_jobs import meter_one, queue_emails
from tests.conftest import make_client
from tests.integration.helpers import post_event, stored
from tests.integration.jobs import run_jobs
from tests.integration.org_helpers import own_organization, set_plan
from tests.integration.smtp_sink import SmtpSink

pytestmark = pytest.mark.db
LIMIT = 5
HOUR, DAY = dt.timedelta(hours=1), dt.timedelta(days=1)


@pytest.fixture
async def mail_services(
    settings: Settings, clickhouse: ClickHouse, sink: SmtpSink
) -> AsyncIterator[Services]:
    changed = {**settings.model_dump(), "SMTP_URL": sink.url(), "CAPACITY_GRACE_DAYS": 7}
    instance = Services(Settings(_env_file=None, **changed), gateway=clickhouse)
    yield instance
    await instance.aclose()
    if "sync_redis" in instance.__dict__:
        instance.sync_redis.close()


class Sender:
    """Sends page views with ids of their own and keeps which were accepted or refused."""

    def __init__(self, http: httpx.AsyncClient, domain: str) -> None:
        self.http, self.domain = http, domain
        self.accepted: list[int] = []
        self.refused: list[int] = []
        self.sequence = 0

    async def send(self, count: int) -> list[str | None]:
        reasons = []
        for _ in range(count):
            self.sequence += 1
            event_id = make_id(low=self.sequence)
            body = {
                "n": "pageview",
                "u": f"https://{self.domain}/p{self.sequence}",
                "d": self.domain,
                "ursa": {"id": f"{event_id:016x}"},
            }
            answer = await post_event(self.http, json.dumps(body).encode())
            assert answer.status_code == 202
            reason = answer.headers.get("x-ursa-dropped")
            (self.refused if reason else self.accepted).append(event_id)
            reasons.append(reason)
        return reasons


async def _profile(services: Services, org_id: int) -> BillingProfile:
    async with services.sessions() as session:
        query = select(BillingProfile).where(BillingProfile.organization_id == org_id)
        return (await session.exec(query)).one()


async def _subscribe(services: Services, org_id: int, start: dt.datetime, end: dt.datetime) -> None:
    """A paying subscription whose period runs from `start` to `end`."""
    async with services.sessions() as session:
        query = select(BillingProfile).where(BillingProfile.organization_id == org_id)
        profile = (await session.exec(query)).one()
        profile.subscription_status = "active"
        profile.current_period_start, profile.current_period_end = start, end
        session.add(profile)
        await session.commit()


async def test_the_grace_period_from_first_overage_to_upgrade(
    mail_services: Services, sink: SmtpSink, owner: User, site_domain: str
):
    services = mail_services
    org_id = await own_organization(services, owner)
    await set_plan(services, org_id, "enterprise", custom_monthly_event_limit=LIMIT)
    t0 = utcnow()
    period_end = t0 + 40 * DAY  # its calendar month is past every event sent here
    await _subscribe(services, org_id, t0 - HOUR, period_end)

    async def meter(at: dt.datetime) -> list[str]:
        services.flusher.drain()  # the worker's flush, before the count
        emails = await meter_one(services, org_id, at)
        queue_emails(emails)
        run_jobs(services)
        return [email.template for email in emails]

    def subjects() -> list[str]:
        return [received.message["Subject"] for received in sink.received]

    async with make_client(services) as http:
        sender = Sender(http, site_domain)
        assert await sender.send(3) == [None] * 3
        assert await meter(t0) == []  # under
        assert await sender.send(3) == [None] * 3
        assert await meter(t0 + HOUR) == ["capacity_depleted"]  # over: the grace starts
        grace_ends = t0 + HOUR + 7 * DAY
        assert (await _profile(services, org_id)).grace_ends_at == grace_ends
        assert await sender.send(2) == [None] * 2  # the grace period collects everything
        assert await meter(grace_ends - 2 * DAY - HOUR) == []
        assert await meter(grace_ends - 2 * DAY + HOUR) == ["capacity_reminder"]
        assert await meter(grace_ends - DAY) == []  # each email once
        assert await sender.send(2) == [None] * 2
        assert await meter(grace_ends + HOUR) == []  # the grace period over: dropping
        assert await sender.send(3) == ["over_limit"] * 3
        await meter(grace_ends + 2 * HOUR)
        profile = await _profile(services, org_id)
        assert (profile.dropping_since, profile.refused_events) == (grace_ends + HOUR, 3)

        await staff.set_limits(
            services.sessions,
            services.capacity,
            org_id,
            staff.CustomLimits(monthly_event_limit=1000),
        )
        assert await sender.send(2) == [None] * 2  # the upgrade collects at once
        assert await meter(grace_ends + 3 * HOUR) == []
        assert (await _profile(services, org_id)).grace_ends_at is None  # under the new limit

    assert [address for received in sink.received for address in received.rcpt_tos] == [
        owner.email
    ] * 2
    assert subjects() == [
        f"{(await _org_name(services, org_id))} is over its 5 events this billing period",
        f"{(await _org_name(services, org_id))}: new events are refused from "
        f"{grace_ends:%Y-%m-%d %H:%M} UTC",
    ]
    depleted = sink.received[0].message.get_body(preferencelist=("plain",))
    assert depleted is not None
    text = depleted.get_content()
    assert f"keeps collecting every event until {grace_ends:%Y-%m-%d %H:%M} UTC" in text
    assert f"Upgrade: {services.settings.BASE_URL}/orgs/{org_id}/billing" in text
    services.flusher.drain()
    site = await get_site(services.sessions, site_domain)
    assert site.id is not None
    ids = {row["event_id"] for row in stored(services.clickhouse, site.id)}
    assert set(sender.accepted) <= ids  # not one accepted event is missing
    assert len(sender.accepted) == 12
    assert not set(sender.refused) & ids

    # Back on the small limit: a new grace period (its email went out this period already),
    # then a drop, which the next billing period ends.
    await set_plan(services, org_id, "enterprise", custom_monthly_event_limit=LIMIT)
    assert await meter(grace_ends + 4 * HOUR) == []
    assert await meter(grace_ends + 4 * HOUR + 7 * DAY) == []
    assert (await _profile(services, org_id)).dropping_since == grace_ends + 4 * HOUR + 7 * DAY
    await meter(period_end + HOUR)
    profile = await _profile(services, org_id)
    assert profile.capacity_period_start == period_end.replace(
        day=1, hour=0, minute=0, second=0, microsecond=0
    )  # the subscription's period is over: the calendar month, until Stripe renews it
    assert (profile.grace_ends_at, profile.dropping_since, profile.refused_events) == (
        None,
        None,
        0,
    )
    assert len(sink.received) == 2


async def _org_name(services: Services, org_id: int) -> str:
    async with services.sessions() as session:
        organization = await session.get(Organization, org_id)
    assert organization is not None
    return organization.name
