-- Engagement: how long a page was in front of its visitor and how far they scrolled, and the
-- screen size of every event.
--
-- One `engagement` row per beacon the tracker sends when a page is hidden or left (SPA
-- navigations included): `engaged_ms` is the foreground, active time since the page view or
-- since the page's previous beacon (so a page's rows add up to its whole engaged time), and
-- `scroll_depth` the deepest point reached so far, in percent of the document's height (so a
-- page's largest is its depth). The rows live beside `events`, never in it: a beacon is not an
-- event, so it creates no visit and no page view and cannot turn a bounce into a non-bounce
-- (Plausible's rule); no rollup reads this table. `session_id` is the visit the beacon's page
-- view belongs to (0 when the worker knew none), and the visit's dimensions are copied from that
-- visit (source, UTM values) and from the beacon's own request (location, software, screen),
-- so the dashboard's filters apply to the rows as they do to events.
CREATE TABLE IF NOT EXISTS engagement
(
    site_id UInt32,
    timestamp DateTime('UTC') CODEC(Delta(4), ZSTD(1)),
    event_id UInt64 CODEC(Delta(8), ZSTD(1)),
    session_id UInt64 CODEC(ZSTD(1)),
    visitor_id UInt64 CODEC(ZSTD(1)),
    hostname LowCardinality(String),
    pathname String CODEC(ZSTD(1)),
    scroll_depth UInt8 CODEC(ZSTD(1)),
    engaged_ms UInt32 CODEC(T64, ZSTD(1)),
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
    screen_size LowCardinality(String),
    utc_offset Int16 DEFAULT 0 CODEC(ZSTD(1))
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(timestamp)
ORDER BY (site_id, toDate(timestamp), pathname, visitor_id)
SETTINGS non_replicated_deduplication_window = 1000;

-- Plausible's screen sizes from the page's inner width (`w`): Mobile below 576 px, Tablet below
-- 992, Laptop below 1440, Desktop from 1440; empty for events that sent no width (those stored
-- before this migration, and Events API clients that send none).
ALTER TABLE events ADD COLUMN IF NOT EXISTS screen_size LowCardinality(String) AFTER device;
