-- Raw events: one row per page view or custom event, stored in UTC.
-- Sorted by site first so every query is a range scan of one site; visitor ids next so the
-- hashes (and the session ids minted from their first event) compress to a few bytes a row.
-- `referrer_source` and `utm_*` hold the values of the session's entry event (set by the
-- worker's sessionization), so per-source visitor counts need no join.
CREATE TABLE IF NOT EXISTS events
(
    site_id UInt32,
    timestamp DateTime('UTC') CODEC(Delta(4), ZSTD(1)),
    event_id UInt64 CODEC(Delta(8), ZSTD(1)),
    name LowCardinality(String),
    visitor_id UInt64 CODEC(ZSTD(1)),
    session_id UInt64 CODEC(Delta(8), ZSTD(1)),
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
    revenue_currency LowCardinality(String)
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(timestamp)
ORDER BY (site_id, toDate(timestamp), name, visitor_id, timestamp)
SETTINGS non_replicated_deduplication_window = 1000;

-- Sessions rollup, fed by the events table. Bounce rate and visit duration need per-session
-- aggregates; recomputing them from raw events on every dashboard load means grouping every
-- event by session. This table holds partial aggregates per inserted block, which ClickHouse
-- merges in the background, so a dashboard groups a few rows per session instead of every
-- event. Session ids start with the millisecond time of the session's first event, so a time
-- range is a primary-key range on (site_id, session_id).
CREATE TABLE IF NOT EXISTS sessions
(
    site_id UInt32,
    session_id UInt64,
    visitor_id SimpleAggregateFunction(any, UInt64),
    started SimpleAggregateFunction(min, DateTime('UTC')),
    ended SimpleAggregateFunction(max, DateTime('UTC')),
    pageviews SimpleAggregateFunction(sum, UInt64),
    events SimpleAggregateFunction(sum, UInt64),
    interactions SimpleAggregateFunction(sum, UInt64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(fromUnixTimestamp64Milli(toInt64(bitShiftRight(session_id, 20)), 'UTC'))
ORDER BY (site_id, session_id)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS sessions_mv TO sessions AS
SELECT
    site_id,
    session_id,
    any(visitor_id) AS visitor_id,
    min(timestamp) AS started,
    max(timestamp) AS ended,
    countIf(name = 'pageview') AS pageviews,
    count() AS events,
    countIf(interactive) AS interactions
FROM events
GROUP BY site_id, session_id;

-- Browser timings and Core Web Vitals, one row per page view that reported them.
CREATE TABLE IF NOT EXISTS performance
(
    site_id UInt32,
    timestamp DateTime('UTC') CODEC(Delta(4), ZSTD(1)),
    event_id UInt64 CODEC(Delta(8), ZSTD(1)),
    visitor_id UInt64 CODEC(ZSTD(1)),
    pathname String CODEC(ZSTD(1)),
    country_code LowCardinality(String),
    browser LowCardinality(String),
    device LowCardinality(String),
    dns Nullable(UInt32),
    connect Nullable(UInt32),
    tls Nullable(UInt32),
    ttfb Nullable(UInt32),
    download Nullable(UInt32),
    dom_content_loaded Nullable(UInt32),
    page_load Nullable(UInt32),
    fcp Nullable(UInt32),
    lcp Nullable(UInt32),
    inp Nullable(UInt32),
    cls Nullable(Float32)
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(timestamp)
ORDER BY (site_id, toDate(timestamp), pathname)
SETTINGS non_replicated_deduplication_window = 1000;
