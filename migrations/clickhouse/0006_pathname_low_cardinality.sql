-- Page paths as LowCardinality(String) in `events` and `performance`: a site has few distinct
-- paths against many events, so each part stores a dictionary of them and one small index per
-- row. Filtered views and the Stats API group and filter raw events by page all the time; on
-- the benchmark's 10,000,000-event site a page breakdown of a filtered view ran 3.3 times as
-- fast and the column took a quarter of the bytes (docs/benchmarks.md). A site with very many
-- distinct paths (a path per order or per user) still works: past the dictionary's size a part
-- keeps the rest of its values beside it, at about the cost of a plain String.
--
-- `engagement.pathname` stays a String: it is part of that table's sort key, which a type change
-- cannot rewrite in place, and the unfiltered views read its daily rollup (0005).
--
-- Each statement is a mutation that rewrites the column of every part (about a second per
-- 10,000,000 events on a 2-core host); queries and inserts go on meanwhile.

ALTER TABLE events MODIFY COLUMN pathname LowCardinality(String);

ALTER TABLE performance MODIFY COLUMN pathname LowCardinality(String);
