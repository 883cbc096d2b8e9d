-- fieldline:no-transaction (continuous aggregates cannot be created inside a transaction block)
-- 1-minute continuous aggregate with the same columns as the plain-PostgreSQL rollup table.
CREATE MATERIALIZED VIEW IF NOT EXISTS readings_1m
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '1 minute', time) AS bucket, device, metric, sensor,
       count(*) AS count, sum(value) AS sum, min(value) AS min, max(value) AS max,
       last(value, time) AS last, max(time) AS last_time
  FROM readings
 GROUP BY time_bucket(INTERVAL '1 minute', time), device, metric, sensor
WITH NO DATA;
-- fieldline:split
SELECT add_continuous_aggregate_policy('readings_1m',
    start_offset => INTERVAL '3 hours', end_offset => INTERVAL '1 minute',
    schedule_interval => INTERVAL '1 minute', if_not_exists => TRUE);
