"""Erasing a site's analytics: every ClickHouse row whose `site_id` is the site's.

A deleted site's rows are erased at once (`app.tasks.deletion_jobs.delete_site_data`). Events
accepted in the moments after (ingest caches sites for `SITE_CACHE_SECONDS`) or still in the
buffer land later; the periodic sweep finds them: `recent_site_ids` names every site with
recent data, and those the app database no longer knows are erased again.
"""

from __future__ import annotations

import logging

from app.analytics.clickhouse.gateway import Gateway
from app.analytics.clickhouse.schema import quoted_cluster

log = logging.getLogger(__name__)

# Raw tables first, then the rollups the materialized views filled from them.
SITE_TABLES = (
    "events",
    "performance",
    "engagement",
    "totals_hourly",
    "totals_daily",
    "breakdowns_daily",
    "vitals_daily",
    "engagement_daily",
)

# A mutation rewrites the affected parts, so the rows are gone from disk rather than hidden, and
# `mutations_sync = 2` waits until it is done everywhere. One that matches no rows is a no-op, so
# running it again (after a retry or a crash) is harmless.
_DELETE = (
    "ALTER TABLE {table} DELETE WHERE site_id = {{site_id:UInt32}} SETTINGS mutations_sync = 2"
)


def erase_site(gateway: Gateway, site_id: int, cluster: str = "") -> int:
    """Delete every row of site `site_id` from each analytics table; return the tables cleared.

    In cluster mode the rows live in the `<table>_local` tables of every shard; a `Distributed`
    table cannot be mutated, so the deletion goes to those, `ON CLUSTER`. Raises
    `ClickHouseError` when a statement fails; the tables before it are already clear.
    """
    for table in SITE_TABLES:  # fixed names, never input
        target = f"{table}_local ON CLUSTER {quoted_cluster(cluster)}" if cluster else table
        gateway.command(_DELETE.format(table=target), {"site_id": int(site_id)})
    log.info("erased the analytics of site %d from %d tables", site_id, len(SITE_TABLES))
    return len(SITE_TABLES)


def recent_site_ids(gateway: Gateway, hours: int) -> set[int]:
    """The sites with data in the last `hours` hours (read from the small hourly rollup)."""
    rows = gateway.query(
        "recent_site_ids",
        "SELECT DISTINCT site_id FROM totals_hourly"
        " WHERE hour >= now() - toIntervalHour({hours:UInt32})",
        {"hours": hours},
    )
    return {int(row["site_id"]) for row in rows}
