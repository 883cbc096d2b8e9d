-- Coarser rollups, same columns as readings_1m, merged by fieldline-ingester in the same transaction as each
-- batch. The plugin reads the coarsest level whose width divides the query interval (7 d at 10 m reads 5-minute
-- rows: 5x fewer than 1-minute ones).
CREATE TABLE IF NOT EXISTS readings_5m (LIKE readings_1m INCLUDING ALL);
CREATE TABLE IF NOT EXISTS readings_1h (LIKE readings_1m INCLUDING ALL);

-- Recompute every rollup level over [start_time, stop_time) from the raw rows (for rows written by other
-- writers, which bypass the ingester's incremental merge). Returns the number of 1-minute rows written.
CREATE OR REPLACE FUNCTION fieldline_refresh_rollups(start_time timestamptz, stop_time timestamptz)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    origin constant timestamptz := TIMESTAMPTZ '2000-01-03 00:00:00+00';
    lo1h timestamptz := date_bin(INTERVAL '1 hour', start_time, origin);
    hi1h timestamptz := date_bin(INTERVAL '1 hour', stop_time - INTERVAL '1 microsecond', origin) + INTERVAL '1 hour';
    n bigint;
BEGIN
    -- whole hours, so every coarser bucket touched is recomputed from complete minutes
    n := fieldline_refresh_readings_1m(lo1h, hi1h);
    DELETE FROM readings_5m WHERE bucket >= lo1h AND bucket < hi1h;
    INSERT INTO readings_5m (bucket, device, metric, sensor, count, sum, min, max, last, last_time)
    SELECT date_bin(INTERVAL '5 minutes', bucket, origin) AS b, device, metric, sensor, sum(count), sum(sum),
           min(min), max(max), (array_agg(last ORDER BY last_time DESC))[1], max(last_time)
      FROM readings_1m WHERE bucket >= lo1h AND bucket < hi1h GROUP BY b, device, metric, sensor;
    DELETE FROM readings_1h WHERE bucket >= lo1h AND bucket < hi1h;
    INSERT INTO readings_1h (bucket, device, metric, sensor, count, sum, min, max, last, last_time)
    SELECT date_bin(INTERVAL '1 hour', bucket, origin) AS b, device, metric, sensor, sum(count), sum(sum),
           min(min), max(max), (array_agg(last ORDER BY last_time DESC))[1], max(last_time)
      FROM readings_5m WHERE bucket >= lo1h AND bucket < hi1h GROUP BY b, device, metric, sensor;
    RETURN n;
END $$;

-- Insert-only tables are vacuumed (visibility map set, so series reads stay index-only) every ~1 % of new rows
-- rather than PostgreSQL's default 20 %.
ALTER TABLE readings SET (autovacuum_vacuum_insert_scale_factor = 0.01, autovacuum_analyze_scale_factor = 0.02);
