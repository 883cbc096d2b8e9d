package plugin

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/data"
)

// TestInfluxQL: code InfluxQL against InfluxDB 1.8 with the second report's schema: Grafana's $timeFilter and
// $__interval, GROUP BY a tag into labelled series, SHOW as a table, and writes refused before they reach the
// server (the data is still there afterwards).
func TestInfluxQL(t *testing.T) {
	srv, written := reportInflux(t)
	d := newDS(t, settingsFor(t, "", &srv, nil))
	now := time.Now()
	run := func(q, format string) (data.Frames, error) {
		r := runOne(t, d, dq(t, "A", map[string]any{"source": "influxql", "influxql": q, "format": format}, now.Add(-time.Hour), now, time.Hour))
		return r.Frames, r.Error
	}
	fs, err := run(`SELECT mean("value") FROM "temperature" WHERE $timeFilter GROUP BY time($__interval), "node" fill(none)`, "time_series")
	if err != nil {
		t.Fatal(err)
	}
	if len(fs) != 2 || fs[0].Meta.Type != data.FrameTypeTimeSeriesMulti {
		t.Fatalf("want 2 series, got %d frames", len(fs))
	}
	for _, f := range fs {
		node := f.Fields[1].Labels["node"]
		sum := 0.0
		n := 0
		for i := 0; i < f.Rows(); i++ {
			v, _ := f.Fields[1].FloatAt(i)
			sum += v // one-hour buckets: at most two per series over the last hour
			n++
		}
		if node == "" || f.Fields[1].Name != "temperature.mean" || n == 0 || n > 2 {
			t.Fatalf("series %q: field %q, %d buckets", node, f.Fields[1].Name, n)
		}
		if n == 1 && math.Abs(sum-mean(written["temperature/"+node])) > 1e-9 {
			t.Errorf("%s: mean %v, want %v", node, sum, mean(written["temperature/"+node]))
		}
	}
	fs, err = run(`SHOW TAG VALUES FROM "temperature" WITH KEY = "node"`, "time_series")
	if err != nil {
		t.Fatal(err)
	}
	if fs[0].Meta.Type != data.FrameTypeTable || fs[0].Rows() != 2 {
		t.Fatalf("SHOW TAG VALUES: %s with %d rows", fs[0].Meta.Type, fs[0].Rows())
	}
	for _, bad := range []string{
		`SELECT * INTO "copy" FROM "temperature"`,
		`DROP MEASUREMENT "temperature"`,
		`SHOW DATABASES; DROP DATABASE "` + srv.Bucket + `"`,
		`DELETE FROM "temperature"`,
	} {
		if _, err := run(bad, "table"); err == nil || !strings.Contains(err.Error(), "only") {
			t.Errorf("%q: %v", bad, err)
		}
	}
	fs, err = run(`SELECT count("value") FROM "temperature" WHERE $timeFilter`, "table")
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := fs[0].Fields[1].FloatAt(0); v != float64(len(written["temperature/node1"])*2) {
		t.Errorf("after the refused writes the data changed: count %v", v)
	}
	if _, err := run(`SELECT nope( FROM`, "table"); err == nil || !strings.Contains(err.Error(), "InfluxQL") {
		t.Errorf("a syntax error should come back from InfluxDB: %v", err)
	}
}
