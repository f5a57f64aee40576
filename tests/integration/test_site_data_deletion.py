"""`delete_site_data` erases one site's rows from every ClickHouse table and nothing else."""

from __future__ import annotations

import pytest

from app.analytics.erase import SITE_TABLES
from app.sites import add_site
from app.tasks.deletion_jobs import delete_site_data
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
