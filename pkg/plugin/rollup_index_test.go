package plugin

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/fieldline-iot/fieldline/internal/telemetry"
	"github.com/fieldline-iot/fieldline/pkg/sqlquery"
)

// TestRollupReadIsIndexOnly: an aggregated query over every series of a metric reads its rollup by an
// index-only scan (migration 12's covering index), so PostgreSQL does not fetch a heap tuple per bucket and
// series. The planner is told to avoid sequential and bitmap scans (a test table is small enough for either),
// so the plan shows which index reads it and whether the heap is needed.
func TestRollupReadIsIndexOnly(t *testing.T) {
	db := newLiveDB(t)
	ctx := context.Background()
	end := time.Now().UTC().Truncate(time.Hour)
	// Two days of one reading a minute for 10 series: enough rollup rows that reading them in index order beats
	// sorting them, as on a real database.
	var rows []telemetry.Reading
	for m := range 2 * 24 * 60 {
		for d := range 10 {
			rows = append(rows, reading(string(rune('a'+d)), "s", end.Add(-time.Duration(m+1)*time.Minute), float64(m)))
		}
		if len(rows) >= 5000 {
			db.write(t, rows...)
			rows = rows[:0]
		}
	}
	db.write(t, rows...)
	for _, table := range []string{"readings_1m", "readings_5m", "readings_1h"} {
		if _, err := db.pool.Exec(ctx, "VACUUM ANALYZE "+table); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		interval time.Duration
		index    string
	}{
		{time.Minute, "readings_1m_metric_bucket_cover"},
		{10 * time.Minute, "readings_5m_metric_bucket_cover"},
		{2 * time.Hour, "readings_1h_metric_bucket_cover"},
	} {
		st, err := sqlquery.Build(sqlquery.Request{Metric: "temperature", Aggregation: sqlquery.Avg, Interval: c.interval,
			From: end.Add(-48 * time.Hour), To: end, Limit: 100_000}, sqlquery.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if !st.Rollup {
			t.Fatalf("%v: the statement does not read a rollup: %s", c.interval, st.SQL)
		}
		conn, err := db.pool.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var plan []byte
		func() {
			defer conn.Release()
			tx, err := conn.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = tx.Rollback(ctx) }()
			for _, set := range []string{"SET LOCAL enable_seqscan = off", "SET LOCAL enable_bitmapscan = off"} {
				if _, err := tx.Exec(ctx, set); err != nil {
					t.Fatal(err)
				}
			}
			if err := tx.QueryRow(ctx, "EXPLAIN (FORMAT JSON) "+st.SQL, st.Args...).Scan(&plan); err != nil {
				t.Fatalf("%v: EXPLAIN: %v", c.interval, err)
			}
		}()
		var nodes []struct {
			Plan json.RawMessage `json:"Plan"`
		}
		if err := json.Unmarshal(plan, &nodes); err != nil || len(nodes) != 1 {
			t.Fatalf("plan: %v %s", err, plan)
		}
		p := string(nodes[0].Plan)
		if !strings.Contains(p, `"Node Type": "Index Only Scan"`) || !strings.Contains(p, `"Index Name": "`+c.index+`"`) {
			t.Errorf("%v: want an index-only scan of %s, plan: %s", c.interval, c.index, p)
		}
	}
}
