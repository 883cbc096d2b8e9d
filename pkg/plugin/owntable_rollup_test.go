package plugin

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"

	"github.com/fieldline-iot/fieldline/internal/store"
	"github.com/fieldline-iot/fieldline/internal/tablemap"
)

// TestOwnTableRollups: rollups installed on the first report's own readings(ts, topic, value) (what
// `fieldline-ingester rollups install` runs) serve the data source's aggregated queries with the answers the
// table's rows give; rows the report's bridge INSERTs afterwards, late ones included, are in them at commit (the
// report's own NOTIFY trigger keeps working beside ours); a data source with another mapping of the table does not
// read them; removing them goes back to the table's rows.
func TestOwnTableRollups(t *testing.T) {
	pool, s := reportDB(t, nil)
	ctx := context.Background()
	start := time.Now().UTC().Truncate(time.Hour).Add(-3 * time.Hour)
	for i := range 3 * 360 { // 3 hours at 10 s
		ts := start.Add(time.Duration(i) * 10 * time.Second)
		insertAt(t, pool, ts, "pico/temperature/dht22", 20+float64(i%17)*0.5)
		insertAt(t, pool, ts, "node2/temperature/ds18b20", 10+float64(i%11))
	}
	insertAt(t, pool, start, "pico/status", 1) // not a reading of the template: not rolled up
	from, to := start, start.Add(3*time.Hour)
	queries := []struct{ agg, interval string }{{"avg", "1m"}, {"max", "10m"}, {"count", "1h"}, {"last", "5m"}, {"sum", "2h"}}
	answer := func(d *Datasource, agg, interval string) (map[string][]point, string) {
		t.Helper()
		r := runOne(t, d, dq(t, "A", map[string]any{"source": "sql", "metric": "temperature", "aggregation": agg, "interval": interval}, from, to, time.Minute))
		if r.Error != nil {
			t.Fatalf("%s %s: %v", agg, interval, r.Error)
		}
		return seriesOf(t, r.Frames), r.Frames[0].Meta.ExecutedQueryString
	}
	before := map[string]map[string][]point{}
	d := newDS(t, s)
	for _, q := range queries {
		got, sql := answer(d, q.agg, q.interval)
		if strings.Contains(sql, "_fl_") {
			t.Fatalf("rollups read before they were installed: %s", sql)
		}
		before[q.agg+q.interval] = got
	}

	table, _, err := tablemap.ParseJSON([]byte(`{"name":"readings","timeColumn":"ts","valueColumn":"value","topicColumn":"topic","topicTemplate":"{device}/{metric}/{sensor}","notifyChannel":"new_reading"}`))
	if err != nil {
		t.Fatal(err)
	}
	_, rows, err := store.InstallTableRollups(ctx, pool, table, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rows != 2*3*360 {
		t.Errorf("rolled up %d rows, want %d (pico/status is not a reading)", rows, 2*3*360)
	}
	d = newDS(t, s) // a new instance looks the rollups up at once (an old one within a minute)
	for _, q := range queries {
		got, sql := answer(d, q.agg, q.interval)
		if q.interval != "2h" && !strings.Contains(sql, "readings_fl_") {
			t.Errorf("%s %s: not served from the rollups: %s", q.agg, q.interval, sql)
		}
		sameSeries(t, q.agg+" "+q.interval+" from the rollups", before[q.agg+q.interval], got, 1e-9)
	}

	// The bridge keeps inserting, one row per statement; a late row lands in an old bucket.
	listener, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer listener.Release()
	if _, err := listener.Exec(ctx, "LISTEN new_reading"); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, reportBridgeInsert, "pico/temperature/dht22", 99.5); err != nil {
		t.Fatal(err)
	}
	insertAt(t, pool, start.Add(30*time.Second), "pico/temperature/dht22", -40)
	nctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := listener.Conn().WaitForNotification(nctx); err != nil {
		t.Errorf("the report's own trigger no longer notifies: %v", err)
	}
	var minute, raw float64
	err = pool.QueryRow(ctx, `SELECT (SELECT min FROM readings_fl_1m WHERE device = 'pico' AND bucket = $1),
		(SELECT min(value) FROM readings WHERE topic = 'pico/temperature/dht22' AND ts >= $1 AND ts < $1 + interval '1 minute')`, start).Scan(&minute, &raw)
	if err != nil || minute != -40 || raw != -40 {
		t.Errorf("late row: rollup min %v, table min %v (err %v), want -40", minute, raw, err)
	}
	var now int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM readings_fl_1m WHERE device = 'pico' AND last = 99.5").Scan(&now); err != nil || now != 1 {
		t.Errorf("the bridge's row is in %d 1-minute rollup rows (err %v), want 1", now, err)
	}

	// Another mapping of the same table (sensor from a column that does not exist in the rollups' mapping): its
	// relation differs, so it reads the table's rows.
	other := backend.DataSourceInstanceSettings{UID: s.UID + "-other", JSONData: []byte(strings.Replace(string(s.JSONData),
		`"topicTemplate":"{device}/{metric}/{sensor}"`, `"topicTemplate":"{device}/{metric}/+","sensorColumn":"topic"`, 1)),
		DecryptedSecureJSONData: s.DecryptedSecureJSONData, URL: s.URL, User: s.User, Database: s.Database}
	if string(other.JSONData) == string(s.JSONData) {
		t.Fatalf("the other mapping is the same: %s", s.JSONData)
	}
	if _, sql := answer(newDS(t, other), "avg", "1m"); strings.Contains(sql, "_fl_") {
		t.Errorf("a data source with another mapping read the rollups: %s", sql)
	}

	if err := store.RemoveTableRollups(ctx, pool, table); err != nil {
		t.Fatal(err)
	}
	if _, sql := answer(newDS(t, s), "avg", "1m"); strings.Contains(sql, "_fl_") {
		t.Errorf("rollups read after removal: %s", sql)
	}
	var triggers int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'readings'::regclass AND NOT tgisinternal").Scan(&triggers); err != nil || triggers != 1 {
		t.Errorf("after removal the table has %d triggers (err %v), want the report's own one", triggers, err)
	}
}
