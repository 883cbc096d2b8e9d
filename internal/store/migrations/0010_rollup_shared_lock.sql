-- The rollup trigger's advisory lock, shared among the ingester's batches.
--
-- Migration 8 serialised every merge (and so every writer's commit) behind one exclusive advisory lock, which keeps
-- a foreign transaction that inserts in several statements from deadlocking with other writers: such a
-- transaction locks rollup rows statement by statement, in its own order. The ingester's batches cannot take part
-- in such a cycle: each is one COPY in its own transaction, and one statement's merge locks the series catalogue
-- and then the rollup rows level by level in key order, the same order for every batch. So sessions marked as the
-- ingester's (fieldline.writer = 'ingester', set by store.WriterSessionSetup) take the lock shared: its batches
-- merge and commit concurrently, while any other writer still takes it exclusively and so runs alone, never
-- holding rollup rows a batch waits for, nor waiting for one with rows of its own locked. Measured with
-- `go tool mage bench:ingest` (docs/benchmarks.md).
CREATE OR REPLACE FUNCTION fieldline_rollup_lock() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('fieldline.writer', true) = 'ingester' THEN
        PERFORM pg_advisory_xact_lock_shared(7379540980639362924);
    ELSE
        PERFORM pg_advisory_xact_lock(7379540980639362924);
    END IF;
END $$;

-- The trigger of migration 8, taking the lock above.
CREATE OR REPLACE FUNCTION fieldline_rollup_statement() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM fieldline_rollup_lock();
    -- One pass over the statement's rows: 1-minute aggregates, from which the coarser levels and the series are
    -- derived (minutes nest in 5 minutes and hours: bucket origins align).
    WITH m AS MATERIALIZED (
        SELECT date_bin(INTERVAL '1 minute', time, TIMESTAMPTZ '2000-01-03 00:00:00+00') AS bucket, device, metric,
               sensor, count(*) AS count, sum(value) AS sum, min(value) AS min, max(value) AS max,
               (array_agg(value ORDER BY time DESC))[1] AS last, max(time) AS last_time
          FROM fieldline_rollup_rows
         GROUP BY metric, device, sensor, 1
    ), m1 AS (
        INSERT INTO readings_1m AS r (bucket, device, metric, sensor, count, sum, min, max, last, last_time)
        SELECT bucket, device, metric, sensor, count, sum, min, max, last, last_time FROM m
            ORDER BY metric, device, sensor, bucket
        ON CONFLICT (metric, device, sensor, bucket) DO UPDATE SET
            count     = r.count + EXCLUDED.count,
            sum       = r.sum + EXCLUDED.sum,
            min       = LEAST(r.min, EXCLUDED.min),
            max       = GREATEST(r.max, EXCLUDED.max),
            last      = CASE WHEN EXCLUDED.last_time >= r.last_time THEN EXCLUDED.last ELSE r.last END,
            last_time = GREATEST(r.last_time, EXCLUDED.last_time)
    ), m5 AS (
        INSERT INTO readings_5m AS r (bucket, device, metric, sensor, count, sum, min, max, last, last_time)
        SELECT date_bin(INTERVAL '5 minutes', bucket, TIMESTAMPTZ '2000-01-03 00:00:00+00') AS b, device, metric, sensor,
               sum(count), sum(sum), min(min), max(max), (array_agg(last ORDER BY last_time DESC))[1], max(last_time)
          FROM m GROUP BY metric, device, sensor, b ORDER BY metric, device, sensor, b
        ON CONFLICT (metric, device, sensor, bucket) DO UPDATE SET
            count     = r.count + EXCLUDED.count,
            sum       = r.sum + EXCLUDED.sum,
            min       = LEAST(r.min, EXCLUDED.min),
            max       = GREATEST(r.max, EXCLUDED.max),
            last      = CASE WHEN EXCLUDED.last_time >= r.last_time THEN EXCLUDED.last ELSE r.last END,
            last_time = GREATEST(r.last_time, EXCLUDED.last_time)
    ), h AS (
        INSERT INTO readings_1h AS r (bucket, device, metric, sensor, count, sum, min, max, last, last_time)
        SELECT date_bin(INTERVAL '1 hour', bucket, TIMESTAMPTZ '2000-01-03 00:00:00+00') AS b, device, metric, sensor,
               sum(count), sum(sum), min(min), max(max), (array_agg(last ORDER BY last_time DESC))[1], max(last_time)
          FROM m GROUP BY metric, device, sensor, b ORDER BY metric, device, sensor, b
        ON CONFLICT (metric, device, sensor, bucket) DO UPDATE SET
            count     = r.count + EXCLUDED.count,
            sum       = r.sum + EXCLUDED.sum,
            min       = LEAST(r.min, EXCLUDED.min),
            max       = GREATEST(r.max, EXCLUDED.max),
            last      = CASE WHEN EXCLUDED.last_time >= r.last_time THEN EXCLUDED.last ELSE r.last END,
            last_time = GREATEST(r.last_time, EXCLUDED.last_time)
    )
    INSERT INTO readings_series (metric, device, sensor)
    SELECT DISTINCT metric, device, sensor FROM m ORDER BY 1, 2, 3
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$;
