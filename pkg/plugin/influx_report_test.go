package plugin

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/data"
	influxdb2 "github.com/influxdata/influxdb-client-go/v2"

	"github.com/fieldline-iot/fieldline/internal/testsvc"
	"github.com/fieldline-iot/fieldline/pkg/frames"
)

// reportInflux is a fresh bucket with the second field report's schema (temperature,node=…,unit=celsius
// value=…; humidity; crc_errors and packets_received) over the last 30 minutes, written as line protocol; it
// returns the bucket and the values written per (measurement, node).
func reportInflux(t testing.TB) (testsvc.Influx, map[string][]float64) {
	t.Helper()
	srv := testsvc.NewInfluxBucket(t)
	c := influxdb2.NewClient(srv.URL, srv.Token)
	t.Cleanup(c.Close)
	w := c.WriteAPIBlocking(srv.Org, srv.Bucket)
	now := time.Now().Truncate(time.Second)
	written := map[string][]float64{}
	var lines []string
	for i := 30; i >= 1; i-- {
		ts := now.Add(-time.Duration(i) * time.Minute).UnixNano()
		for n, node := range []string{"node1", "node2"} {
			temp := 26.5 + float64(n)*0.4 + float64(i%5)*0.1
			hum := 48.8 + float64(n)*5.3 + float64(i%3)
			lines = append(lines,
				fmt.Sprintf("temperature,node=%s,unit=celsius value=%g %d", node, temp, ts),
				fmt.Sprintf("humidity,node=%s,unit=percent value=%g %d", node, hum, ts),
				fmt.Sprintf("crc_errors,node=%s value=%d %d", node, i%4, ts),
				fmt.Sprintf("packets_received,node=%s value=%d %d", node, 100+i, ts))
			written["temperature/"+node] = append(written["temperature/"+node], temp)
		}
	}
	if err := w.WriteRecord(context.Background(), lines...); err != nil {
		t.Fatalf("write the report's lines: %v", err)
	}
	return srv, written
}

// reportQuery is a Flux query of the report, its bucket name replaced by the test's bucket; the report's
// group(key:) is written group(columns:), which current Flux requires.
func reportQuery(q, bucket string) string {
	return strings.ReplaceAll(q, `"telemetry"`, `"`+bucket+`"`)
}

func mean(v []float64) float64 {
	s := 0.0
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}

// TestInfluxReportQueries: the second field report's Flux queries, verbatim, as code Flux against InfluxDB 1.8:
// the both-node panel and the pivot/map error rate as time series; the per-node mean and the alert's 5-minute
// mean (tables without _time) as numeric frames Stat panels and alerting take, or, with format table, as tables.
func TestInfluxReportQueries(t *testing.T) {
	srv, written := reportInflux(t)
	d := newDS(t, settingsFor(t, "", &srv, nil))
	now := time.Now()
	run := func(t *testing.T, flux, format string) data.Frames {
		t.Helper()
		r := runOne(t, d, dq(t, "A", map[string]any{"source": "flux", "mode": "code", "format": format, "flux": reportQuery(flux, srv.Bucket)}, now.Add(-time.Hour), now, time.Minute))
		if r.Error != nil {
			t.Fatalf("%s: %v", flux, r.Error)
		}
		return r.Frames
	}

	t.Run("both nodes", func(t *testing.T) {
		fs := run(t, `from(bucket: "telemetry") |> range(start: -1h) |> filter(fn: (r) => r._measurement == "temperature") |> filter(fn: (r) => r.node == "node1" or r.node == "node2")`, "time_series")
		if len(fs) != 2 || fs[0].Meta.Type != data.FrameTypeTimeSeriesMulti || fs[0].Rows() != 30 {
			t.Fatalf("want 2 series of 30 points, got %d frames (%v rows)", len(fs), fs[0].Rows())
		}
		if fs[0].Fields[1].Labels["node"] == fs[1].Fields[1].Labels["node"] {
			t.Errorf("series not split by node: %v %v", fs[0].Fields[1].Labels, fs[1].Fields[1].Labels)
		}
	})
	t.Run("error rate", func(t *testing.T) {
		fs := run(t, `from(bucket: "telemetry") |> range(start: -1h) |> filter(fn: (r) => r._measurement == "crc_errors" or r._measurement == "packets_received") |> pivot(rowKey:["_time"], columnKey: ["_measurement"], valueColumn: "_value") |> map(fn: (r) => ({ r with error_rate: r.crc_errors / r.packets_received * 100.0 }))`, "time_series")
		found := false
		for _, f := range fs {
			if f.Fields[1].Name == "error_rate" && f.Rows() == 30 {
				found = true
			}
		}
		if !found {
			t.Fatalf("no error_rate series of 30 points among %d frames", len(fs))
		}
	})
	perNode := `from(bucket: "telemetry")
|> range(start: -1h)
|> filter(fn: (r) => r._measurement == "temperature")
|> group(columns: ["node"]) // ← Group by tag
|> mean()`
	t.Run("per-node mean", func(t *testing.T) {
		fs := run(t, perNode, "time_series")
		if len(fs) != 2 {
			t.Fatalf("want 2 numeric frames, got %d", len(fs))
		}
		for _, f := range fs {
			if f.Meta.Type != data.FrameTypeNumericMulti || len(f.Fields) != 1 || f.Rows() != 1 {
				t.Fatalf("frame %q: type %s, %d fields, %d rows; want numeric-multi with one value", f.Name, f.Meta.Type, len(f.Fields), f.Rows())
			}
			node := f.Fields[0].Labels["node"]
			v, _ := f.Fields[0].FloatAt(0)
			if want := mean(written["temperature/"+node]); math.Abs(v-want) > 1e-9 {
				t.Errorf("%s: mean %v, want %v", node, v, want)
			}
		}
	})
	t.Run("per-node mean as a table", func(t *testing.T) {
		fs := run(t, perNode, "table")
		rows := 0
		for _, f := range fs {
			if f.Meta.Type != data.FrameTypeTable {
				t.Fatalf("format table: frame type %s", f.Meta.Type)
			}
			rows += f.Rows()
			if idx, _ := f.FieldByName("node"); idx == nil {
				t.Errorf("table has no node column")
			}
		}
		if rows != 2 {
			t.Errorf("want 2 rows, got %d", rows)
		}
	})
	t.Run("alert mean", func(t *testing.T) {
		fs := run(t, `from(bucket: "telemetry")
|> range(start: -5m)
|> filter(fn: (r) => r._measurement == "temperature")
|> filter(fn: (r) => r.node == "node1")
|> mean()
|> yield(name: "mean_temp")`, "time_series")
		if len(fs) != 1 || fs[0].Meta.Type != data.FrameTypeNumericMulti || fs[0].Rows() != 1 {
			t.Fatalf("want one numeric frame, got %d frames", len(fs))
		}
		v, _ := fs[0].Fields[0].FloatAt(0)
		last := written["temperature/node1"]
		if want := mean(last[len(last)-4:]); math.Abs(v-want) > 1e-9 && math.Abs(v-mean(last[len(last)-5:])) > 1e-9 {
			t.Errorf("mean of the last 5 minutes: %v, want %v", v, want)
		}
	})
}

// TestInfluxReportBuilder: with the device tag mapped to the report's node (no sensor tag), the Flux builder keeps
// node1 and node2 apart, filters by node, and variables and pickers list the nodes.
func TestInfluxReportBuilder(t *testing.T) {
	srv, written := reportInflux(t)
	d := newDS(t, settingsFor(t, "", &srv, map[string]any{"influx": map[string]any{"url": srv.URL, "org": srv.Org, "bucket": srv.Bucket, "deviceTag": "node"}}))
	now := time.Now()
	all := runOne(t, d, dq(t, "A", map[string]any{"source": "flux", "metric": "temperature", "aggregation": "avg", "interval": "1h"}, now.Add(-2*time.Hour), now, time.Minute))
	if all.Error != nil {
		t.Fatal(all.Error)
	}
	series := seriesOf(t, all.Frames)
	if len(series) != 2 {
		t.Fatalf("all devices: want node1 and node2 apart, got %v", keysOf(series))
	}
	raw := runOne(t, d, dq(t, "A", map[string]any{"source": "flux", "metric": "temperature", "device": "node1", "aggregation": "none"}, now.Add(-2*time.Hour), now, time.Minute))
	if raw.Error != nil {
		t.Fatal(raw.Error)
	}
	got := seriesOf(t, raw.Frames)
	pts := got[labelsKey(frames.SeriesLabels("node1", ""))]
	if len(got) != 1 || len(pts) != len(written["temperature/node1"]) {
		t.Fatalf("device node1: want %d rows of node1, got %v", len(written["temperature/node1"]), keysOf(got))
	}
	for i, p := range pts {
		if *p.v != written["temperature/node1"][i] {
			t.Errorf("row %d: %v, want %v", i, *p.v, written["temperature/node1"][i])
		}
	}
	v := runOne(t, d, dq(t, "V", map[string]any{"source": "flux", "variable": "devices", "metric": "temperature"}, now.Add(-time.Hour), now, time.Minute))
	if v.Error != nil || v.Frames[0].Rows() != 2 || v.Frames[0].Fields[0].At(0) != "node1" {
		t.Fatalf("devices variable: %v %v", v.Error, v.Frames)
	}
	srvURL := resourceServer(t, d)
	if body, status := get(t, srvURL+"/devices?source=flux&metric=humidity"); status != 200 || strings.TrimSpace(body) != `["node1","node2"]` {
		t.Errorf("/devices: %d %s", status, body)
	}
}

// TestInfluxLabelTags: series that differ only in a further tag (location) stay apart, with that tag as a
// label, when the data source names it among influx.labelTags; without it they merge, as documented.
func TestInfluxLabelTags(t *testing.T) {
	srv := testsvc.NewInfluxBucket(t)
	c := influxdb2.NewClient(srv.URL, srv.Token)
	t.Cleanup(c.Close)
	now := time.Now().Truncate(time.Second)
	var lines []string
	for i := 1; i <= 10; i++ {
		ts := now.Add(-time.Duration(i) * time.Minute).UnixNano()
		lines = append(lines,
			fmt.Sprintf("temperature,node=node3,unit=celsius,location=lab value=%d %d", 20+i, ts),
			fmt.Sprintf("temperature,node=node3,unit=celsius,location=field value=%d %d", 30+i, ts))
	}
	if err := c.WriteAPIBlocking(srv.Org, srv.Bucket).WriteRecord(context.Background(), lines...); err != nil {
		t.Fatal(err)
	}
	query := func(extra map[string]any) data.Frames {
		influx := map[string]any{"url": srv.URL, "org": srv.Org, "bucket": srv.Bucket, "deviceTag": "node"}
		for k, v := range extra {
			influx[k] = v
		}
		d := newDS(t, settingsFor(t, "", &srv, map[string]any{"influx": influx}))
		r := runOne(t, d, dq(t, "A", map[string]any{"source": "flux", "metric": "temperature", "aggregation": "none"}, now.Add(-time.Hour), now, time.Minute))
		if r.Error != nil {
			t.Fatal(r.Error)
		}
		return r.Frames
	}
	if merged := query(nil); len(merged) != 1 || merged[0].Rows() != 20 {
		t.Fatalf("without label tags: want the documented merge into 1 series of 20 rows, got %d frames", len(merged))
	}
	got := seriesOf(t, query(map[string]any{"labelTags": []string{"location"}}))
	if len(got) != 2 {
		t.Fatalf("with labelTags [location]: want 2 series, got %v", keysOf(got))
	}
	for key, pts := range got {
		if !strings.Contains(key, "location=") || len(pts) != 10 {
			t.Errorf("series %s: %d points", key, len(pts))
		}
	}
}
