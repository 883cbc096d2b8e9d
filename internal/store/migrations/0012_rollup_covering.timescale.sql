-- The covering rollup index of the plain variant is not made on TimescaleDB: its rollups are hypertables whose
-- chunks may be compressed, and that index was not run against a TimescaleDB server here (none is packaged for
-- this project's CI). Kept so versions line up across variants.
SELECT 1;
