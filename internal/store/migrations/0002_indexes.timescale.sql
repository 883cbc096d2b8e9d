-- Hypertable on time (TimescaleDB creates the time index readings_time_idx itself).
SELECT create_hypertable('readings', by_range('time', INTERVAL '1 day'), if_not_exists => TRUE, migrate_data => TRUE);
-- INCLUDE (value) makes raw series reads index-only scans.
CREATE INDEX IF NOT EXISTS readings_series_time_idx ON readings (metric, device, sensor, time DESC) INCLUDE (value);
