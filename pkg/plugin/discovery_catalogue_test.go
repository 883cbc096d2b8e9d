package plugin

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/fieldline-iot/fieldline/internal/store"
	"github.com/fieldline-iot/fieldline/internal/telemetry"
)

// Discovery lists every series ever written: also a device whose raw rows are gone (dropped by
// retention, or in TimescaleDB chunks older than the old 7-day window), and one another program INSERTed.
func TestDiscoveryCoversEverySeriesEverWritten(t *testing.T) {
	pgURL, pool := newPostgres(t, dataset())
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `INSERT INTO readings (time, device, metric, sensor, value) VALUES ($1, 'bridge-3', 'pressure', 'bmp280', 1013.2)`,
		base.Add(-90*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `DELETE FROM readings WHERE device = 'node1'`); err != nil {
		t.Fatal(err)
	}
	d := newDS(t, settingsFor(t, pgURL, nil, nil))
	srv := resourceServer(t, d)
	cases := map[string]string{
		"/devices":                     `["bridge-3","node1","pico"]`,
		"/metrics":                     `["humidity","pressure","temperature"]`,
		"/metrics?device=node1":        `["temperature"]`,
		"/sensors?metric=pressure":     `["bmp280"]`,
		"/devices?metric=temperature":  `["node1","pico"]`,
		"/devices?metric=x' OR '1'='1": `[]`,
	}
	for path, want := range cases {
		body, status := get(t, srv+strings.ReplaceAll(path, " ", "%20"))
		if status != 200 || strings.TrimSpace(body) != want {
			t.Errorf("%s: %d %s, want %s", path, status, body, want)
		}
	}
}

// The field report behind the catalogue: rows 1 and 2 days old, from the ingester's writer and from another program's
// INSERT, after recent rows were rolled up, are all counted by the aggregated builder queries at every level.
func TestAggregatesCountLateRowsFromEveryWriter(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Minute)
	var rows []telemetry.Reading
	for i := range 600 {
		rows = append(rows, telemetry.Reading{Time: now.Add(-time.Duration(i) * 10 * time.Second), Device: "pico", Metric: "temperature", Value: 20})
	}
	pgURL, pool := newPostgres(t, rows)
	ctx := context.Background()
	info, err := store.Migrate(ctx, pool, store.TimescaleAuto)
	if err != nil {
		t.Fatal(err)
	}
	var late []telemetry.Reading
	for i := range 20 {
		late = append(late, telemetry.Reading{Time: now.Add(-time.Duration(24*(1+i%2))*time.Hour - time.Duration(i)*time.Minute), Device: "pico", Metric: "temperature", Value: 1})
	}
	if err := store.NewWriter(pool, info, false).Write(ctx, late); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if _, err := pool.Exec(ctx, `INSERT INTO readings (time, device, metric, sensor, value) VALUES ($1, 'bridge', 'temperature', '', 2)`,
			now.Add(-36*time.Hour-time.Duration(i)*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	d := newDS(t, settingsFor(t, pgURL, nil, nil))
	from, to := now.Add(-3*24*time.Hour), now.Add(-6*time.Hour)
	for _, interval := range []string{"1m", "5m", "1h"} {
		r := runOne(t, d, dq(t, "A", map[string]any{"source": "sql", "mode": "builder", "metric": "temperature", "aggregation": "count", "interval": interval}, from, to, time.Minute))
		if r.Error != nil {
			t.Fatal(r.Error)
		}
		var n float64
		for _, f := range r.Frames {
			if !strings.Contains(f.Meta.ExecutedQueryString, "readings_") {
				t.Errorf("%s: not served from a rollup: %s", interval, f.Meta.ExecutedQueryString)
			}
			for i := 0; i < f.Rows(); i++ {
				if v, ok := f.Fields[1].ConcreteAt(i); ok {
					n += v.(float64)
				}
			}
		}
		if n != 30 {
			t.Errorf("count at %s over 3 days: %v of 30 late readings", interval, n)
		}
	}
}
