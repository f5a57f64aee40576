"""Usage metering: the billable events of a set of sites in a UTC time range.

Billable events are the rows of `events` (page views and custom events); performance and
engagement beacons live in tables of their own and never count. Billing periods are UTC
instants, while the hourly totals (`totals_hourly`) file events under the site's local hour.
So the count is made of two parts that partition the range exactly:

- the rollup's rows whose local hour lies at least `MAX_OFFSET` inside the range: whatever the
  site's offset (UTC−12 to UTC+14), every event of such an hour happened inside the range;
- the raw events of the range filed under any other local hour: the edges, about a day at each
  end, read from `events` (sorted by site and day, so a short range scan per site).

A range shorter than twice `MAX_OFFSET` is read from the raw events alone.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection

from app.analytics.clickhouse.gateway import Gateway

# Local wall-clock time is UTC plus at most 14 hours and minus at most 12.
MAX_OFFSET = dt.timedelta(hours=14)
# The UTC instants at which an event of a local hour outside the interior may have happened.
EDGE_AFTER_START = MAX_OFFSET + dt.timedelta(hours=13)
EDGE_BEFORE_END = MAX_OFFSET + dt.timedelta(hours=14)

# `toStartOfHour(timestamp + toIntervalMinute(utc_offset))` is the local hour the rollup files
# an event under (as `totals_hourly_mv` computes it).
BILLABLE_EVENTS = """
SELECT
    (SELECT sum(events) FROM totals_hourly
     WHERE site_id IN {sites:Array(UInt32)}
       AND hour >= {inner_start:DateTime('UTC')} AND hour < {inner_end:DateTime('UTC')})
  + (SELECT count() FROM events
     WHERE site_id IN {sites:Array(UInt32)}
       AND timestamp >= {start:DateTime('UTC')} AND timestamp < {end:DateTime('UTC')}
       AND (timestamp < {edge_start:DateTime('UTC')} OR timestamp >= {edge_end:DateTime('UTC')})
       AND NOT (toStartOfHour(timestamp + toIntervalMinute(utc_offset))
                    >= {inner_start:DateTime('UTC')}
                AND toStartOfHour(timestamp + toIntervalMinute(utc_offset))
                    < {inner_end:DateTime('UTC')}))
    AS events
"""


def billable_events(
    gateway: Gateway, site_ids: Collection[int], start: dt.datetime, end: dt.datetime
) -> int:
    """Page views and custom events of `site_ids` from `start` (inclusive) to `end` (UTC)."""
    if not site_ids or end <= start:
        return 0
    inner_start, inner_end = start + MAX_OFFSET, end - MAX_OFFSET
    edge_start, edge_end = start + EDGE_AFTER_START, end - EDGE_BEFORE_END
    if inner_end <= inner_start:  # no interior: the raw events alone, all of them edges
        inner_start = inner_end = edge_start = edge_end = end
    params = {
        "sites": sorted(site_ids),
        "start": start,
        "end": end,
        "inner_start": inner_start,
        "inner_end": inner_end,
        "edge_start": edge_start,
        "edge_end": edge_end,
    }
    rows = gateway.query("billable_events", BILLABLE_EVENTS, params)
    return int(rows[0]["events"]) if rows else 0
