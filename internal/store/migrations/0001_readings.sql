-- The readings table: one row per stored sample. Same shape on plain PostgreSQL and on TimescaleDB.
-- Labels use the "C" collation: byte order, so index maintenance, sorting and grouping compare with memcmp
-- (and abbreviated keys) instead of the database's locale (C.UTF-8, en_US... go through strcoll).
CREATE TABLE IF NOT EXISTS readings (
    time   timestamptz      NOT NULL,
    device text COLLATE "C" NOT NULL,
    metric text COLLATE "C" NOT NULL,
    sensor text COLLATE "C" NOT NULL DEFAULT '',
    value  double precision NOT NULL,
    unit   text COLLATE "C"
);
COMMENT ON TABLE readings IS 'Fieldline sensor readings (written by fieldline-ingester)';
