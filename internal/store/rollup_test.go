package store_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fieldline-iot/fieldline/internal/store"
	"github.com/fieldline-iot/fieldline/internal/telemetry"
	"github.com/fieldline-iot/fieldline/pkg/sqlquery"
)

// The rollup invariant: whoever writes (the ingester's COPY, another program's INSERT or COPY),
// whenever (rows days behind rows already rolled up) and however concurrently, every rollup level equals the
// aggregate of the raw rows once the writing transaction has committed.

// rollupEnv is a migrated test database with the writers the tests use.
type rollupEnv struct {
	pool  *pgxpool.Pool // a foreign writer's session (no fieldline.writer)
	info  store.SchemaInfo
	ingA  *store.Writer // two ingesters, each with its own pool, marked as the ingester's sessions
	ingB  *store.Writer
	mu    sync.Mutex
	taken map[string]bool // series+time already written: "last" is well defined only without ties

	foreignDeadlocks atomic.Int64 // foreign transactions PostgreSQL aborted as deadlock victims
}

func newRollupEnv(t *testing.T) *rollupEnv {
	t.Helper()
	pool := newPool(t)
	ctx := context.Background()
	info, err := store.Migrate(ctx, pool, store.TimescaleAuto)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("schema %d, %s", info.Version, info.Variant)
	ingester := func() *store.Writer {
		cfg := pool.Config().Copy()
		cfg.AfterConnect = store.WriterSessionSetup
		p, err := pgxpool.NewWithConfig(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.Close)
		return store.NewWriter(p, info, true)
	}
	return &rollupEnv{pool: pool, info: info, ingA: ingester(), ingB: ingester(), taken: map[string]bool{}}
}

// unique moves r.Time forward by microseconds until no earlier reading of its series has that time.
func (e *rollupEnv) unique(rows []telemetry.Reading) []telemetry.Reading {
	e.mu.Lock()
	defer e.mu.Unlock()
	for i := range rows {
		r := &rows[i]
		r.Time = r.Time.Truncate(time.Microsecond)
		for e.taken[fmt.Sprint(r.Metric, "\x00", r.Device, "\x00", r.Sensor, "\x00", r.Time.UnixMicro())] {
			r.Time = r.Time.Add(time.Microsecond)
		}
		e.taken[fmt.Sprint(r.Metric, "\x00", r.Device, "\x00", r.Sensor, "\x00", r.Time.UnixMicro())] = true
	}
	return rows
}

// foreignInsert writes rows as another program would: one multi-row INSERT statement.
func (e *rollupEnv) foreignInsert(ctx context.Context, rows []telemetry.Reading) error {
	ts := make([]time.Time, len(rows))
	dev, met, sen := make([]string, len(rows)), make([]string, len(rows)), make([]string, len(rows))
	val := make([]float64, len(rows))
	for i, r := range rows {
		ts[i], dev[i], met[i], sen[i], val[i] = r.Time, r.Device, r.Metric, r.Sensor, r.Value
	}
	_, err := e.pool.Exec(ctx, `INSERT INTO readings (time, device, metric, sensor, value)
SELECT * FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::float8[])`, ts, dev, met, sen, val)
	return err
}

// foreignRowByRow writes rows as single-row INSERTs, each its own transaction (a bridge inserting per message).
func (e *rollupEnv) foreignRowByRow(ctx context.Context, rows []telemetry.Reading) error {
	for _, r := range rows {
		if _, err := e.pool.Exec(ctx, `INSERT INTO readings (time, device, metric, sensor, value) VALUES ($1, $2, $3, $4, $5)`,
			r.Time, r.Device, r.Metric, r.Sensor, r.Value); err != nil {
			return err
		}
	}
	return nil
}

// foreignTransaction writes rows as single-row INSERTs in one transaction, retried when PostgreSQL picks it as
// a deadlock victim: its statements lock rollup rows in row order, which no ordering inside the trigger can
// align with other writers' (see docs/ingester.md).
func (e *rollupEnv) foreignTransaction(ctx context.Context, rows []telemetry.Reading) error {
	for attempt := 0; ; attempt++ {
		err := pgx.BeginFunc(ctx, e.pool, func(tx pgx.Tx) error {
			for _, r := range rows {
				if _, err := tx.Exec(ctx, `INSERT INTO readings (time, device, metric, sensor, value) VALUES ($1, $2, $3, $4, $5)`,
					r.Time, r.Device, r.Metric, r.Sensor, r.Value); err != nil {
					return err
				}
			}
			return nil
		})
		var pgErr *pgconn.PgError
		if err == nil || attempt == 20 || !errors.As(err, &pgErr) || pgErr.Code != "40P01" {
			return err
		}
		e.foreignDeadlocks.Add(1)
	}
}

var (
	testMetrics = []string{"temperature", "humidity", "co2"}
	testDevices = []string{"pico", "node1", "esp-7"}
	testSensors = []string{"", "dht22"}
)

// randomRows returns n readings around at (within spread), values of any sign and magnitude.
func randomRows(rng *rand.Rand, n int, at time.Time, spread time.Duration) []telemetry.Reading {
	rows := make([]telemetry.Reading, n)
	for i := range rows {
		rows[i] = telemetry.Reading{
			Time:   at.Add(-time.Duration(rng.Int64N(int64(spread)))),
			Metric: testMetrics[rng.IntN(len(testMetrics))], Device: testDevices[rng.IntN(len(testDevices))],
			Sensor: testSensors[rng.IntN(len(testSensors))],
			Value:  (rng.Float64() - 0.3) * math.Pow(10, float64(rng.IntN(6))),
		}
	}
	return rows
}

// checkTables compares every rollup table with the aggregate of the raw rows, bucket by bucket.
func checkTables(t *testing.T, ctx context.Context, pool *pgxpool.Pool, when string) {
	t.Helper()
	for _, level := range store.Rollups {
		var mismatches, buckets int
		err := pool.QueryRow(ctx, fmt.Sprintf(`
WITH raw AS (
  SELECT date_bin('%d seconds', time, '2000-01-03') AS bucket, device, metric, sensor, count(*) c, sum(value) s,
         min(value) mi, max(value) ma, (array_agg(value ORDER BY time DESC))[1] l, max(time) lt
    FROM readings GROUP BY 1, 2, 3, 4)
SELECT count(*) FILTER (WHERE r.count IS DISTINCT FROM raw.c OR abs(r.sum - raw.s) > 1e-9 * greatest(1, abs(raw.s))
    OR r.min IS DISTINCT FROM raw.mi OR r.max IS DISTINCT FROM raw.ma OR r.last IS DISTINCT FROM raw.l
    OR r.last_time IS DISTINCT FROM raw.lt), count(*)
  FROM raw FULL JOIN %s r USING (bucket, device, metric, sensor)`,
			int(level.Width.Seconds()), level.Table)).Scan(&mismatches, &buckets)
		if err != nil || mismatches != 0 {
			t.Errorf("%s: %s differs from the raw aggregate in %d of %d buckets (err %v)", when, level.Table, mismatches, buckets, err)
		}
	}
}

type point struct {
	t              time.Time
	device, sensor string
	v              float64
}

func runStatement(ctx context.Context, pool *pgxpool.Pool, st sqlquery.Statement) ([]point, error) {
	rows, err := pool.Query(ctx, st.SQL, st.Args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []point
	truncated, err := st.ReadRows(rows, func(t time.Time, device, sensor string, v float64) {
		out = append(out, point{t: t, device: device, sensor: sensor, v: v})
	})
	if err != nil {
		return nil, err
	}
	if truncated {
		return nil, fmt.Errorf("%s: stopped at its row limit", st.SQL)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if !a.t.Equal(b.t) {
			return a.t.Before(b.t)
		}
		if a.device != b.device {
			return a.device < b.device
		}
		return a.sensor < b.sensor
	})
	return out, nil
}

// checkBuilder runs the plugin's aggregated builder queries at every level (and a re-aggregated interval) from
// the rollups and from the raw rows, and requires equal answers: count exactly, the rest to 1e-9.
func checkBuilder(t *testing.T, ctx context.Context, pool *pgxpool.Pool, info store.SchemaInfo, from, to time.Time, when string) {
	t.Helper()
	for _, interval := range []time.Duration{time.Minute, 5 * time.Minute, 10 * time.Minute, time.Hour, 24 * time.Hour} {
		for _, agg := range []sqlquery.Aggregation{sqlquery.Count, sqlquery.Sum, sqlquery.Avg, sqlquery.Min, sqlquery.Max, sqlquery.Last} {
			for _, metric := range testMetrics {
				req := sqlquery.Request{Metric: metric, Aggregation: agg, Interval: interval, From: from, To: to, Limit: 1_000_000}
				viaRollup, err := sqlquery.Build(req, sqlquery.Options{Timescale: info.Timescale()})
				if err != nil {
					t.Fatal(err)
				}
				if !viaRollup.Rollup {
					t.Fatalf("%v at %v is not served from a rollup", agg, interval)
				}
				viaRaw, err := sqlquery.Build(req, sqlquery.Options{Timescale: info.Timescale(), NoRollup: true})
				if err != nil {
					t.Fatal(err)
				}
				got, err := runStatement(ctx, pool, viaRollup)
				if err != nil {
					t.Fatalf("%s: %s: %v", when, viaRollup.SQL, err)
				}
				want, err := runStatement(ctx, pool, viaRaw)
				if err != nil {
					t.Fatalf("%s: %s: %v", when, viaRaw.SQL, err)
				}
				if len(got) != len(want) {
					t.Errorf("%s: %s %s at %v: %d points from the rollup, %d from the raw rows", when, metric, agg, interval, len(got), len(want))
					continue
				}
				for i := range got {
					g, w := got[i], want[i]
					tol := 1e-9 * math.Max(1, math.Abs(w.v))
					if agg == sqlquery.Count {
						tol = 0
					}
					if !g.t.Equal(w.t) || g.device != w.device || g.sensor != w.sensor || math.Abs(g.v-w.v) > tol {
						t.Errorf("%s: %s %s at %v: point %d = %+v from the rollup, %+v from the raw rows", when, metric, agg, interval, i, g, w)
						break
					}
				}
			}
		}
	}
}

func (e *rollupEnv) check(t *testing.T, ctx context.Context, from, to time.Time, when string) {
	t.Helper()
	checkTables(t, ctx, e.pool, when)
	checkBuilder(t, ctx, e.pool, e.info, from, to, when)
	// Every series written is in the catalogue discovery reads.
	var missing int
	if err := e.pool.QueryRow(ctx, `SELECT count(*) FROM (SELECT DISTINCT metric, device, sensor FROM readings) r
		WHERE NOT EXISTS (SELECT 1 FROM readings_series s WHERE (s.metric, s.device, s.sensor) = (r.metric, r.device, r.sensor))`).
		Scan(&missing); err != nil || missing != 0 {
		t.Errorf("%s: %d series missing from readings_series (err %v)", when, missing, err)
	}
}

// Randomized: writes by two ingesters and foreign writers, in random order, some concurrent, with timestamps
// anywhere in the last 40 days (most of them behind rows already rolled up). Fixed seeds: a failure reproduces.
func TestRollupInvariantRandomized(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			e := newRollupEnv(t)
			ctx := context.Background()
			rng := rand.New(rand.NewPCG(seed, 12))
			now := time.Now().UTC()
			// a few hot spots, so writes keep landing in buckets that already hold rows
			spots := []time.Time{now, now.Add(-time.Hour), now.Add(-24 * time.Hour), now.Add(-30 * 24 * time.Hour)}
			write := func(kind int, rows []telemetry.Reading) error {
				switch kind {
				case 0:
					return e.ingA.Write(ctx, rows)
				case 1:
					return e.ingB.Write(ctx, rows)
				case 2:
					return e.foreignInsert(ctx, rows)
				case 3:
					return e.foreignRowByRow(ctx, rows[:min(len(rows), 20)])
				default:
					return e.foreignTransaction(ctx, rows[:min(len(rows), 20)])
				}
			}
			for step := 0; step < 25; step++ {
				at, spread := spots[rng.IntN(len(spots))], 10*time.Minute
				if rng.IntN(4) == 0 {
					at, spread = now, 40*24*time.Hour
				}
				if rng.IntN(3) == 0 {
					// concurrent writers into the same buckets
					var wg sync.WaitGroup
					errs := make([]error, 3)
					for w := range 3 {
						rows := e.unique(randomRows(rng, 1+rng.IntN(300), at, spread))
						kind := rng.IntN(5)
						wg.Add(1)
						go func() { defer wg.Done(); errs[w] = write(kind, rows) }()
					}
					wg.Wait()
					if err := errors.Join(errs...); err != nil {
						t.Fatalf("step %d (concurrent): %v", step, err)
					}
					continue
				}
				if err := write(rng.IntN(5), e.unique(randomRows(rng, 1+rng.IntN(500), at, spread))); err != nil {
					t.Fatalf("step %d: %v", step, err)
				}
			}
			e.check(t, ctx, now.Add(-41*24*time.Hour), now.Add(time.Hour), "after random writes")
		})
	}
}

// Rows 1 day and 30 days late, from the ingester and from a foreign INSERT, after the recent rows were rolled up.
func TestRollupLateRows(t *testing.T) {
	e := newRollupEnv(t)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(7, 7))
	now := time.Now().UTC()
	if err := e.ingA.Write(ctx, e.unique(randomRows(rng, 2000, now, 3*time.Hour))); err != nil {
		t.Fatal(err)
	}
	e.check(t, ctx, now.Add(-31*24*time.Hour), now.Add(time.Hour), "current rows")
	for _, late := range []time.Duration{24 * time.Hour, 30 * 24 * time.Hour} {
		if err := e.ingA.Write(ctx, e.unique(randomRows(rng, 20, now.Add(-late), time.Hour))); err != nil {
			t.Fatal(err)
		}
		if err := e.foreignInsert(ctx, e.unique(randomRows(rng, 10, now.Add(-late), time.Hour))); err != nil {
			t.Fatal(err)
		}
	}
	var n int64
	if err := e.pool.QueryRow(ctx, `SELECT coalesce(sum(count), 0) FROM readings_1h WHERE bucket < $1`, now.Add(-12*time.Hour)).Scan(&n); err != nil || n != 60 {
		t.Errorf("late rows in readings_1h: %d, want 60 (err %v)", n, err)
	}
	e.check(t, ctx, now.Add(-31*24*time.Hour), now.Add(time.Hour), "after late rows")
}

// A 4-hour outage: live rows resume first, then the spool replays the outage's batches, oldest first.
func TestRollupSpoolReplayAfterOutage(t *testing.T) {
	e := newRollupEnv(t)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(4, 4))
	now := time.Now().UTC()
	outageStart := now.Add(-4 * time.Hour)
	batchOf := func(from time.Time) []telemetry.Reading {
		var rows []telemetry.Reading
		for i := range 60 {
			for _, d := range testDevices {
				rows = append(rows, telemetry.Reading{Time: from.Add(time.Duration(i) * 10 * time.Second), Metric: "temperature",
					Device: d, Sensor: "dht22", Value: rng.NormFloat64() * 5})
			}
		}
		return e.unique(rows)
	}
	for t0 := outageStart.Add(-2 * time.Hour); t0.Before(outageStart); t0 = t0.Add(10 * time.Minute) {
		if err := e.ingA.Write(ctx, batchOf(t0)); err != nil {
			t.Fatal(err)
		}
	}
	var spooled [][]telemetry.Reading
	for t0 := outageStart; t0.Before(now); t0 = t0.Add(10 * time.Minute) {
		spooled = append(spooled, batchOf(t0))
	}
	if err := e.ingA.Write(ctx, batchOf(now)); err != nil { // live again
		t.Fatal(err)
	}
	e.check(t, ctx, outageStart.Add(-3*time.Hour), now.Add(time.Hour), "before the replay")
	for _, b := range spooled {
		if err := e.ingB.Write(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	var n int64
	if err := e.pool.QueryRow(ctx, `SELECT sum(count) FROM readings_5m`).Scan(&n); err != nil || n != int64(12+len(spooled)+1)*180 {
		t.Errorf("readings_5m counts %d readings, want %d (err %v)", n, (12+len(spooled)+1)*180, err)
	}
	e.check(t, ctx, outageStart.Add(-3*time.Hour), now.Add(time.Hour), "after the replay")
}

// Two ingesters and a foreign writer hammer the same buckets at once: no lost update, no deadlock.
func TestRollupConcurrentWriters(t *testing.T) {
	e := newRollupEnv(t)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Hour)
	var wg sync.WaitGroup
	errs := make([]error, 5)
	for w := range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 99))
			for range 15 {
				rows := e.unique(randomRows(rng, 200, now, 5*time.Minute))
				var err error
				switch w {
				case 0:
					err = e.ingA.Write(ctx, rows)
				case 1:
					err = e.ingB.Write(ctx, rows)
				case 2:
					err = e.foreignInsert(ctx, rows)
				case 3:
					err = e.foreignRowByRow(ctx, rows[:10])
				default:
					err = e.foreignTransaction(ctx, rows[:10])
				}
				if err != nil {
					errs[w] = err
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	var n int64
	if err := e.pool.QueryRow(ctx, `SELECT sum(count) FROM readings_1h`).Scan(&n); err != nil || n != 3*15*200+2*15*10 {
		t.Errorf("readings_1h counts %d readings, want %d (err %v)", n, 3*15*200+2*15*10, err)
	}
	e.check(t, ctx, now.Add(-time.Hour), now.Add(time.Hour), "after concurrent writers")
	// The advisory lock makes a foreign multi-statement transaction merge alone: it never deadlocks.
	if n := e.foreignDeadlocks.Load(); n != 0 {
		t.Errorf("foreign transactions were aborted as deadlock victims %d times", n)
	}
}

// The ingester's batches merge concurrently (the rollup lock is shared among sessions marked by
// WriterSessionSetup), while any other writer merges alone: it waits for a batch still open, and a batch waits
// for it.
func TestRollupLockModes(t *testing.T) {
	e := newRollupEnv(t)
	ctx := context.Background()
	session := func(ingester bool) *pgx.Conn {
		cfg := e.pool.Config().ConnConfig.Copy()
		c, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close(ctx) })
		if ingester {
			if err := store.WriterSessionSetup(ctx, c); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := c.Exec(ctx, "SET lock_timeout = '1s'"); err != nil {
			t.Fatal(err)
		}
		return c
	}
	insert := func(c *pgx.Conn, device string, at time.Time) error {
		_, err := c.Exec(ctx, `INSERT INTO readings (time, device, metric, sensor, value) VALUES ($1, $2, 'temperature', '', 1)`, at, device)
		return err
	}
	at := time.Now().UTC().Add(-48 * time.Hour).Truncate(time.Hour).Add(30 * time.Minute)
	// A committed row first: on TimescaleDB the chunks of readings and of the rollups for this time exist then
	// (a writer creating a chunk holds a lock on it until commit, which would make the others wait whatever the
	// advisory lock's mode).
	if err := insert(session(false), "setup", at.Add(-time.Second)); err != nil {
		t.Fatal(err)
	}

	open, err := session(true).Begin(ctx) // a batch, merged but not committed yet
	if err != nil {
		t.Fatal(err)
	}
	defer open.Rollback(ctx)
	if _, err := open.Exec(ctx, `INSERT INTO readings (time, device, metric, sensor, value) VALUES ($1, 'a', 'temperature', '', 1)`, at); err != nil {
		t.Fatal(err)
	}
	if err := insert(session(true), "b", at.Add(time.Second)); err != nil {
		t.Errorf("a second ingester batch waited for the open one: %v", err)
	}
	var pgErr *pgconn.PgError
	if err := insert(session(false), "c", at.Add(2*time.Second)); !errors.As(err, &pgErr) || pgErr.Code != "55P03" {
		t.Errorf("a foreign writer merged beside an open ingester batch (want lock_not_available): %v", err)
	}
	if err := open.Commit(ctx); err != nil {
		t.Fatal(err)
	}

	foreign, err := session(false).Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer foreign.Rollback(ctx)
	if _, err := foreign.Exec(ctx, `INSERT INTO readings (time, device, metric, sensor, value) VALUES ($1, 'd', 'temperature', '', 1)`, at.Add(3*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := insert(session(true), "e", at.Add(4*time.Second)); !errors.As(err, &pgErr) || pgErr.Code != "55P03" {
		t.Errorf("an ingester batch merged beside an open foreign transaction (want lock_not_available): %v", err)
	}
	if err := foreign.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	e.check(t, ctx, at.Add(-time.Hour), at.Add(time.Hour), "after lock modes")
}

// A foreign writer's COPY (not marked as the ingester) is rolled up too.
func TestRollupForeignCopy(t *testing.T) {
	e := newRollupEnv(t)
	ctx := context.Background()
	rows := e.unique(randomRows(rand.New(rand.NewPCG(5, 5)), 300, time.Now(), 48*time.Hour))
	_, err := e.pool.CopyFrom(ctx, pgx.Identifier{"readings"}, []string{"time", "device", "metric", "sensor", "value"},
		pgx.CopyFromSlice(len(rows), func(i int) ([]any, error) {
			r := rows[i]
			return []any{r.Time, r.Device, r.Metric, r.Sensor, r.Value}, nil
		}))
	if err != nil {
		t.Fatal(err)
	}
	e.check(t, ctx, time.Now().Add(-49*time.Hour), time.Now().Add(time.Hour), "after a foreign COPY")
}

// A retention job drops old raw rows: the rollups keep their aggregates and discovery still lists the series.
func TestRollupRetentionDropKeepsAggregates(t *testing.T) {
	e := newRollupEnv(t)
	ctx := context.Background()
	now := time.Now().UTC()
	rows := e.unique(randomRows(rand.New(rand.NewPCG(6, 6)), 1000, now, 10*24*time.Hour))
	rows = append(rows, telemetry.Reading{Time: now.Add(-9 * 24 * time.Hour), Metric: "pressure", Device: "retired", Value: 1013})
	if err := e.ingA.Write(ctx, rows); err != nil {
		t.Fatal(err)
	}
	snapshot := func() (n int64, s float64) {
		t.Helper()
		if err := e.pool.QueryRow(ctx, `SELECT sum(count), sum(sum) FROM readings_1m`).Scan(&n, &s); err != nil {
			t.Fatal(err)
		}
		return n, s
	}
	n0, s0 := snapshot()
	cutoff := now.Add(-5 * 24 * time.Hour)
	if e.info.Timescale() {
		_, err := e.pool.Exec(ctx, `SELECT drop_chunks('readings', older_than => $1::timestamptz)`, cutoff)
		if err != nil {
			t.Fatal(err)
		}
	} else if _, err := e.pool.Exec(ctx, `DELETE FROM readings WHERE time < $1`, cutoff); err != nil {
		t.Fatal(err)
	}
	if n, s := snapshot(); n != n0 || math.Abs(s-s0) > 1e-9*math.Max(1, math.Abs(s0)) {
		t.Errorf("after dropping raw rows, readings_1m holds %d readings (sum %v), want %d (sum %v)", n, s, n0, s0)
	}
	var has bool
	if err := e.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM readings_series WHERE device = 'retired')`).Scan(&has); err != nil || !has {
		t.Errorf("a series whose raw rows were dropped left the catalogue (err %v)", err)
	}
}

// The upgrade from schema 7 keeps every reading and rebuilds the rollups: from the raw rows where they exist (rows
// the old ingester's merge never saw are now counted), from the old aggregates where raw rows were dropped.
func TestMigrateFrom7RebuildsRollups(t *testing.T) {
	pool := newPool(t)
	ctx := context.Background()
	old, err := store.MigrateTo(ctx, pool, store.TimescaleAuto, 7)
	if err != nil {
		t.Fatal(err)
	}
	if old.Version != 7 {
		t.Fatalf("migrated to %d, want 7", old.Version)
	}
	now := time.Now().UTC().Truncate(time.Hour)
	ancient := now.Add(-60 * 24 * time.Hour) // raw rows already dropped: only the aggregates are left
	rng := rand.New(rand.NewPCG(8, 8))
	insert := func(rows []telemetry.Reading) {
		t.Helper()
		for _, r := range rows {
			if _, err := pool.Exec(ctx, `INSERT INTO readings (time, device, metric, sensor, value) VALUES ($1, $2, $3, $4, $5)`,
				r.Time, r.Device, r.Metric, r.Sensor, r.Value); err != nil {
				t.Fatal(err)
			}
		}
	}
	insert(randomRows(rng, 50, ancient.Add(time.Hour), time.Hour))
	insert([]telemetry.Reading{{Time: ancient.Add(30 * time.Minute), Metric: "pressure", Device: "retired", Value: 1000}})
	// The old ingester's merge (or a refresh) rolled those up; then a retention job dropped the raw rows.
	if _, err := pool.Exec(ctx, `SELECT fieldline_refresh_rollups($1, $2)`, ancient, ancient.Add(3*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if old.Timescale() {
		if _, err := pool.Exec(ctx, `SELECT drop_chunks('readings', older_than => $1::timestamptz)`, now.Add(-30*24*time.Hour)); err != nil {
			t.Fatal(err)
		}
	} else if _, err := pool.Exec(ctx, `DELETE FROM readings WHERE time < $1`, now.Add(-30*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	var oldCount, oldSum float64
	if err := pool.QueryRow(ctx, `SELECT sum(count), sum(sum) FROM readings_1h`).Scan(&oldCount, &oldSum); err != nil {
		t.Fatal(err)
	}
	// Recent rows as the old schema saw them from a foreign writer: not (or not yet) in the rollups.
	insert(randomRows(rng, 200, now, 2*24*time.Hour))
	var rawBefore int64
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM readings`).Scan(&rawBefore); err != nil {
		t.Fatal(err)
	}

	info, err := store.Migrate(ctx, pool, store.TimescaleAuto)
	if err != nil {
		t.Fatal(err)
	}
	if info.Variant != old.Variant || len(info.Applied) == 0 {
		t.Fatalf("upgrade: %+v", info)
	}
	var rawAfter int64
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM readings`).Scan(&rawAfter); err != nil || rawAfter != rawBefore {
		t.Errorf("readings holds %d rows after the upgrade, %d before (err %v)", rawAfter, rawBefore, err)
	}
	var n, s float64
	if err := pool.QueryRow(ctx, `SELECT sum(count), sum(sum) FROM readings_1h WHERE bucket < $1`, now.Add(-30*24*time.Hour)).Scan(&n, &s); err != nil ||
		n != oldCount || math.Abs(s-oldSum) > 1e-9*math.Max(1, math.Abs(oldSum)) {
		t.Errorf("aggregates of dropped raw rows: %v readings (sum %v), want %v (sum %v) (err %v)", n, s, oldCount, oldSum, err)
	}
	var retired bool
	if err := pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM readings_series WHERE device = 'retired')`).Scan(&retired); err != nil || !retired {
		t.Errorf("series known only from the old aggregates missing from readings_series (err %v)", err)
	}
	// Raw-backed buckets equal the raw aggregate; new writes keep them so.
	e := &rollupEnv{pool: pool, info: info, ingA: store.NewWriter(pool, info, false), taken: map[string]bool{}}
	if err := e.ingA.Write(ctx, randomRows(rng, 100, now, 3*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	for _, level := range store.Rollups {
		if _, err := pool.Exec(ctx, `DELETE FROM `+level.Table+` WHERE bucket < $1`, now.Add(-30*24*time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	e.check(t, ctx, now.Add(-4*24*time.Hour), now.Add(time.Hour), "after the upgrade")
}

// timescale: on against a server without a usable TimescaleDB fails with ErrTimescaleUnavailable (the ingester
// exits 2 on it); auto falls back to plain PostgreSQL.
func TestTimescaleOnWithoutTimescale(t *testing.T) {
	pool := newPool(t)
	ctx := context.Background()
	var available bool
	if err := pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb')
		AND current_setting('timescaledb.disable_load', true) IS NOT NULL`).Scan(&available); err != nil {
		t.Fatal(err)
	}
	if available {
		t.Skip("this server can use TimescaleDB")
	}
	_, err := store.Migrate(ctx, pool, store.TimescaleOn)
	if !errors.Is(err, store.ErrTimescaleUnavailable) {
		t.Fatalf("Migrate(on) = %v, want ErrTimescaleUnavailable", err)
	}
	info, err := store.Migrate(ctx, pool, store.TimescaleAuto)
	if err != nil || info.Variant != store.Plain {
		t.Fatalf("Migrate(auto) = %+v, %v", info, err)
	}
}
