"""Billing jobs: usage metering and the capacity rule, every 15 minutes (`app.tasks.schedule`).

The logic lives in `app.billing.metering` (count, store, decide) and `app.billing.notices`
(the emails); this actor runs it for every organization and queues the emails.
"""

from __future__ import annotations

import datetime as dt

import dramatiq

import app.tasks.broker  # noqa: F401  (actors are declared against the placeholder broker)
from app.billing.metering import meter_organization, organization_ids
from app.billing.notices import Email, capacity_emails, payment_failed_emails
from app.models.columns import utcnow
from app.observability.logging import get_logger
from app.services import Services
from app.tasks import actors
from app.tasks.context import run_async

METER_INTERVAL_SECONDS = 15 * 60
log = get_logger(__name__)


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


class MeteringFailed(Exception):
    """Some organizations could not be metered (each is logged with its error)."""


async def meter_everyone(services: Services, now: dt.datetime) -> tuple[list[Email], list[int]]:
    """Meter every organization: the capacity emails to send, and the organizations that
    failed. One organization's failure (a ClickHouse error, say) is logged and the others are
    metered all the same."""
    emails: list[Email] = []
    failed: list[int] = []
    for organization_id in await organization_ids(services.sessions):
        try:
            emails += await meter_one(services, organization_id, now)
        except Exception:
            log.exception("metering failed", organization_id=organization_id)
            failed.append(organization_id)
    return emails, failed


# Every 15 minutes: a failed run is redone by the next one.
@dramatiq.actor(queue_name="billing", max_retries=0, time_limit=10 * 60_000, max_age=900_000)
def meter_usage() -> int:
    """Count every organization's usage and apply the capacity rule; return the emails queued.
    The run fails (after queueing the others' emails) when an organization could not be
    metered, so that job monitoring sees it."""
    emails, failed = run_async(lambda services: meter_everyone(services, utcnow()))
    queue_emails(emails)
    if failed:
        raise MeteringFailed(f"{len(failed)} organization(s) not metered: {failed[:20]}")
    return len(emails)


@dramatiq.actor(queue_name="billing")
def send_payment_failed(organization_id: int) -> int:
    """Queue the email to each owner of the organization whose payment failed."""
    emails = run_async(
        lambda services: payment_failed_emails(
            services.sessions, organization_id, services.settings.BASE_URL
        )
    )
    queue_emails(emails)
    return len(emails)


def queue_emails(emails: list[Email]) -> None:
    for email in emails:
        actors.send_email.send(email.template, email.to, email.context)


ACTORS: tuple[dramatiq.Actor, ...] = (meter_usage, send_payment_failed)  # type: ignore[type-arg]
