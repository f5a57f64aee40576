-- Raw events: one row per page view or custom event, stored in UTC.
-- Sorted by site first so every query is a range scan of one site; visitor ids next so the
-- hashes (and the session ids minted from their first event) compress to a few bytes a row.
-- `referrer_source` and `utm_*` hold the values of the session's entry event (set by the
-- worker's sessionization), so per-source visitor counts need no join.
-- `session_start`, `session_bounce` and `session_seconds` are what the event adds to its
-- session's totals (see app/analytics/sessions.py): summed over any set of sessions they give
-- visits, bounces and total duration, so no query has to group events by session.
-- `utc_offset` is the site's offset from UTC (minutes) when the event happened; the rollups
-- below use it to file events under the site's local hour and day.
CREATE TABLE IF NOT EXISTS events
(
    site_id UInt32,
    timestamp DateTime('UTC') CODEC(Delta(4), ZSTD(1)),
    event_id UInt64 CODEC(Delta(8), ZSTD(1)),
    name LowCardinality(String),
    visitor_id UInt64 CODEC(ZSTD(1)),
    session_id UInt64 CODEC(Delta(8), ZSTD(1)),
    session_start UInt8 CODEC(ZSTD(1)),
    session_bounce Int8 CODEC(ZSTD(1)),
    session_seconds UInt32 CODEC(T64, ZSTD(1)),
    interactive Bool DEFAULT true,
    hostname LowCardinality(String),
    pathname String CODEC(ZSTD(1)),
    referrer String CODEC(ZSTD(1)),
    referrer_source LowCardinality(String),
    utm_medium LowCardinality(String),
    utm_source LowCardinality(String),
    utm_campaign LowCardinality(String),
    utm_content LowCardinality(String),
    utm_term LowCardinality(String),
    country_code LowCardinality(String),
    region LowCardinality(String),
    city LowCardinality(String),
    browser LowCardinality(String),
    browser_version LowCardinality(String),
    os LowCardinality(String),
    os_version LowCardinality(String),
    device LowCardinality(String),
    props Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    revenue Decimal64(3) DEFAULT 0,
    revenue_currency LowCardinality(String),
    utc_offset Int16 DEFAULT 0 CODEC(ZSTD(1))
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(timestamp)
ORDER BY (site_id, toDate(timestamp), name, visitor_id, timestamp)
SETTINGS non_replicated_deduplication_window = 1000;

-- Browser timings and Core Web Vitals, one row per page view that reported them. No visitor
-- id: nothing counts visitors here. `event_id` (the beacon's own id) keeps loss measurable.
CREATE TABLE IF NOT EXISTS performance
(
    site_id UInt32,
    timestamp DateTime('UTC') CODEC(Delta(4), ZSTD(1)),
    event_id UInt64 CODEC(Delta(8), ZSTD(1)),
    pathname String CODEC(ZSTD(1)),
    country_code LowCardinality(String),
    browser LowCardinality(String),
    device LowCardinality(String),
    dns Nullable(UInt32) CODEC(T64, ZSTD(1)),
    connect Nullable(UInt32) CODEC(T64, ZSTD(1)),
    tls Nullable(UInt32) CODEC(T64, ZSTD(1)),
    ttfb Nullable(UInt32) CODEC(T64, ZSTD(1)),
    download Nullable(UInt32) CODEC(T64, ZSTD(1)),
    dom_content_loaded Nullable(UInt32) CODEC(T64, ZSTD(1)),
    page_load Nullable(UInt32) CODEC(T64, ZSTD(1)),
    fcp Nullable(UInt32) CODEC(T64, ZSTD(1)),
    lcp Nullable(UInt32) CODEC(T64, ZSTD(1)),
    inp Nullable(UInt32) CODEC(T64, ZSTD(1)),
    cls Nullable(Float32) CODEC(ZSTD(1)),
    utc_offset Int16 DEFAULT 0 CODEC(ZSTD(1))
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(timestamp)
ORDER BY (site_id, toDate(timestamp), event_id)
SETTINGS non_replicated_deduplication_window = 1000;

-- Dashboard rollups, filled by materialized views from each inserted block and merged by
-- ClickHouse in the background. The dashboard reads only these: over 30 days a card merges a
-- few hundred small states instead of scanning millions of events.
-- * Times are the site's local wall-clock time (`timestamp + utc_offset`), so a local day or
--   hour is exact in every timezone, including those with half-hour offsets.
-- * Visitors were `uniqCombined(12)` sketches here: exact up to 256 distinct visitors per
--   state, then HyperLogLog with 4,096 registers (1.6% standard error), at most 2.6 KiB per
--   state. 0002_exact_visitors.sql replaced them with `uniqCombined(18)` (exact up to 16,384,
--   0.2% beyond; the figures are there). Merging states gives exactly what the same function
--   computes over the raw events, so rollups and raw data agree (tests/integration/
--   test_zero_loss.py).
-- * Inserts carry a deduplication token and `deduplicate_blocks_in_dependent_materialized_views`,
--   so a replayed batch is dropped here as it is in `events`.
-- * Cards read few rows of a few KiB each, and pay per part and per granule read: the rollups
--   are partitioned by year, not month, so a 30-day card reads the parts of one partition, not
--   two; and a granule holds at most 256 KiB of rows (10 MiB by default), so a card does not read
--   and decode the thousands of sketches of other sites, dimensions and days around its own.

-- Site totals per local hour: the overview and the visitors chart.
CREATE TABLE IF NOT EXISTS totals_hourly
(
    site_id UInt32,
    hour DateTime('UTC'),
    visitors AggregateFunction(uniqCombined(12), UInt64),
    pageviews SimpleAggregateFunction(sum, UInt64),
    events SimpleAggregateFunction(sum, UInt64),
    session_starts SimpleAggregateFunction(sum, UInt64),
    session_bounces SimpleAggregateFunction(sum, Int64),
    session_seconds SimpleAggregateFunction(sum, UInt64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYear(hour)
ORDER BY (site_id, hour)
SETTINGS non_replicated_deduplication_window = 1000, index_granularity_bytes = 262144;

CREATE MATERIALIZED VIEW IF NOT EXISTS totals_hourly_mv TO totals_hourly AS
SELECT
    site_id,
    toStartOfHour(timestamp + toIntervalMinute(utc_offset)) AS hour,
    uniqCombinedState(12)(visitor_id) AS visitors,
    countIf(name = 'pageview') AS pageviews,
    count() AS events,
    sum(session_start) AS session_starts,
    sum(session_bounce) AS session_bounces,
    sum(session_seconds) AS session_seconds
FROM events
GROUP BY site_id, hour;

-- Visitors and page views per value of each breakdown dimension, per local day (dashboard
-- periods are whole local days). `page` counts page views only; the other dimensions are
-- per-session values or stable per visitor, so every event counts.
CREATE TABLE IF NOT EXISTS breakdowns_daily
(
    site_id UInt32,
    dimension LowCardinality(String),
    day Date,
    value String CODEC(ZSTD(1)),
    visitors AggregateFunction(uniqCombined(12), UInt64),
    pageviews SimpleAggregateFunction(sum, UInt64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYear(day)
ORDER BY (site_id, dimension, day, value)
SETTINGS non_replicated_deduplication_window = 1000, index_granularity_bytes = 262144;

CREATE MATERIALIZED VIEW IF NOT EXISTS breakdowns_daily_mv TO breakdowns_daily AS
SELECT
    site_id,
    pair.1 AS dimension,
    toDate(timestamp + toIntervalMinute(utc_offset)) AS day,
    pair.2 AS value,
    uniqCombinedState(12)(visitor_id) AS visitors,
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

-- Core Web Vitals and TTFB per local day: t-digest sketches for the p75 the dashboard shows.
CREATE TABLE IF NOT EXISTS vitals_daily
(
    site_id UInt32,
    day Date,
    samples SimpleAggregateFunction(sum, UInt64),
    lcp AggregateFunction(quantileTDigest(0.75), Nullable(UInt32)),
    inp AggregateFunction(quantileTDigest(0.75), Nullable(UInt32)),
    cls AggregateFunction(quantileTDigest(0.75), Nullable(Float32)),
    ttfb AggregateFunction(quantileTDigest(0.75), Nullable(UInt32)),
    fcp AggregateFunction(quantileTDigest(0.75), Nullable(UInt32))
)
ENGINE = AggregatingMergeTree
PARTITION BY toYear(day)
ORDER BY (site_id, day)
SETTINGS non_replicated_deduplication_window = 1000, index_granularity_bytes = 262144;

CREATE MATERIALIZED VIEW IF NOT EXISTS vitals_daily_mv TO vitals_daily AS
SELECT
    site_id,
    toDate(timestamp + toIntervalMinute(utc_offset)) AS day,
    count() AS samples,
    quantileTDigestState(0.75)(lcp) AS lcp,
    quantileTDigestState(0.75)(inp) AS inp,
    quantileTDigestState(0.75)(cls) AS cls,
    quantileTDigestState(0.75)(ttfb) AS ttfb,
    quantileTDigestState(0.75)(fcp) AS fcp
FROM performance
GROUP BY site_id, day;
