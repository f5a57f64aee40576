-- More of the dashboard from rollups: daily site totals, and the breakdown tabs that read the raw
-- events until now.
--
-- * `totals_daily`: the site totals of `totals_hourly` per local day. A chart by day, week or
--   month of whole days (30 days, 12 months…) merges one visitor sketch a day instead of 24: a
--   sketch past 16,384 visitors is a 160 KiB HyperLogLog (0002), and merging them is what such
--   an overview cost (720 of them for 30 days).
-- * `breakdowns_daily` gets the dimensions of the tabs that scanned every event of the period:
--   entry pages (the page of each event that starts a visit: `session_start = 1`, as the raw
--   query counts them), UTM content and term, regions, cities, browser and OS versions, screen
--   sizes, and `channel_inputs`: the three columns a visit's channel is classified from
--   (`app/analytics/queries/channels.py`), as a JSON array. The rule table stays in code: a
--   query classifies the few hundred distinct inputs of a period, not millions of events, and a
--   change of the rules applies to past data too.
-- * and one dimension per custom property, `prop:<name>`, valued by the property's value (every
--   event that carries it counts, as the raw query counts them): the Properties card and the
--   list of a view's property names. A property with very many distinct values (an order id)
--   grows the rollup with them, at most one row per value a day.
--
-- Each view is changed (or created) before the pass that fills the rows already there, so no
-- event is missed between two statements. An event the worker writes between the two
-- statements (a batch, at most a second of traffic) is counted by both in the new rows only;
-- stop the workers during `ursa migrate` where that matters (embedded mode migrates before it
-- accepts events).

CREATE TABLE IF NOT EXISTS totals_daily
(
    site_id UInt32,
    day Date,
    unique_visitors AggregateFunction(uniqCombined(18), UInt64),
    pageviews SimpleAggregateFunction(sum, UInt64),
    events SimpleAggregateFunction(sum, UInt64),
    session_starts SimpleAggregateFunction(sum, UInt64),
    session_bounces SimpleAggregateFunction(sum, Int64),
    session_seconds SimpleAggregateFunction(sum, UInt64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYear(day)
ORDER BY (site_id, day)
SETTINGS non_replicated_deduplication_window = 1000, index_granularity_bytes = 262144;

CREATE MATERIALIZED VIEW IF NOT EXISTS totals_daily_mv TO totals_daily AS
SELECT
    site_id,
    toDate(timestamp + toIntervalMinute(utc_offset)) AS day,
    uniqCombinedState(18)(visitor_id) AS unique_visitors,
    countIf(name = 'pageview') AS pageviews,
    count() AS events,
    sum(session_start) AS session_starts,
    sum(session_bounce) AS session_bounces,
    sum(session_seconds) AS session_seconds
FROM events
GROUP BY site_id, day;

INSERT INTO totals_daily (site_id, day, unique_visitors, pageviews, events, session_starts, session_bounces, session_seconds)
SELECT
    site_id,
    toDate(timestamp + toIntervalMinute(utc_offset)) AS day,
    uniqCombinedState(18)(visitor_id) AS unique_visitors,
    countIf(name = 'pageview') AS pageviews,
    count() AS events,
    sum(session_start) AS session_starts,
    sum(session_bounce) AS session_bounces,
    sum(session_seconds) AS session_seconds
FROM events
GROUP BY site_id, day;

ALTER TABLE breakdowns_daily_mv MODIFY QUERY
SELECT
    site_id,
    pair.1 AS dimension,
    toDate(timestamp + toIntervalMinute(utc_offset)) AS day,
    pair.2 AS value,
    uniqCombinedState(18)(visitor_id) AS unique_visitors,
    countIf(name = 'pageview') AS pageviews
FROM events
ARRAY JOIN arrayConcat([
    ('page', pathname),
    ('source', referrer_source),
    ('country', country_code),
    ('browser', browser),
    ('os', os),
    ('device', device),
    ('hostname', hostname),
    ('utm_source', utm_source),
    ('utm_medium', utm_medium),
    ('utm_campaign', utm_campaign),
    ('entry_page', pathname),
    ('channel_inputs', toJSONString((referrer_source, utm_medium, utm_source))),
    ('utm_content', utm_content),
    ('utm_term', utm_term),
    ('region', region),
    ('city', city),
    ('browser_version', browser_version),
    ('os_version', os_version),
    ('screen_size', screen_size)
], arrayMap(key -> (concat('prop:', key), props[key]), mapKeys(props))) AS pair
WHERE (pair.1 != 'page' OR name = 'pageview') AND (pair.1 != 'entry_page' OR session_start = 1)
GROUP BY site_id, dimension, day, value;

INSERT INTO breakdowns_daily (site_id, dimension, day, value, unique_visitors, pageviews)
SELECT
    site_id,
    pair.1 AS dimension,
    toDate(timestamp + toIntervalMinute(utc_offset)) AS day,
    pair.2 AS value,
    uniqCombinedState(18)(visitor_id) AS unique_visitors,
    countIf(name = 'pageview') AS pageviews
FROM events
ARRAY JOIN arrayConcat([
    ('entry_page', pathname),
    ('channel_inputs', toJSONString((referrer_source, utm_medium, utm_source))),
    ('utm_content', utm_content),
    ('utm_term', utm_term),
    ('region', region),
    ('city', city),
    ('browser_version', browser_version),
    ('os_version', os_version),
    ('screen_size', screen_size)
], arrayMap(key -> (concat('prop:', key), props[key]), mapKeys(props))) AS pair
WHERE pair.1 != 'entry_page' OR session_start = 1
GROUP BY site_id, dimension, day, value;
