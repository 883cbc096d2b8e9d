package plugin

import (
	"context"
	"encoding/json"
	"flag"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/data"
	influxdb2 "github.com/influxdata/influxdb-client-go/v2"
	"github.com/influxdata/influxdb-client-go/v2/api/write"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fieldline-iot/fieldline/internal/store"
	"github.com/fieldline-iot/fieldline/internal/telemetry"
	"github.com/fieldline-iot/fieldline/internal/testsvc"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// base is the start of the test dataset.
var base = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// testSeries are the dataset's series: two with a sensor, one without (iiot-style), plus a second metric that
// must never leak into temperature queries.
var testSeries = []struct{ device, metric, sensor string }{
	{"pico", "temperature", "dht22"},
	{"pico", "temperature", "internal"},
	{"node1", "temperature", ""},
	{"pico", "humidity", "dht22"},
}

// dataset returns two hours of 10-second readings per series, with a 7-minute gap in pico/internal
// (00:20–00:27) so fill modes have something to fill. Values are deterministic with fractional parts.
func dataset() []telemetry.Reading {
	var out []telemetry.Reading
	for si, s := range testSeries {
		for i := 0; i < 720; i++ {
			t := base.Add(time.Duration(i) * 10 * time.Second)
			if s.sensor == "internal" && t.After(base.Add(20*time.Minute)) && t.Before(base.Add(27*time.Minute)) {
				continue
			}
			v := 20 + float64(si)*3.25 + 5*math.Sin(float64(i)/17) + float64(i%7)*0.125
			unit := ""
			if s.metric == "temperature" {
				unit = "°C"
			}
			out = append(out, telemetry.Reading{Time: t, Device: s.device, Metric: s.metric, Sensor: s.sensor, Unit: unit, Value: v})
		}
	}
	return out
}

// newPostgres creates a fresh database with the schema and, when rows is non-nil, writes them with the
// project's writer in batches. It returns the database URL and a pool with full rights (for checks).
func newPostgres(t testing.TB, rows []telemetry.Reading) (string, *pgxpool.Pool) {
	t.Helper()
	dbURL := testsvc.NewPostgresDB(t)
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(pool.Close)
	info, err := store.Migrate(ctx, pool, store.TimescaleAuto)
	if err != nil {
		t.Fatalf("migrate: %v", err)
	}
	w := store.NewWriter(pool, info, false)
	for len(rows) > 0 {
		n := min(len(rows), 500)
		if err := w.Write(ctx, rows[:n]); err != nil {
			t.Fatalf("write readings: %v", err)
		}
		rows = rows[n:]
	}
	return dbURL, pool
}

// newInflux creates a fresh bucket holding rows (measurement = metric, tags device/sensor/unit, field value).
func newInflux(t testing.TB, rows []telemetry.Reading) testsvc.Influx {
	t.Helper()
	srv := testsvc.NewInfluxBucket(t)
	c := influxdb2.NewClient(srv.URL, srv.Token)
	t.Cleanup(c.Close)
	w := c.WriteAPIBlocking(srv.Org, srv.Bucket)
	points := make([]*write.Point, 0, len(rows))
	for _, r := range rows {
		tags := map[string]string{"device": r.Device}
		if r.Sensor != "" {
			tags["sensor"] = r.Sensor
		}
		if r.Unit != "" {
			tags["unit"] = r.Unit
		}
		points = append(points, influxdb2.NewPoint(r.Metric, tags, map[string]any{"value": r.Value}, r.Time))
	}
	for len(points) > 0 {
		n := min(len(points), 2000)
		if err := w.WritePoint(context.Background(), points[:n]...); err != nil {
			t.Fatalf("write points: %v", err)
		}
		points = points[n:]
	}
	return srv
}

// settingsJSON builds jsonData and secureJsonData for a PostgreSQL URL and an InfluxDB bucket (either may be
// empty), merged with extra jsonData keys.
func settingsFor(t testing.TB, pgURL string, influx *testsvc.Influx, extra map[string]any) backend.DataSourceInstanceSettings {
	t.Helper()
	j := map[string]any{}
	secure := map[string]string{}
	if pgURL != "" {
		u, err := url.Parse(pgURL)
		if err != nil {
			t.Fatal(err)
		}
		pw, _ := u.User.Password()
		pg := map[string]any{"host": u.Host, "database": strings.TrimPrefix(u.Path, "/"), "user": u.User.Username(), "sslMode": "disable"}
		if e, ok := extra["postgres"].(map[string]any); ok {
			for k, v := range e {
				pg[k] = v
			}
		}
		j["postgres"] = pg
		secure["postgresPassword"] = pw
	}
	if influx != nil {
		j["influx"] = map[string]any{"url": influx.URL, "org": influx.Org, "bucket": influx.Bucket}
		if influx.Token != "" {
			secure["influxToken"] = influx.Token
		}
	}
	for k, v := range extra {
		if k != "postgres" {
			j[k] = v
		}
	}
	raw, err := json.Marshal(j)
	if err != nil {
		t.Fatal(err)
	}
	return backend.DataSourceInstanceSettings{ID: 1, UID: "fieldline-test", Name: "Fieldline", JSONData: raw, DecryptedSecureJSONData: secure, Updated: time.Now()}
}

// newDS creates an instance and disposes it at cleanup.
func newDS(t testing.TB, s backend.DataSourceInstanceSettings) *Datasource {
	t.Helper()
	inst, err := NewDatasource(context.Background(), s)
	if err != nil {
		t.Fatalf("NewDatasource: %v", err)
	}
	d := inst.(*Datasource)
	t.Cleanup(d.Dispose)
	return d
}

// dq builds a DataQuery from a query-model map.
func dq(t testing.TB, refID string, model map[string]any, from, to time.Time, interval time.Duration) backend.DataQuery {
	t.Helper()
	model["refId"] = refID
	raw, err := json.Marshal(model)
	if err != nil {
		t.Fatal(err)
	}
	return backend.DataQuery{RefID: refID, JSON: raw, TimeRange: backend.TimeRange{From: from, To: to}, Interval: interval, MaxDataPoints: 1000}
}

// runOne runs one query and returns its response.
func runOne(t testing.TB, d *Datasource, q backend.DataQuery) backend.DataResponse {
	t.Helper()
	resp, err := d.QueryData(context.Background(), &backend.QueryDataRequest{Queries: []backend.DataQuery{q}})
	if err != nil {
		t.Fatalf("QueryData: %v", err)
	}
	return resp.Responses[q.RefID]
}

// point is one (time, value) of a series, for comparisons.
type point struct {
	t time.Time
	v *float64
}

// seriesOf flattens time-series frames into labels → points, checking the dataplane shape on the way: a
// time-series-multi frame has one time field and one numeric field; a time-series-wide frame (the only typed
// frame of its response) has one time field, then numeric fields that each carry their series' labels; time
// ascending without duplicates. Both shapes of the same answer give the same map.
func seriesOf(t testing.TB, frames data.Frames) map[string][]point {
	t.Helper()
	out := map[string][]point{}
	for _, f := range frames {
		if len(f.Fields) == 0 {
			continue
		}
		if f.Meta == nil {
			t.Fatalf("frame %q: no type", f.Name)
		}
		switch f.Meta.Type {
		case data.FrameTypeTimeSeriesMulti:
			if len(f.Fields) != 2 || f.Fields[0].Type() != data.FieldTypeTime || !f.Fields[1].Type().Numeric() {
				t.Fatalf("frame %q: want [time, number] fields, got %d fields", f.Name, len(f.Fields))
			}
		case data.FrameTypeTimeSeriesWide:
			if len(frames) != 1 {
				t.Fatalf("a time-series-wide answer is one frame, got %d", len(frames))
			}
			if len(f.Fields) < 2 || f.Fields[0].Type() != data.FieldTypeTime {
				t.Fatalf("frame %q: want [time, number...] fields, got %d fields", f.Name, len(f.Fields))
			}
			for _, vf := range f.Fields[1:] {
				if !vf.Type().Numeric() || len(vf.Labels) == 0 {
					t.Fatalf("frame %q: value field %q: type %s, labels %v (want a number with its series' labels)", f.Name, vf.Name, vf.Type(), vf.Labels)
				}
			}
		default:
			t.Fatalf("frame %q: type %v, want %s or %s", f.Name, f.Meta.Type, data.FrameTypeTimeSeriesMulti, data.FrameTypeTimeSeriesWide)
		}
		for _, vf := range f.Fields[1:] {
			key := labelsKey(vf.Labels)
			if _, dup := out[key]; dup {
				t.Fatalf("two value fields for series %s", key)
			}
			pts := make([]point, 0, f.Rows())
			for i := 0; i < f.Rows(); i++ {
				tm := f.Fields[0].At(i).(time.Time)
				if i > 0 && !tm.After(pts[i-1].t) {
					t.Fatalf("series %s: time not ascending at row %d", key, i)
				}
				v, err := vf.NullableFloatAt(i)
				if err != nil {
					t.Fatal(err)
				}
				pts = append(pts, point{tm.UTC(), v})
			}
			out[key] = pts
		}
	}
	return out
}

// sameSeries compares two series sets within a relative tolerance.
func sameSeries(t testing.TB, what string, want, got map[string][]point, rel float64) {
	t.Helper()
	keys := func(m map[string][]point) []string {
		var k []string
		for s := range m {
			k = append(k, s)
		}
		sort.Strings(k)
		return k
	}
	if strings.Join(keys(want), " | ") != strings.Join(keys(got), " | ") {
		t.Fatalf("%s: series differ:\nwant %v\ngot  %v", what, keys(want), keys(got))
	}
	for k, wp := range want {
		gp := got[k]
		if len(wp) != len(gp) {
			t.Fatalf("%s: series %s: %d points, want %d", what, k, len(gp), len(wp))
		}
		for i := range wp {
			if !wp[i].t.Equal(gp[i].t) {
				t.Fatalf("%s: series %s point %d: time %s, want %s", what, k, i, gp[i].t, wp[i].t)
			}
			if (wp[i].v == nil) != (gp[i].v == nil) {
				t.Fatalf("%s: series %s point %d: null mismatch", what, k, i)
			}
			if wp[i].v == nil {
				continue
			}
			a, b := *wp[i].v, *gp[i].v
			if d := math.Abs(a - b); d > rel*math.Max(math.Abs(a), math.Abs(b)) && d > 1e-12 {
				t.Fatalf("%s: series %s at %s: %v, want %v", what, k, wp[i].t, b, a)
			}
		}
	}
}

func newTestHTTPServer(t testing.TB, h http.HandlerFunc) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// labelsKey renders labels as a stable string.
func labelsKey(l data.Labels) string {
	keys := make([]string, 0, len(l))
	for k := range l {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(k + "=" + l[k])
	}
	return b.String()
}
