"""`delete_site_data` erases one site's rows from every ClickHouse table and nothing else."""

from __future__ import annotations

import asyncio

import pytest

from app.analytics.clickhouse.erase import SITE_TABLES
from app.models import Site
from app.sites.registry import add_site
from app.tasks import context
from app.tasks.deletion_jobs import delete_site_data, erase_orphaned_site_data
from tests.integration.jobs import run_jobs
from tests.integration.site_rows import record_traffic, row_counts, site_id_of

pytestmark = pytest.mark.db


async def test_site_rows_go_from_all_tables_and_other_sites_keep_theirs(
    client, services, site_domain
):
    other = await add_site(services.sessions, f"kept-{site_domain}")
    await record_traffic(services, client, site_domain)
    await record_traffic(services, client, other.domain)
    doomed = await site_id_of(services, site_domain)
    assert other.id is not None
    assert all(row_counts(services, doomed).values())  # every table has rows before

    delete_site_data.send(doomed)
    run_jobs(services)

    assert row_counts(services, doomed) == dict.fromkeys(SITE_TABLES, 0)
    assert all(row_counts(services, other.id).values())


async def test_deleting_twice_is_harmless(client, services, site_domain):
    await record_traffic(services, client, site_domain)
    site_id = await site_id_of(services, site_domain)

    delete_site_data.send(site_id)
    delete_site_data.send(site_id)
    run_jobs(services)

    assert row_counts(services, site_id) == dict.fromkeys(SITE_TABLES, 0)


async def test_the_sweep_erases_rows_that_outlived_their_site(client, services, site_domain):
    """Events of a deleted site that land after its erasure (ingest caches sites for a while)
    are erased by the periodic sweep; sites that exist keep theirs."""
    kept = await add_site(services.sessions, f"kept-{site_domain}")
    await record_traffic(services, client, site_domain)
    await record_traffic(services, client, kept.domain)
    gone = await site_id_of(services, site_domain)
    async with services.sessions() as session:
        await session.delete(await session.get(Site, gone))
        await session.commit()
    assert kept.id is not None

    context.bind(services)
    assert await asyncio.to_thread(erase_orphaned_site_data) >= 1

    assert row_counts(services, gone) == dict.fromkeys(SITE_TABLES, 0)
    assert all(row_counts(services, kept.id).values())
    assert await asyncio.to_thread(erase_orphaned_site_data) == 0  # nothing left to find


async def test_a_new_site_never_gets_a_deleted_sites_id(services, site_domain):
    newest = await add_site(services.sessions, f"newest-{site_domain}")
    async with services.sessions() as session:
        await session.delete(await session.get(Site, newest.id))
        await session.commit()
    after = await add_site(services.sessions, f"after-{site_domain}")
    assert after.id is not None
    assert newest.id is not None
    assert after.id > newest.id
