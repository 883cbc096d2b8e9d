package store

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fieldline-iot/fieldline/pkg/telemetry"
)

var readingColumns = []string{"time", "device", "metric", "sensor", "value", "unit"}

// WriterSessionSetup marks a connection as the ingester's, so the optional foreign-writer trigger skips rows
// the ingester already announces per batch. Use it as pgxpool.Config.AfterConnect.
func WriterSessionSetup(ctx context.Context, c *pgx.Conn) error {
	_, err := c.Exec(ctx, "SET fieldline.writer = 'ingester'")
	if err != nil {
		return fmt.Errorf("mark writer session: %w", err)
	}
	return nil
}

// Writer stores batches of readings: one transaction per batch with COPY into readings, the 1-minute rollup
// merge on plain PostgreSQL (TimescaleDB keeps its continuous aggregate itself) and one NOTIFY on Channel.
type Writer struct {
	pool    *pgxpool.Pool
	variant Variant
	notify  bool
}

// NewWriter returns a writer for a schema prepared by Migrate. notify turns the per-batch NOTIFY on.
func NewWriter(pool *pgxpool.Pool, info SchemaInfo, notify bool) *Writer {
	return &Writer{pool: pool, variant: info.Variant, notify: notify}
}

// Write stores the batch atomically: after it returns nil every row is committed; after an error none is.
func (w *Writer) Write(ctx context.Context, batch []telemetry.Reading) error {
	if len(batch) == 0 {
		return nil
	}
	err := pgx.BeginFunc(ctx, w.pool, func(tx pgx.Tx) error {
		n, err := tx.CopyFrom(ctx, pgx.Identifier{"readings"}, readingColumns, &copySource{rows: batch, i: -1})
		if err != nil {
			return fmt.Errorf("copy %d readings: %w", len(batch), err)
		}
		if int(n) != len(batch) {
			return fmt.Errorf("copy readings: stored %d of %d rows", n, len(batch))
		}
		if w.variant == Plain {
			if err := mergeRollups(ctx, tx, batch); err != nil {
				return err
			}
		}
		if w.notify {
			if _, err := tx.Exec(ctx, "SELECT pg_notify($1, $2)", Channel, EncodeNotification(batch)); err != nil {
				return fmt.Errorf("notify %s: %w", Channel, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("write batch to PostgreSQL: %w", err)
	}
	return nil
}

// copySource feeds a batch to COPY, reusing one values slice (pgx encodes each row before asking for the next).
type copySource struct {
	rows []telemetry.Reading
	i    int
	vals [6]any
}

func (s *copySource) Next() bool { s.i++; return s.i < len(s.rows) }
func (s *copySource) Err() error { return nil }
func (s *copySource) Values() ([]any, error) {
	r := &s.rows[s.i]
	s.vals[0] = r.Time
	s.vals[1] = r.Device
	s.vals[2] = r.Metric
	s.vals[3] = r.Sensor
	s.vals[4] = r.Value
	if r.Unit == "" {
		s.vals[5] = nil
	} else {
		s.vals[5] = r.Unit
	}
	return s.vals[:], nil
}

// Rollup is one pre-aggregated level of readings: a table (plain PostgreSQL) or continuous aggregate
// (TimescaleDB) with columns bucket, device, metric, sensor, count, sum, min, max, last, last_time.
type Rollup struct {
	Table string
	Width time.Duration
}

// Rollups lists the levels, finest first. Buckets are date_bin(width, time, '2000-01-03') (= time_bucket).
var Rollups = []Rollup{
	{Table: "readings_1m", Width: time.Minute},
	{Table: "readings_5m", Width: 5 * time.Minute},
	{Table: "readings_1h", Width: time.Hour},
}

// RollupFor returns the coarsest level whose width divides interval (nil when none does).
func RollupFor(interval time.Duration) *Rollup {
	for i := len(Rollups) - 1; i >= 0; i-- {
		if interval >= Rollups[i].Width && interval%Rollups[i].Width == 0 {
			return &Rollups[i]
		}
	}
	return nil
}

type rollupKey struct {
	bucket                 int64 // unix seconds of the bucket start
	device, metric, sensor string
}

type rollupAgg struct {
	count         int64
	sum, min, max float64
	last          float64
	lastTime      time.Time
}

// mergeRollups folds the batch into every rollup level: per (series, bucket) count/sum/min/max/last, merged with
// what is stored, so each level always equals an aggregate over all committed rows. The statements go in one
// round trip (a pgx batch). Keys are sorted so concurrent writers lock rows in the same order (no deadlocks).
func mergeRollups(ctx context.Context, tx pgx.Tx, batch []telemetry.Reading) error {
	var b pgx.Batch
	for _, level := range Rollups {
		queueMerge(&b, level, batch)
	}
	res := tx.SendBatch(ctx, &b)
	for _, level := range Rollups {
		if _, err := res.Exec(); err != nil {
			_ = res.Close()
			return fmt.Errorf("merge batch into %s: %w", level.Table, err)
		}
	}
	if err := res.Close(); err != nil {
		return fmt.Errorf("merge rollups: %w", err)
	}
	return nil
}

func queueMerge(b *pgx.Batch, level Rollup, batch []telemetry.Reading) {
	aggs := make(map[rollupKey]*rollupAgg, 16)
	for i := range batch {
		r := &batch[i]
		k := rollupKey{bucket: r.Time.Truncate(level.Width).Unix(), device: r.Device, metric: r.Metric, sensor: r.Sensor}
		a := aggs[k]
		if a == nil {
			aggs[k] = &rollupAgg{count: 1, sum: r.Value, min: r.Value, max: r.Value, last: r.Value, lastTime: r.Time}
			continue
		}
		a.count++
		a.sum += r.Value
		a.min = min(a.min, r.Value)
		a.max = max(a.max, r.Value)
		if !r.Time.Before(a.lastTime) {
			a.last, a.lastTime = r.Value, r.Time
		}
	}
	keys := make([]rollupKey, 0, len(aggs))
	for k := range aggs {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := keys[i], keys[j]
		if a.metric != b.metric {
			return a.metric < b.metric
		}
		if a.device != b.device {
			return a.device < b.device
		}
		if a.sensor != b.sensor {
			return a.sensor < b.sensor
		}
		return a.bucket < b.bucket
	})
	n := len(keys)
	buckets, lastTimes := make([]time.Time, n), make([]time.Time, n)
	devices, metrics, sensors := make([]string, n), make([]string, n), make([]string, n)
	counts := make([]int64, n)
	sums, mins, maxs, lasts := make([]float64, n), make([]float64, n), make([]float64, n), make([]float64, n)
	for i, k := range keys {
		a := aggs[k]
		buckets[i] = time.Unix(k.bucket, 0).UTC()
		devices[i], metrics[i], sensors[i] = k.device, k.metric, k.sensor
		counts[i], sums[i], mins[i], maxs[i], lasts[i], lastTimes[i] = a.count, a.sum, a.min, a.max, a.last, a.lastTime
	}
	// level.Table comes from the fixed Rollups list, never from input.
	b.Queue(`
INSERT INTO `+level.Table+` AS r (bucket, device, metric, sensor, count, sum, min, max, last, last_time)
SELECT * FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::bigint[],
                     $6::float8[], $7::float8[], $8::float8[], $9::float8[], $10::timestamptz[])
ON CONFLICT (metric, device, sensor, bucket) DO UPDATE SET
    count     = r.count + EXCLUDED.count,
    sum       = r.sum + EXCLUDED.sum,
    min       = LEAST(r.min, EXCLUDED.min),
    max       = GREATEST(r.max, EXCLUDED.max),
    last      = CASE WHEN EXCLUDED.last_time >= r.last_time THEN EXCLUDED.last ELSE r.last END,
    last_time = GREATEST(r.last_time, EXCLUDED.last_time)`,
		buckets, devices, metrics, sensors, counts, sums, mins, maxs, lasts, lastTimes)
}

// SetNotifyTrigger creates (on) or drops (off) the optional trigger that NOTIFYs for rows written by other
// writers. Plain PostgreSQL gets a statement-level trigger with a transition table (one NOTIFY per statement);
// TimescaleDB gets a row-level trigger, which works on every hypertable version (statement-level triggers with
// transition tables need TimescaleDB 2.18+).
func SetNotifyTrigger(ctx context.Context, pool *pgxpool.Pool, info SchemaInfo, on bool) error {
	var sql string
	switch {
	case !on:
		sql = `DROP TRIGGER IF EXISTS fieldline_notify ON readings`
	case info.Variant == Timescale:
		sql = `DROP TRIGGER IF EXISTS fieldline_notify ON readings;
CREATE TRIGGER fieldline_notify AFTER INSERT ON readings FOR EACH ROW EXECUTE FUNCTION fieldline_notify_row()`
	default:
		sql = `DROP TRIGGER IF EXISTS fieldline_notify ON readings;
CREATE TRIGGER fieldline_notify AFTER INSERT ON readings REFERENCING NEW TABLE AS fieldline_new_rows
FOR EACH STATEMENT EXECUTE FUNCTION fieldline_notify_statement()`
	}
	if _, err := pool.Exec(ctx, sql); err != nil {
		return fmt.Errorf("set notify trigger (%v): %w", on, err)
	}
	return nil
}
