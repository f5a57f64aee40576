-- Visitors exact up to 16,384 distinct visitors per rollup cell (was 256).
--
-- `uniqCombined(K)` hashes each visitor id to 32 bits and keeps the hashes exactly (an array of
-- up to 16, then a hash set of up to 2^(K-4)), then switches to a HyperLogLog of 2^K registers
-- of 5 bits. Measured in chDB (ClickHouse 26.9), visitors per state it still counts exactly and
-- the state's size (4 bytes a visitor while exact, then a fixed size):
--   K = 12 (0001):  256 exact, then 2.6 KiB, standard error 1.04/sqrt(2^K) = 1.6%
--   K = 17:       8,192 exact, then 80 KiB, 0.29%
--   K = 18:      16,384 exact, then 160 KiB, 0.20%
-- 300 visitors read as 291 to 306 at K = 12 (the ids are salted daily), so visitors could
-- exceed visits on a small site. K = 18 is the smallest precision exact past 10,000, and its
-- error past that (±0.2%, ±2,000 of a million) is below what a person reads off a dashboard.
-- "Exact" is up to a collision of two 32-bit hashes, which merges two visitors into one: at
-- 10,000 visitors in one cell that happens once in about 90 cells (n²/2³³), and costs one.
-- A cell stays as small as before while it has few visitors; only cells past 256 visitors grow
-- (4 bytes a visitor, at most 160 KiB). Over 11,000,000 demo events (`nox -s bench -- --only
-- bytes`, docs/benchmarks.md) the two visitor rollups take 12.4 bytes per event instead of 1.33
-- (9.3x), all tables 47.7 instead of 36.6.
-- Not chosen: `uniqExact` (8 bytes a visitor with no ceiling: 800 KB for a cell of 100,000, and
-- a month's card would merge every id), `uniqCombined64` (64-bit hashes, so no collisions, but
-- exact only up to 2^(K-5) at 8 bytes each: 8,192 at K = 18, then 192 KiB), `uniqTheta` (not
-- built into chDB 26.9).
--
-- States of two precisions cannot be merged and `MODIFY COLUMN` cannot convert them, so each
-- rollup gets a new `unique_visitors` column, its materialized view writes that one (the view
-- is altered in place: no insert is missed between two statements), and the column is filled
-- for the rows that were already there by one pass over the raw `events`. Counting a visitor
-- twice in a state changes nothing, so the pass may overlap rows the view has written since;
-- the other columns of the rows it adds are 0 and add nothing to the sums. The dashboard reads
-- only `unique_visitors`; the old column is dropped at the end. Until the pass has finished,
-- visitor counts of older periods read low.

ALTER TABLE totals_hourly ADD COLUMN IF NOT EXISTS unique_visitors AggregateFunction(uniqCombined(18), UInt64) AFTER hour;

ALTER TABLE totals_hourly_mv MODIFY QUERY
SELECT
    site_id,
    toStartOfHour(timestamp + toIntervalMinute(utc_offset)) AS hour,
    uniqCombinedState(18)(visitor_id) AS unique_visitors,
    countIf(name = 'pageview') AS pageviews,
    count() AS events,
    sum(session_start) AS session_starts,
    sum(session_bounce) AS session_bounces,
    sum(session_seconds) AS session_seconds
FROM events
GROUP BY site_id, hour;

INSERT INTO totals_hourly (site_id, hour, unique_visitors)
SELECT
    site_id,
    toStartOfHour(timestamp + toIntervalMinute(utc_offset)) AS hour,
    uniqCombinedState(18)(visitor_id) AS unique_visitors
FROM events
GROUP BY site_id, hour;

ALTER TABLE totals_hourly DROP COLUMN IF EXISTS visitors;

ALTER TABLE breakdowns_daily ADD COLUMN IF NOT EXISTS unique_visitors AggregateFunction(uniqCombined(18), UInt64) AFTER value;

ALTER TABLE breakdowns_daily_mv MODIFY QUERY
SELECT
    site_id,
    pair.1 AS dimension,
    toDate(timestamp + toIntervalMinute(utc_offset)) AS day,
    pair.2 AS value,
    uniqCombinedState(18)(visitor_id) AS unique_visitors,
    countIf(name = 'pageview') AS pageviews
FROM events
ARRAY JOIN [
    ('page', pathname),
    ('source', referrer_source),
    ('country', country_code),
    ('browser', browser),
    ('os', os),
    ('device', device),
    ('hostname', hostname),
    ('utm_source', utm_source),
    ('utm_medium', utm_medium),
    ('utm_campaign', utm_campaign)
] AS pair
WHERE pair.1 != 'page' OR name = 'pageview'
GROUP BY site_id, dimension, day, value;

INSERT INTO breakdowns_daily (site_id, dimension, day, value, unique_visitors)
SELECT
    site_id,
    pair.1 AS dimension,
    toDate(timestamp + toIntervalMinute(utc_offset)) AS day,
    pair.2 AS value,
    uniqCombinedState(18)(visitor_id) AS unique_visitors
FROM events
ARRAY JOIN [
    ('page', pathname),
    ('source', referrer_source),
    ('country', country_code),
    ('browser', browser),
    ('os', os),
    ('device', device),
    ('hostname', hostname),
    ('utm_source', utm_source),
    ('utm_medium', utm_medium),
    ('utm_campaign', utm_campaign)
] AS pair
WHERE pair.1 != 'page' OR name = 'pageview'
GROUP BY site_id, dimension, day, value;

ALTER TABLE breakdowns_daily DROP COLUMN IF EXISTS visitors;
