"""Deletion jobs: a site's ClickHouse rows, and accounts whose 72-hour grace period has passed.

The logic lives in `app.analytics.clickhouse.erase` and `app.accounts.deletion`; these actors run it
and deliver the two deletion emails. The cancel link's token is minted here, in the worker, never
passed as a message argument. `app.accounts.deletion` (which enqueues these actors) is imported
inside the actors, so that importing either module first works.

Must not import `app.tasks.actors` (which imports this module to register its actors).
"""

from __future__ import annotations

import logging

import dramatiq

import app.tasks.broker  # noqa: F401  (actors are declared against the placeholder broker)
from app.analytics.clickhouse.erase import erase_site, recent_site_ids
from app.analytics.clickhouse.gateway import ClickHouseError
from app.tasks.context import current, run_async
from app.tasks.mailing import deliver, email_actor

log = logging.getLogger(__name__)

MAX_CLICKHOUSE_RETRIES = 10
# Late events of a deleted site carry recent timestamps: two days back covers any of them.
ORPHAN_WINDOW_HOURS = 48


def _retry_clickhouse(retries: int, exc: BaseException) -> bool:
    """Retry ClickHouse failures (server restarting, unreachable, busy); not bugs."""
    return isinstance(exc, ClickHouseError) and retries < MAX_CLICKHOUSE_RETRIES


# Ten retries with exponential backoff from 10 s up to 10 min ride out a ClickHouse restart.
@dramatiq.actor(
    queue_name="deletion",
    retry_when=_retry_clickhouse,
    min_backoff=10_000,
    max_backoff=10 * 60_000,
    time_limit=30 * 60_000,
)
def delete_site_data(site_id: int) -> int:
    """Delete every ClickHouse row of site `site_id` (idempotent); return the tables cleared."""
    services = current()
    return erase_site(services.clickhouse, site_id, services.settings.CLICKHOUSE_CLUSTER)


# Every 10 minutes (app.tasks.schedule), like the purge: a failed run is redone by the next one.
@dramatiq.actor(queue_name="deletion", max_retries=0, time_limit=30 * 60_000, max_age=600_000)
def erase_orphaned_site_data() -> int:
    """Erase the rows of deleted sites that arrived after their erasure; return how many sites."""
    from app.sites.registry import existing_site_ids

    gateway = current().clickhouse
    recent = recent_site_ids(gateway, ORPHAN_WINDOW_HOURS)
    alive = run_async(lambda services: existing_site_ids(services.sessions, recent))
    orphans = sorted(recent - alive)
    for site_id in orphans:
        erase_site(gateway, site_id, current().settings.CLICKHOUSE_CLUSTER)
    return len(orphans)


# Every 10 minutes (app.tasks.schedule): a failed run is retried by the next one.
@dramatiq.actor(queue_name="deletion", max_retries=0, time_limit=30 * 60_000, max_age=600_000)
def purge_deleted_accounts() -> int:
    """Destroy the accounts whose grace period is over; queue their final emails."""
    from app.accounts import deletion as account_deletion

    stats = run_async(account_deletion.purge_deleted_accounts)
    for address in stats.addresses:
        send_account_deleted.send(address)
    return stats.users


@email_actor
def send_deletion_scheduled(user_id: int) -> None:
    """Email the user when their account will be destroyed and a fresh link to cancel."""
    from app.accounts import deletion as account_deletion

    found = run_async(lambda services: account_deletion.scheduled_email(services, user_id))
    if found is not None:
        deliver("deletion_scheduled", *found)


@email_actor
def send_account_deleted(address: str) -> None:
    """The final confirmation, to the address of an account that no longer exists."""
    deliver("account_deleted", address, {})


ACTORS: tuple[dramatiq.Actor, ...] = (  # type: ignore[type-arg]
    delete_site_data,
    erase_orphaned_site_data,
    purge_deleted_accounts,
    send_deletion_scheduled,
    send_account_deleted,
)
