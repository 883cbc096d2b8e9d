-- The readings table: one row per stored sample. Same shape on plain PostgreSQL and on TimescaleDB.
CREATE TABLE IF NOT EXISTS readings (
    time   timestamptz      NOT NULL,
    device text             NOT NULL,
    metric text             NOT NULL,
    sensor text             NOT NULL DEFAULT '',
    value  double precision NOT NULL,
    unit   text
);
COMMENT ON TABLE readings IS 'Fieldline sensor readings (written by fieldline-ingester)';
