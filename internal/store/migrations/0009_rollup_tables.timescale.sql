-- TimescaleDB: the rollups become hypertables kept by the trigger of migration 8, the same tables and the same
-- trigger as on plain PostgreSQL. Schemas created before this migration existed hold continuous aggregates here. The continuous aggregates only saw
-- rows inside their refresh windows (late rows never reached them) and were slow where not yet materialized.
-- Needs TimescaleDB 2.18+ (statement-level triggers with transition tables on hypertables).
DO $$
DECLARE
    v text := (SELECT extversion FROM pg_extension WHERE extname = 'timescaledb');
BEGIN
    IF string_to_array(split_part(v, '-', 1), '.')::int[] < ARRAY[2, 18] THEN
        RAISE EXCEPTION 'TimescaleDB % is too old for Fieldline: version 2.18 or newer is needed (statement triggers with transition tables on hypertables); upgrade the package and run ALTER EXTENSION timescaledb UPDATE', v;
    END IF;
END $$;

-- Writers wait here while the rollups are rebuilt, so no row slips between the rebuild and the trigger.
LOCK TABLE readings IN SHARE ROW EXCLUSIVE MODE;

CREATE TABLE fieldline_rollup_1m (
    bucket    timestamptz      NOT NULL,
    device    text COLLATE "C" NOT NULL,
    metric    text COLLATE "C" NOT NULL,
    sensor    text COLLATE "C" NOT NULL,
    count     bigint           NOT NULL,
    sum       double precision NOT NULL,
    min       double precision NOT NULL,
    max       double precision NOT NULL,
    last      double precision NOT NULL,
    last_time timestamptz      NOT NULL
);
CREATE TABLE fieldline_rollup_5m (LIKE fieldline_rollup_1m);
CREATE TABLE fieldline_rollup_1h (LIKE fieldline_rollup_1m);

-- Buckets from the hour of the oldest raw reading on are rebuilt from the raw rows (the aggregates missed late
-- rows); older buckets, whose raw chunks a retention policy dropped, are copied from the materialized aggregates.
DO $$
DECLARE
    origin constant timestamptz := TIMESTAMPTZ '2000-01-03 00:00:00+00';
    lo timestamptz := coalesce(date_bin(INTERVAL '1 hour', (SELECT min(time) FROM readings), origin), 'infinity');
BEGIN
    INSERT INTO fieldline_rollup_1m SELECT bucket, device, metric, sensor, count, sum, min, max, last, last_time
      FROM readings_1m WHERE bucket < lo;
    INSERT INTO fieldline_rollup_5m SELECT bucket, device, metric, sensor, count, sum, min, max, last, last_time
      FROM readings_5m WHERE bucket < lo;
    INSERT INTO fieldline_rollup_1h SELECT bucket, device, metric, sensor, count, sum, min, max, last, last_time
      FROM readings_1h WHERE bucket < lo;
    INSERT INTO fieldline_rollup_1m (bucket, device, metric, sensor, count, sum, min, max, last, last_time)
    SELECT date_bin(INTERVAL '1 minute', time, origin) AS b, device, metric, sensor,
           count(*), sum(value), min(value), max(value), (array_agg(value ORDER BY time DESC))[1], max(time)
      FROM readings GROUP BY metric, device, sensor, b;
    INSERT INTO fieldline_rollup_5m (bucket, device, metric, sensor, count, sum, min, max, last, last_time)
    SELECT date_bin(INTERVAL '5 minutes', bucket, origin) AS b, device, metric, sensor, sum(count), sum(sum),
           min(min), max(max), (array_agg(last ORDER BY last_time DESC))[1], max(last_time)
      FROM fieldline_rollup_1m WHERE bucket >= lo GROUP BY metric, device, sensor, b;
    INSERT INTO fieldline_rollup_1h (bucket, device, metric, sensor, count, sum, min, max, last, last_time)
    SELECT date_bin(INTERVAL '1 hour', bucket, origin) AS b, device, metric, sensor, sum(count), sum(sum),
           min(min), max(max), (array_agg(last ORDER BY last_time DESC))[1], max(last_time)
      FROM fieldline_rollup_5m WHERE bucket >= lo GROUP BY metric, device, sensor, b;
END $$;

-- Schemas created before migration 9 hold continuous aggregates (dropping one drops its refresh policy too;
-- coarsest first, each reads the finer one); newer ones the empty tables of migrations 3 and 6.
DO $$
DECLARE
    name text;
BEGIN
    FOREACH name IN ARRAY ARRAY['readings_1h', 'readings_5m', 'readings_1m'] LOOP
        IF EXISTS (SELECT 1 FROM pg_class WHERE oid = to_regclass(name) AND relkind = 'v') THEN
            EXECUTE format('DROP MATERIALIZED VIEW %I', name);
        ELSE
            EXECUTE format('DROP TABLE IF EXISTS %I', name);
        END IF;
    END LOOP;
END $$;
DROP FUNCTION IF EXISTS fieldline_refresh_readings_1m(timestamptz, timestamptz);

ALTER TABLE fieldline_rollup_1m RENAME TO readings_1m;
ALTER TABLE fieldline_rollup_5m RENAME TO readings_5m;
ALTER TABLE fieldline_rollup_1h RENAME TO readings_1h;
ALTER TABLE readings_1m ADD CONSTRAINT readings_1m_pkey PRIMARY KEY (metric, device, sensor, bucket);
ALTER TABLE readings_5m ADD CONSTRAINT readings_5m_pkey PRIMARY KEY (metric, device, sensor, bucket);
ALTER TABLE readings_1h ADD CONSTRAINT readings_1h_pkey PRIMARY KEY (metric, device, sensor, bucket);
CREATE INDEX readings_1m_metric_bucket_idx ON readings_1m (metric, bucket);
CREATE INDEX readings_5m_metric_bucket_idx ON readings_5m (metric, bucket);
CREATE INDEX readings_1h_metric_bucket_idx ON readings_1h (metric, bucket);

SELECT create_hypertable('readings_1m', by_range('bucket', INTERVAL '7 days'), migrate_data => TRUE);
SELECT create_hypertable('readings_5m', by_range('bucket', INTERVAL '30 days'), migrate_data => TRUE);
SELECT create_hypertable('readings_1h', by_range('bucket', INTERVAL '180 days'), migrate_data => TRUE);
-- Compressed like readings, by series; late rows still merge into compressed chunks (ON CONFLICT DO UPDATE on
-- compressed chunks, TimescaleDB 2.11+).
ALTER TABLE readings_1m SET (timescaledb.compress, timescaledb.compress_segmentby = 'metric, device, sensor',
    timescaledb.compress_orderby = 'bucket');
ALTER TABLE readings_5m SET (timescaledb.compress, timescaledb.compress_segmentby = 'metric, device, sensor',
    timescaledb.compress_orderby = 'bucket');
ALTER TABLE readings_1h SET (timescaledb.compress, timescaledb.compress_segmentby = 'metric, device, sensor',
    timescaledb.compress_orderby = 'bucket');
SELECT add_compression_policy('readings_1m', INTERVAL '14 days', if_not_exists => TRUE);
SELECT add_compression_policy('readings_5m', INTERVAL '60 days', if_not_exists => TRUE);
SELECT add_compression_policy('readings_1h', INTERVAL '360 days', if_not_exists => TRUE);

INSERT INTO readings_series (metric, device, sensor)
SELECT DISTINCT metric, device, sensor FROM readings_1h ON CONFLICT DO NOTHING;

DROP TRIGGER IF EXISTS fieldline_rollup ON readings;
CREATE TRIGGER fieldline_rollup AFTER INSERT ON readings REFERENCING NEW TABLE AS fieldline_rollup_rows
FOR EACH STATEMENT EXECUTE FUNCTION fieldline_rollup_statement();
