package store_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fieldline-iot/fieldline/internal/store"
	"github.com/fieldline-iot/fieldline/internal/telemetry"
)

// A batch mixing numbers and states: numbers go to readings (and the rollups) and are announced on Channel,
// states go to states and are announced on StatesChannel, in one transaction; a state's text arrives intact
// (quotes, backslashes, non-ASCII) in the notification and in the table.
func TestWriterStates(t *testing.T) {
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
	for _, ch := range []string{store.Channel, store.StatesChannel} {
		if _, err := listener.Exec(ctx, "LISTEN "+ch); err != nil {
			t.Fatal(err)
		}
	}
	base := time.Date(2026, 12, 4, 14, 0, 0, 0, time.UTC)
	odd := `fw "1.4" \ héllo`
	batch := []telemetry.Reading{
		{Time: base, Device: "pico", Metric: "temperature", Sensor: "dht22", Value: 22.4},
		{Time: base.Add(time.Second), Device: "pico", Metric: "status", Kind: telemetry.KindText, Text: "online"},
		{Time: base.Add(2 * time.Second), Device: "node2", Metric: "relay", Sensor: "r1", Kind: telemetry.KindBool, Text: "true", Value: 1},
		{Time: base.Add(3 * time.Second), Device: "pico", Metric: "version", Kind: telemetry.KindText, Text: odd},
		{Time: base.Add(4 * time.Second), Device: "pico", Metric: "temperature", Sensor: "dht22", Value: 22.5},
	}
	if err := store.NewWriter(pool, info, true).Write(ctx, batch); err != nil {
		t.Fatal(err)
	}
	var readings, rollup int
	if err := pool.QueryRow(ctx, "SELECT (SELECT count(*) FROM readings), (SELECT coalesce(sum(count), 0) FROM readings_1m)").Scan(&readings, &rollup); err != nil {
		t.Fatal(err)
	}
	if readings != 2 || rollup != 2 {
		t.Errorf("readings %d, rolled up %d; want the 2 numbers only", readings, rollup)
	}
	rows, err := pool.Query(ctx, "SELECT time, device, metric, sensor, value, kind FROM states ORDER BY time")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var tm time.Time
		var d, m, s, v, k string
		if err := rows.Scan(&tm, &d, &m, &s, &v, &k); err != nil {
			t.Fatal(err)
		}
		got = append(got, strings.Join([]string{tm.UTC().Format(time.TimeOnly), d, m, s, v, k}, "|"))
	}
	want := []string{"14:00:01|pico|status||online|text", "14:00:02|node2|relay|r1|true|bool", "14:00:03|pico|version||" + odd + "|text"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("states table:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	seen := map[string]store.Notification{}
	for len(seen) < 2 {
		nctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		n, err := listener.WaitForNotification(nctx)
		cancel()
		if err != nil {
			t.Fatalf("notifications so far %v: %v", seen, err)
		}
		dec, err := store.DecodeNotification(n.Payload)
		if err != nil {
			t.Fatalf("%s: %v (%s)", n.Channel, err, n.Payload)
		}
		seen[n.Channel] = dec
	}
	if n := seen[store.Channel]; n.N != 2 || len(n.Rows) != 2 || n.Rows[0].IsState() {
		t.Errorf("readings notification: %+v", n)
	}
	st := seen[store.StatesChannel]
	if st.N != 3 || len(st.Rows) != 3 {
		t.Fatalf("states notification: %+v", st)
	}
	for i, r := range st.Rows {
		w := batch[i+1]
		if r.Kind != w.Kind || r.Text != w.Text || r.Device != w.Device || r.Metric != w.Metric || r.Sensor != w.Sensor || !r.Time.Equal(w.Time) {
			t.Errorf("state row %d: %+v, want %+v", i, r, w)
		}
	}
}
