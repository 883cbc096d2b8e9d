-- Aggregated queries over every series of a metric read the rollups by (metric, bucket) (sqlquery.Build). With
-- the index of migration 3 each of those rows was a heap fetch (28 800 for a 24-hour, 1-minute panel of 20
-- series); with the columns the queries read included, they are an index-only scan over the pages that the
-- vacuum has marked all-visible (every bucket but the newest few). The rollup merge updates count, sum, min,
-- max, last and last_time, which are now in an index, so those updates are no longer HOT: a few dozen rows per
-- batch (one per series and level touched), measured in docs/benchmarks.md ("a covering rollup index"). The
-- indexes are built once, under the migration lock (tens of seconds for millions of rollup rows).
CREATE INDEX IF NOT EXISTS readings_1m_metric_bucket_cover ON readings_1m (metric, bucket)
    INCLUDE (device, sensor, count, sum, min, max, last, last_time);
CREATE INDEX IF NOT EXISTS readings_5m_metric_bucket_cover ON readings_5m (metric, bucket)
    INCLUDE (device, sensor, count, sum, min, max, last, last_time);
CREATE INDEX IF NOT EXISTS readings_1h_metric_bucket_cover ON readings_1h (metric, bucket)
    INCLUDE (device, sensor, count, sum, min, max, last, last_time);
DROP INDEX IF EXISTS readings_1m_metric_bucket_idx;
DROP INDEX IF EXISTS readings_5m_metric_bucket_idx;
DROP INDEX IF EXISTS readings_1h_metric_bucket_idx;
