-- Time on page and scroll depth per page and day, so that an unfiltered view reads a few
-- hundred rows instead of grouping every beacon of the period by page and visitor.
--
-- The worker stamps each beacon with what it adds to its pair of page and visitor
-- (`app/analytics/buffer/engaged.py`): `first_beacon` is 1 for the pair's first beacon and
-- `depth_gain` how far the beacon deepens the pair's deepest scroll. Summed over a page's
-- beacons they give its pairs and the sum of their deepest points, and `engaged_ms` the engaged
-- time: `engagement_daily` holds those three sums per page and local day (a pair counts on the
-- day of its first beacon).
--
-- Beacons stored before this migration carry zeros in the new columns and are counted by the
-- pass below, grouped by page and visitor as the raw query counts them. A pair whose first
-- beacon came before the migration and a later one after it counts twice (the worker has no
-- state of it yet): at most one day's pairs of the moment of the upgrade.

ALTER TABLE engagement ADD COLUMN IF NOT EXISTS first_beacon UInt8 DEFAULT 0 AFTER engaged_ms;

ALTER TABLE engagement ADD COLUMN IF NOT EXISTS depth_gain UInt8 DEFAULT 0 AFTER first_beacon;

CREATE TABLE IF NOT EXISTS engagement_daily
(
    site_id UInt32,
    day Date,
    pathname String CODEC(ZSTD(1)),
    pairs SimpleAggregateFunction(sum, UInt64),
    engaged_ms SimpleAggregateFunction(sum, UInt64),
    depth SimpleAggregateFunction(sum, UInt64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYear(day)
ORDER BY (site_id, day, pathname)
SETTINGS non_replicated_deduplication_window = 1000, index_granularity_bytes = 262144;

CREATE MATERIALIZED VIEW IF NOT EXISTS engagement_daily_mv TO engagement_daily AS
SELECT
    site_id,
    toDate(timestamp + toIntervalMinute(utc_offset)) AS day,
    pathname,
    sum(first_beacon) AS pairs,
    sum(engaged_ms) AS engaged_ms,
    sum(depth_gain) AS depth
FROM engagement
GROUP BY site_id, day, pathname;

INSERT INTO engagement_daily (site_id, day, pathname, pairs, engaged_ms, depth)
SELECT site_id, toDate(first_seen) AS day, pathname, count() AS pairs, sum(ms) AS engaged_ms,
    sum(deepest) AS depth
FROM
(
    SELECT site_id, pathname, visitor_id, min(timestamp + toIntervalMinute(utc_offset)) AS first_seen,
        sum(engaged_ms) AS ms, max(scroll_depth) AS deepest
    FROM engagement
    GROUP BY site_id, pathname, visitor_id
)
GROUP BY site_id, day, pathname;
