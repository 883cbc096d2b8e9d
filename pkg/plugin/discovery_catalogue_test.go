package plugin

import (
	"context"
	"strings"
	"testing"
	"time"
)

// Discovery lists every series ever written (issue 12): also a device whose raw rows are gone (dropped by
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
