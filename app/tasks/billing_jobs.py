"""Billing jobs: usage metering and the capacity rule, every 15 minutes (`app.tasks.schedule`).

The logic lives in `app.billing.metering` (count, store, decide) and `app.billing.notices`
(the emails); this actor runs it for every organization and queues the emails.
"""

from __future__ import annotations

import datetime as dt

import dramatiq

import app.tasks.broker  # noqa: F401  (actors are declared against the placeholder broker)
from app.billing.metering import meter_organization, organization_ids
from app.billing.notices import Email, capacity_emails
from app.models.columns import utcnow
from app.services import Services
from app.tasks import actors
from app.tasks.context import run_async

METER_INTERVAL_SECONDS = 15 * 60


async def meter_one(services: Services, organization_id: int, now: dt.datetime) -> list[Email]:
    """Meter one organization at `now`; the capacity emails to send."""
    metered = await meter_organization(
        services.sessions,
        services.clickhouse,
        services.capacity,
        organization_id,
        now=now,
        grace=dt.timedelta(days=services.settings.CAPACITY_GRACE_DAYS),
    )
    return await capacity_emails(services.sessions, metered, services.settings.BASE_URL)


async def meter_everyone(services: Services, now: dt.datetime) -> list[Email]:
    """Meter every organization; the capacity emails to send."""
    emails: list[Email] = []
    for organization_id in await organization_ids(services.sessions):
        emails += await meter_one(services, organization_id, now)
    return emails


# Every 15 minutes: a failed run is redone by the next one.
@dramatiq.actor(queue_name="billing", max_retries=0, time_limit=10 * 60_000, max_age=900_000)
def meter_usage() -> int:
    """Count every organization's usage and apply the capacity rule; return the emails queued."""
    emails = run_async(lambda services: meter_everyone(services, utcnow()))
    queue_emails(emails)
    return len(emails)


def queue_emails(emails: list[Email]) -> None:
    for email in emails:
        actors.send_email.send(email.template, email.to, email.context)


ACTORS: tuple[dramatiq.Actor, ...] = (meter_usage,)  # type: ignore[type-arg]
