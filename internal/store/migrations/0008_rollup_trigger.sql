-- One rollup mechanism for every write: a statement-level AFTER INSERT trigger on readings merges each
-- statement's rows (COPY and INSERT alike, from the ingester or any other program) into readings_1m, readings_5m
-- and readings_1h, and records each series in readings_series, in the writing transaction. The rollups therefore
-- hold every committed reading, however late its timestamp; the ingester no longer merges them itself.
-- Migration 9 creates the trigger (and, on TimescaleDB, turns the continuous aggregates into tables).

-- Every series ever written (metric, device, sensor): discovery (variables, pickers) reads this small table.
CREATE TABLE IF NOT EXISTS readings_series (
    metric text COLLATE "C" NOT NULL,
    device text COLLATE "C" NOT NULL,
    sensor text COLLATE "C" NOT NULL,
    PRIMARY KEY (metric, device, sensor)
);
CREATE INDEX IF NOT EXISTS readings_series_device_idx ON readings_series (device, sensor);

-- Each level merges with INSERT ... ON CONFLICT DO UPDATE: concurrent writers that touch the same bucket wait for
-- each other (no lost update). Merges take a transaction-level advisory lock first ("fieldrol"), held to commit:
-- writers' merges run one transaction at a time, which is what keeps a foreign transaction that inserts in
-- several statements (and so would lock rollup rows in its own order) from deadlocking with other writers.
-- "last" keeps the value of the latest time; on equal times the later merge wins.
CREATE OR REPLACE FUNCTION fieldline_rollup_statement() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(7379540980639362924);
    -- One pass over the statement's rows: 1-minute aggregates, from which the coarser levels and the series are
    -- derived (minutes nest in 5 minutes and hours: bucket origins align).
    WITH m AS MATERIALIZED (
        SELECT date_bin(INTERVAL '1 minute', time, TIMESTAMPTZ '2000-01-03 00:00:00+00') AS bucket, device, metric,
               sensor, count(*) AS count, sum(value) AS sum, min(value) AS min, max(value) AS max,
               (array_agg(value ORDER BY time DESC))[1] AS last, max(time) AS last_time
          FROM fieldline_rollup_rows
         GROUP BY metric, device, sensor, 1
    ), m1 AS (
        INSERT INTO readings_1m AS r (bucket, device, metric, sensor, count, sum, min, max, last, last_time)
        SELECT bucket, device, metric, sensor, count, sum, min, max, last, last_time FROM m
            ORDER BY metric, device, sensor, bucket
        ON CONFLICT (metric, device, sensor, bucket) DO UPDATE SET
            count     = r.count + EXCLUDED.count,
            sum       = r.sum + EXCLUDED.sum,
            min       = LEAST(r.min, EXCLUDED.min),
            max       = GREATEST(r.max, EXCLUDED.max),
            last      = CASE WHEN EXCLUDED.last_time >= r.last_time THEN EXCLUDED.last ELSE r.last END,
            last_time = GREATEST(r.last_time, EXCLUDED.last_time)
    ), m5 AS (
        INSERT INTO readings_5m AS r (bucket, device, metric, sensor, count, sum, min, max, last, last_time)
        SELECT date_bin(INTERVAL '5 minutes', bucket, TIMESTAMPTZ '2000-01-03 00:00:00+00') AS b, device, metric, sensor,
               sum(count), sum(sum), min(min), max(max), (array_agg(last ORDER BY last_time DESC))[1], max(last_time)
          FROM m GROUP BY metric, device, sensor, b ORDER BY metric, device, sensor, b
        ON CONFLICT (metric, device, sensor, bucket) DO UPDATE SET
            count     = r.count + EXCLUDED.count,
            sum       = r.sum + EXCLUDED.sum,
            min       = LEAST(r.min, EXCLUDED.min),
            max       = GREATEST(r.max, EXCLUDED.max),
            last      = CASE WHEN EXCLUDED.last_time >= r.last_time THEN EXCLUDED.last ELSE r.last END,
            last_time = GREATEST(r.last_time, EXCLUDED.last_time)
    ), h AS (
        INSERT INTO readings_1h AS r (bucket, device, metric, sensor, count, sum, min, max, last, last_time)
        SELECT date_bin(INTERVAL '1 hour', bucket, TIMESTAMPTZ '2000-01-03 00:00:00+00') AS b, device, metric, sensor,
               sum(count), sum(sum), min(min), max(max), (array_agg(last ORDER BY last_time DESC))[1], max(last_time)
          FROM m GROUP BY metric, device, sensor, b ORDER BY metric, device, sensor, b
        ON CONFLICT (metric, device, sensor, bucket) DO UPDATE SET
            count     = r.count + EXCLUDED.count,
            sum       = r.sum + EXCLUDED.sum,
            min       = LEAST(r.min, EXCLUDED.min),
            max       = GREATEST(r.max, EXCLUDED.max),
            last      = CASE WHEN EXCLUDED.last_time >= r.last_time THEN EXCLUDED.last ELSE r.last END,
            last_time = GREATEST(r.last_time, EXCLUDED.last_time)
    )
    INSERT INTO readings_series (metric, device, sensor)
    SELECT DISTINCT metric, device, sensor FROM m ORDER BY 1, 2, 3
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$;

-- Recompute every level over [start_time, stop_time), widened to whole hours, from the raw rows: for UPDATE or
-- DELETE of raw rows, which the trigger does not follow. It replaces the buckets' aggregates, so never run it over
-- a range whose raw rows a retention job has dropped.
CREATE OR REPLACE FUNCTION fieldline_refresh_rollups(start_time timestamptz, stop_time timestamptz)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    origin constant timestamptz := TIMESTAMPTZ '2000-01-03 00:00:00+00';
    lo timestamptz := date_bin(INTERVAL '1 hour', start_time, origin);
    hi timestamptz := date_bin(INTERVAL '1 hour', stop_time - INTERVAL '1 microsecond', origin) + INTERVAL '1 hour';
    n bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(7379540980639362924); -- as the trigger: one merge at a time
    DELETE FROM readings_1m WHERE bucket >= lo AND bucket < hi;
    DELETE FROM readings_5m WHERE bucket >= lo AND bucket < hi;
    DELETE FROM readings_1h WHERE bucket >= lo AND bucket < hi;
    INSERT INTO readings_1m (bucket, device, metric, sensor, count, sum, min, max, last, last_time)
    SELECT date_bin(INTERVAL '1 minute', time, origin) AS b, device, metric, sensor,
           count(*), sum(value), min(value), max(value), (array_agg(value ORDER BY time DESC))[1], max(time)
      FROM readings WHERE time >= lo AND time < hi GROUP BY metric, device, sensor, b;
    GET DIAGNOSTICS n = ROW_COUNT;
    INSERT INTO readings_5m (bucket, device, metric, sensor, count, sum, min, max, last, last_time)
    SELECT date_bin(INTERVAL '5 minutes', bucket, origin) AS b, device, metric, sensor, sum(count), sum(sum),
           min(min), max(max), (array_agg(last ORDER BY last_time DESC))[1], max(last_time)
      FROM readings_1m WHERE bucket >= lo AND bucket < hi GROUP BY metric, device, sensor, b;
    INSERT INTO readings_1h (bucket, device, metric, sensor, count, sum, min, max, last, last_time)
    SELECT date_bin(INTERVAL '1 hour', bucket, origin) AS b, device, metric, sensor, sum(count), sum(sum),
           min(min), max(max), (array_agg(last ORDER BY last_time DESC))[1], max(last_time)
      FROM readings_5m WHERE bucket >= lo AND bucket < hi GROUP BY metric, device, sensor, b;
    RETURN n;
END $$;
