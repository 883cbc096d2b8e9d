package store_test

import (
	"context"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fieldline-iot/fieldline/internal/store"
	"github.com/fieldline-iot/fieldline/internal/telemetry"
	"github.com/fieldline-iot/fieldline/internal/testsvc"
)

func TestMigrationsEmbedded(t *testing.T) {
	migs, err := store.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	if len(migs) < 5 {
		t.Fatalf("got %d migrations, want at least 5", len(migs))
	}
	for _, m := range migs {
		for _, v := range []store.Variant{store.Plain, store.Timescale} {
			if m.SQL(v) == "" {
				t.Errorf("migration %d has no %s SQL", m.Version, v)
			}
		}
	}
	// The TimescaleDB branch uses Timescale's API, the plain branch must not.
	if got := migs[1].SQL(store.Timescale); !contains(got, "create_hypertable") {
		t.Errorf("migration 2 (timescale) does not create the hypertable:\n%s", got)
	}
	if got := migs[1].SQL(store.Plain); contains(got, "create_hypertable") {
		t.Errorf("migration 2 (plain) uses TimescaleDB")
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

func newPool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), testsvc.NewPostgresDB(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// Four migrators start at once on an empty database: all succeed, each migration is applied exactly once.
func TestMigrateConcurrentAndIdempotent(t *testing.T) {
	pool := newPool(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	infos := make([]store.SchemaInfo, 4)
	errs := make([]error, 4)
	for i := range infos {
		wg.Add(1)
		go func() { defer wg.Done(); infos[i], errs[i] = store.Migrate(ctx, pool, store.TimescaleAuto) }()
	}
	wg.Wait()
	applied := 0
	for i, err := range errs {
		if err != nil {
			t.Fatalf("migrator %d: %v", i, err)
		}
		if infos[i].Variant != store.Plain {
			t.Errorf("variant %s on plain PostgreSQL", infos[i].Variant)
		}
		applied += len(infos[i].Applied)
	}
	migs, _ := store.Migrations()
	if applied != len(migs) {
		t.Errorf("%d migrations applied in total across 4 migrators, want %d", applied, len(migs))
	}
	again, err := store.Migrate(ctx, pool, store.TimescaleAuto)
	if err != nil || len(again.Applied) != 0 || again.Version != len(migs) {
		t.Errorf("second run: %+v, %v; want nothing applied at version %d", again, err, len(migs))
	}
	info, exists, err := store.Inspect(ctx, pool)
	if err != nil || !exists || info.Version != len(migs) || info.Variant != store.Plain {
		t.Errorf("Inspect = %+v, %v, %v", info, exists, err)
	}
	if _, err := store.Migrate(ctx, pool, store.TimescaleOn); err == nil {
		t.Errorf("timescale=on on a plain schema should fail with a clear error")
	}
}

func TestInspectEmptyDatabase(t *testing.T) {
	pool := newPool(t)
	info, exists, err := store.Inspect(context.Background(), pool)
	if err != nil || exists || info.Version != 0 {
		t.Errorf("Inspect on an empty database = %+v, %v, %v", info, exists, err)
	}
}

// The writer's rollup always equals an aggregate over the committed raw rows, across batches that touch the
// same buckets, and each batch sends one notification.
func TestWriterRollupAndNotify(t *testing.T) {
	pool := newPool(t)
	ctx := context.Background()
	info, err := store.Migrate(ctx, pool, store.TimescaleOff)
	if err != nil {
		t.Fatal(err)
	}
	listener, err := pgx.Connect(ctx, pool.Config().ConnString())
	if err != nil {
		t.Fatal(err)
	}
	defer listener.Close(ctx)
	if _, err := listener.Exec(ctx, "LISTEN "+store.Channel); err != nil {
		t.Fatal(err)
	}
	w := store.NewWriter(pool, info, true)
	base := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	var batches [][]telemetry.Reading
	for b := 0; b < 3; b++ {
		var batch []telemetry.Reading
		for i := 0; i < 500; i++ {
			k := b*500 + i
			batch = append(batch, telemetry.Reading{
				Time: base.Add(time.Duration(k) * 250 * time.Millisecond), Device: []string{"pico", "node1"}[k%2],
				Metric: "temperature", Sensor: "dht22", Value: math.Sin(float64(k)) * 30,
			})
		}
		batches = append(batches, batch)
	}
	batches = append(batches, []telemetry.Reading{{Time: base.Add(time.Second), Device: "pico", Metric: "humidity", Value: 39.7, Unit: "%"}})
	for _, b := range batches {
		if err := w.Write(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	checkRollups := func(when string) {
		t.Helper()
		for _, level := range store.Rollups {
			var mismatches int
			err := pool.QueryRow(ctx, fmt.Sprintf(`
WITH raw AS (
  SELECT date_bin('%d seconds', time, '2000-01-03') AS bucket, device, metric, sensor, count(*) c, sum(value) s,
         min(value) mi, max(value) ma, (array_agg(value ORDER BY time DESC))[1] l, max(time) lt
    FROM readings GROUP BY 1, 2, 3, 4)
SELECT count(*) FROM raw FULL JOIN %s r USING (bucket, device, metric, sensor)
 WHERE r.count IS DISTINCT FROM raw.c OR abs(r.sum - raw.s) > 1e-9 OR r.min IS DISTINCT FROM raw.mi
    OR r.max IS DISTINCT FROM raw.ma OR r.last IS DISTINCT FROM raw.l OR r.last_time IS DISTINCT FROM raw.lt`,
				int(level.Width.Seconds()), level.Table)).Scan(&mismatches)
			if err != nil || mismatches != 0 {
				t.Errorf("%s: %s differs from the raw aggregate in %d buckets (err %v)", when, level.Table, mismatches, err)
			}
		}
	}
	checkRollups("after the writer's merges")
	// A foreign writer's row is merged by the trigger; fieldline_refresh_rollups recomputes to the same.
	if _, err := pool.Exec(ctx, `INSERT INTO readings (time, device, metric, sensor, value) VALUES ($1, 'pico', 'temperature', 'dht22', 99)`,
		base.Add(90*time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `SELECT fieldline_refresh_rollups($1, $2)`, base.Add(time.Minute), base.Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	checkRollups("after fieldline_refresh_rollups")
	var unit string
	if err := pool.QueryRow(ctx, "SELECT unit FROM readings WHERE metric='humidity'").Scan(&unit); err != nil || unit != "%" {
		t.Errorf("unit = %q, %v", unit, err)
	}
	// One notification per batch: watermark-only for the big ones, rows for the small one.
	for i, b := range batches {
		nctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		n, err := listener.WaitForNotification(nctx)
		cancel()
		if err != nil {
			t.Fatalf("notification %d: %v", i, err)
		}
		got, err := store.DecodeNotification(n.Payload)
		if err != nil {
			t.Fatal(err)
		}
		if got.N != len(b) {
			t.Errorf("notification %d: n=%d, want %d", i, got.N, len(b))
		}
		if got.HasRows() != (len(b) == 1) {
			t.Errorf("notification %d: rows present=%v for a batch of %d", i, got.HasRows(), len(b))
		}
	}
}

// The optional trigger announces rows other writers INSERT (one notification per statement), and skips the
// ingester's own sessions.
func TestNotifyTriggerForeignWriters(t *testing.T) {
	pool := newPool(t)
	ctx := context.Background()
	info, err := store.Migrate(ctx, pool, store.TimescaleAuto)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.SetNotifyTrigger(ctx, pool, info, true); err != nil {
		t.Fatal(err)
	}
	listener, err := pgx.Connect(ctx, pool.Config().ConnString())
	if err != nil {
		t.Fatal(err)
	}
	defer listener.Close(ctx)
	if _, err := listener.Exec(ctx, "LISTEN "+store.Channel); err != nil {
		t.Fatal(err)
	}
	// The first report's bridge: INSERT INTO readings ... (a foreign writer)
	if _, err := pool.Exec(ctx, `INSERT INTO readings (time, device, metric, sensor, value) VALUES
		(now(), 'pico', 'temperature', 'dht22', 22.4), (now(), 'pico', 'humidity', 'dht22', 39.7)`); err != nil {
		t.Fatal(err)
	}
	nctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	n, err := listener.WaitForNotification(nctx)
	cancel()
	if err != nil {
		t.Fatalf("no notification for a foreign INSERT: %v", err)
	}
	got, err := store.DecodeNotification(n.Payload)
	if err != nil || got.N != 2 || len(got.Rows) != 2 || got.Rows[0].Device != "pico" {
		t.Fatalf("notification %q decoded to %+v, %v", n.Payload, got, err)
	}
	// The ingester's own sessions are marked and skipped by the trigger (they notify per batch themselves).
	wpool, err := pgxpool.NewWithConfig(ctx, func() *pgxpool.Config {
		c := pool.Config().Copy()
		c.AfterConnect = store.WriterSessionSetup
		return c
	}())
	if err != nil {
		t.Fatal(err)
	}
	defer wpool.Close()
	if err := store.NewWriter(wpool, info, false).Write(ctx, []telemetry.Reading{{Time: time.Now(), Device: "pico", Metric: "temperature", Value: 1}}); err != nil {
		t.Fatal(err)
	}
	nctx, cancel = context.WithTimeout(ctx, 500*time.Millisecond)
	n, err = listener.WaitForNotification(nctx)
	cancel()
	if err == nil {
		t.Errorf("trigger notified for the ingester's own write: %q", n.Payload)
	}
	if err := store.SetNotifyTrigger(ctx, pool, info, false); err != nil {
		t.Fatal(err)
	}
}

func TestRollupFor(t *testing.T) {
	for _, c := range []struct {
		interval time.Duration
		want     string
	}{
		{30 * time.Second, ""}, {time.Minute, "readings_1m"}, {2 * time.Minute, "readings_1m"}, {5 * time.Minute, "readings_5m"},
		{10 * time.Minute, "readings_5m"}, {7 * time.Minute, "readings_1m"}, {time.Hour, "readings_1h"}, {24 * time.Hour, "readings_1h"},
		{90 * time.Minute, "readings_5m"}, {90 * time.Second, ""},
	} {
		got := ""
		if r := store.RollupFor(c.interval); r != nil {
			got = r.Table
		}
		if got != c.want {
			t.Errorf("RollupFor(%s) = %q, want %q", c.interval, got, c.want)
		}
	}
}
