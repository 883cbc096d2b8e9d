-- The states table: text and boolean values (device status, relay and door states, firmware versions), one row
-- per stored state. Written by fieldline-ingester for subscriptions with value_type text, bool or auto; read by
-- the plugin's states mode. kind says how to show the value: 'text', or 'bool' ('true'/'false').
CREATE TABLE IF NOT EXISTS states (
    time   timestamptz      NOT NULL,
    device text COLLATE "C" NOT NULL,
    metric text COLLATE "C" NOT NULL,
    sensor text COLLATE "C" NOT NULL DEFAULT '',
    value  text             NOT NULL,
    kind   text COLLATE "C" NOT NULL DEFAULT 'text' CHECK (kind IN ('text', 'bool'))
);
COMMENT ON TABLE states IS 'Fieldline text and boolean values (written by fieldline-ingester)';
CREATE INDEX IF NOT EXISTS states_time_idx ON states (time);
CREATE INDEX IF NOT EXISTS states_series_time_idx ON states (metric, device, sensor, time DESC) INCLUDE (value, kind);
SELECT fieldline_grant_reader();
