-- fieldline:no-transaction (continuous aggregates cannot be created inside a transaction block)
-- Hierarchical continuous aggregates (TimescaleDB 2.9+): 5 minutes from readings_1m, 1 hour from readings_5m,
-- with the same columns as readings_1m.
CREATE MATERIALIZED VIEW IF NOT EXISTS readings_5m
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '5 minutes', bucket) AS bucket, device, metric, sensor,
       sum(count) AS count, sum(sum) AS sum, min(min) AS min, max(max) AS max,
       last(last, last_time) AS last, max(last_time) AS last_time
  FROM readings_1m
 GROUP BY time_bucket(INTERVAL '5 minutes', bucket), device, metric, sensor
WITH NO DATA;
-- fieldline:split
SELECT add_continuous_aggregate_policy('readings_5m',
    start_offset => INTERVAL '6 hours', end_offset => INTERVAL '5 minutes',
    schedule_interval => INTERVAL '5 minutes', if_not_exists => TRUE);
-- fieldline:split
CREATE MATERIALIZED VIEW IF NOT EXISTS readings_1h
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '1 hour', bucket) AS bucket, device, metric, sensor,
       sum(count) AS count, sum(sum) AS sum, min(min) AS min, max(max) AS max,
       last(last, last_time) AS last, max(last_time) AS last_time
  FROM readings_5m
 GROUP BY time_bucket(INTERVAL '1 hour', bucket), device, metric, sensor
WITH NO DATA;
-- fieldline:split
SELECT add_continuous_aggregate_policy('readings_1h',
    start_offset => INTERVAL '3 days', end_offset => INTERVAL '1 hour',
    schedule_interval => INTERVAL '30 minutes', if_not_exists => TRUE);
