-- Plain PostgreSQL: the rollup tables of migrations 3 and 6 stay; they are rebuilt and the trigger of migration 8
-- takes over from the ingester's merge.

-- Writers wait here while the rollups are rebuilt, so no row slips between the rebuild and the trigger.
LOCK TABLE readings IN SHARE ROW EXCLUSIVE MODE;

-- Rebuild from the raw rows every bucket from the hour of the oldest stored reading on (the ingester's merge
-- missed rows other programs wrote). Older buckets, whose raw rows a retention job already deleted, keep their
-- aggregates: they are the only record left.
DO $$
DECLARE
    origin constant timestamptz := TIMESTAMPTZ '2000-01-03 00:00:00+00';
    lo timestamptz := date_bin(INTERVAL '1 hour', (SELECT min(time) FROM readings), origin);
BEGIN
    IF lo IS NULL THEN
        RETURN;
    END IF;
    DELETE FROM readings_1m WHERE bucket >= lo;
    DELETE FROM readings_5m WHERE bucket >= lo;
    DELETE FROM readings_1h WHERE bucket >= lo;
    INSERT INTO readings_1m (bucket, device, metric, sensor, count, sum, min, max, last, last_time)
    SELECT date_bin(INTERVAL '1 minute', time, origin) AS b, device, metric, sensor,
           count(*), sum(value), min(value), max(value), (array_agg(value ORDER BY time DESC))[1], max(time)
      FROM readings GROUP BY metric, device, sensor, b;
    INSERT INTO readings_5m (bucket, device, metric, sensor, count, sum, min, max, last, last_time)
    SELECT date_bin(INTERVAL '5 minutes', bucket, origin) AS b, device, metric, sensor, sum(count), sum(sum),
           min(min), max(max), (array_agg(last ORDER BY last_time DESC))[1], max(last_time)
      FROM readings_1m WHERE bucket >= lo GROUP BY metric, device, sensor, b;
    INSERT INTO readings_1h (bucket, device, metric, sensor, count, sum, min, max, last, last_time)
    SELECT date_bin(INTERVAL '1 hour', bucket, origin) AS b, device, metric, sensor, sum(count), sum(sum),
           min(min), max(max), (array_agg(last ORDER BY last_time DESC))[1], max(last_time)
      FROM readings_5m WHERE bucket >= lo GROUP BY metric, device, sensor, b;
END $$;

-- Every series: those in the raw rows are all in readings_1h now, and so are those whose raw rows were dropped.
INSERT INTO readings_series (metric, device, sensor)
SELECT DISTINCT metric, device, sensor FROM readings_1h ON CONFLICT DO NOTHING;

DROP TRIGGER IF EXISTS fieldline_rollup ON readings;
CREATE TRIGGER fieldline_rollup AFTER INSERT ON readings REFERENCING NEW TABLE AS fieldline_rollup_rows
FOR EACH STATEMENT EXECUTE FUNCTION fieldline_rollup_statement();

DROP FUNCTION IF EXISTS fieldline_refresh_readings_1m(timestamptz, timestamptz);
