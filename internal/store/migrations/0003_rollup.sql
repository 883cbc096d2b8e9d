-- 1-minute rollup. Since migration 9 kept by the trigger fieldline_rollup on readings; until then by
-- fieldline-ingester on plain PostgreSQL, and by a continuous aggregate on TimescaleDB (schemas created before
-- migration 9 existed; a new TimescaleDB schema gets these tables, made hypertables by migration 9).
-- Rows written by other writers are folded in by fieldline_refresh_readings_1m(start, stop).
-- Buckets are date_bin('1 minute', time, '2000-01-03'), which equal TimescaleDB's time_bucket('1 minute', time).
CREATE TABLE IF NOT EXISTS readings_1m (
    bucket    timestamptz      NOT NULL,
    device    text COLLATE "C" NOT NULL,
    metric    text COLLATE "C" NOT NULL,
    sensor    text COLLATE "C" NOT NULL,
    count     bigint           NOT NULL,
    sum       double precision NOT NULL,
    min       double precision NOT NULL,
    max       double precision NOT NULL,
    last      double precision NOT NULL,
    last_time timestamptz      NOT NULL,
    PRIMARY KEY (metric, device, sensor, bucket)
);
-- "This metric over this range", in bucket order: the builder's rollup reads need no sort.
CREATE INDEX IF NOT EXISTS readings_1m_metric_bucket_idx ON readings_1m (metric, bucket);

CREATE OR REPLACE FUNCTION fieldline_refresh_readings_1m(start_time timestamptz, stop_time timestamptz)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    lo timestamptz := date_bin(INTERVAL '1 minute', start_time, TIMESTAMPTZ '2000-01-03 00:00:00+00');
    n  bigint;
BEGIN
    DELETE FROM readings_1m WHERE bucket >= lo AND bucket < stop_time;
    INSERT INTO readings_1m (bucket, device, metric, sensor, count, sum, min, max, last, last_time)
    SELECT date_bin(INTERVAL '1 minute', time, TIMESTAMPTZ '2000-01-03 00:00:00+00') AS b, device, metric, sensor,
           count(*), sum(value), min(value), max(value),
           (array_agg(value ORDER BY time DESC))[1], max(time)
      FROM readings
     WHERE time >= lo AND time < stop_time
     GROUP BY b, device, metric, sensor;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END $$;
