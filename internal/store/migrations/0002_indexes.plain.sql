-- Series index: every builder query names a metric, so metric leads (serves "metric + all devices" too).
-- INCLUDE (value) makes raw series reads index-only scans.
CREATE INDEX IF NOT EXISTS readings_series_time_idx ON readings (metric, device, sensor, time DESC) INCLUDE (value);
-- Time-range scans across all series.
CREATE INDEX IF NOT EXISTS readings_time_idx ON readings (time DESC);
