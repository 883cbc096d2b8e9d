package plugin

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/experimental"
)

// TestSameSeriesFromEveryPath writes one dataset with store.Writer (PostgreSQL) and the InfluxDB write API,
// then checks that builder SQL (rollup and raw paths), code SQL with macros, builder Flux and code Flux return
// the same series, times and values (relative 1e-9), for every aggregation and for raw rows. Golden files pin
// the frame shapes (regenerate with go test ./pkg/plugin -run TestSameSeriesFromEveryPath -update).
func TestSameSeriesFromEveryPath(t *testing.T) {
	rows := dataset()
	pgURL, _ := newPostgres(t, rows)
	influx := newInflux(t, rows)
	d := newDS(t, settingsFor(t, pgURL, &influx, nil))
	raw := newDS(t, settingsFor(t, pgURL, nil, map[string]any{"postgres": map[string]any{"useRollup": false}}))

	// Whole minutes, so code queries (which do not widen the range) see the same buckets as the builder.
	from, to := base.Add(10*time.Minute), base.Add(70*time.Minute)
	builder := func(source, agg, interval string, extra map[string]any) map[string]any {
		m := map[string]any{"source": source, "mode": "builder", "metric": "temperature", "aggregation": agg, "interval": interval}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}

	for _, agg := range []string{"avg", "min", "max", "last", "count", "sum"} {
		for _, iv := range []string{"1m", "5m", "30s", "7m"} {
			name := agg + "@" + iv
			t.Run(name, func(t *testing.T) {
				sqlResp := runOne(t, d, dq(t, "A", builder("sql", agg, iv, nil), from, to, time.Minute))
				rawResp := runOne(t, raw, dq(t, "A", builder("sql", agg, iv, nil), from, to, time.Minute))
				fluxResp := runOne(t, d, dq(t, "A", builder("flux", agg, iv, nil), from, to, time.Minute))
				for what, r := range map[string]backend.DataResponse{"sql": sqlResp, "sql-raw": rawResp, "flux": fluxResp} {
					if r.Error != nil {
						t.Fatalf("%s: %v", what, r.Error)
					}
				}
				want := seriesOf(t, sqlResp.Frames)
				if len(want) != 3 {
					t.Fatalf("want 3 temperature series, got %d", len(want))
				}
				if iv != "30s" {
					if !strings.Contains(sqlResp.Frames[0].Meta.ExecutedQueryString, "FROM readings_") {
						t.Errorf("interval %s should be served from the rollup: %s", iv, sqlResp.Frames[0].Meta.ExecutedQueryString)
					}
				}
				if strings.Contains(rawResp.Frames[0].Meta.ExecutedQueryString, "FROM readings_") {
					t.Errorf("useRollup=false must not read the rollup")
				}
				sameSeries(t, "rollup vs raw table", want, seriesOf(t, rawResp.Frames), 1e-9)
				sameSeries(t, "sql vs flux", want, seriesOf(t, fluxResp.Frames), 1e-9)
			})
		}
	}

	t.Run("raw rows", func(t *testing.T) {
		m := builder("sql", "", "", map[string]any{"device": "pico", "sensor": "dht22,internal"})
		sqlResp := runOne(t, d, dq(t, "A", m, from, to, time.Minute))
		m["source"] = "flux"
		fluxResp := runOne(t, d, dq(t, "A", m, from, to, time.Minute))
		if sqlResp.Error != nil || fluxResp.Error != nil {
			t.Fatalf("sql: %v, flux: %v", sqlResp.Error, fluxResp.Error)
		}
		want := seriesOf(t, sqlResp.Frames)
		if len(want) != 2 || len(want["device=pico,sensor=dht22"]) != 360 {
			t.Fatalf("raw: want 2 series, 360 points for pico/dht22; got %d series", len(want))
		}
		sameSeries(t, "raw sql vs flux", want, seriesOf(t, fluxResp.Frames), 0)
	})

	t.Run("code queries", func(t *testing.T) {
		want := seriesOf(t, runOne(t, d, dq(t, "A", builder("sql", "avg", "", nil), from, to, 5*time.Minute)).Frames)
		codeSQL := runOne(t, d, dq(t, "A", map[string]any{"source": "sql", "mode": "code", "rawSql": `
SELECT $__timeGroupAlias(time, $__interval), device, sensor, avg(value) AS value
  FROM readings
 WHERE metric = 'temperature' AND $__timeFilter(time)
 GROUP BY 1, 2, 3
 ORDER BY 1`}, from, to, 5*time.Minute))
		if codeSQL.Error != nil {
			t.Fatalf("code sql: %v", codeSQL.Error)
		}
		sameSeries(t, "builder vs code sql", want, seriesOf(t, codeSQL.Frames), 1e-9)
		codeFlux := runOne(t, d, dq(t, "A", map[string]any{"source": "flux", "mode": "code", "flux": `
from(bucket: v.bucket)
  |> range(start: v.timeRangeStart, stop: v.timeRangeStop)
  |> filter(fn: (r) => r._measurement == "temperature" and r._field == "value")
  |> filter(fn: (r) => r._time < v.timeRangeStop) // InfluxDB 1.8 reads range()'s stop inclusively
  |> group(columns: ["device", "sensor"])
  |> sort(columns: ["_time"])
  |> aggregateWindow(every: v.windowPeriod, fn: mean, createEmpty: false, timeSrc: "_start")`}, from, to, 5*time.Minute))
		if codeFlux.Error != nil {
			t.Fatalf("code flux: %v", codeFlux.Error)
		}
		sameSeries(t, "builder vs code flux", want, seriesOf(t, codeFlux.Frames), 1e-9)

		checkGolden(t, "code_sql_avg_5m", codeSQL, influx.Bucket)
		checkGolden(t, "code_flux_avg_5m", codeFlux, influx.Bucket)
	})

	t.Run("fill modes", func(t *testing.T) {
		for _, fill := range []string{"null", "previous", "zero"} {
			m := builder("sql", "avg", "1m", map[string]any{"device": "pico", "sensor": "internal", "fill": fill})
			sqlResp := runOne(t, d, dq(t, "A", m, from, to, time.Minute))
			m["source"] = "flux"
			fluxResp := runOne(t, d, dq(t, "A", m, from, to, time.Minute))
			if sqlResp.Error != nil || fluxResp.Error != nil {
				t.Fatalf("fill %s: sql %v, flux %v", fill, sqlResp.Error, fluxResp.Error)
			}
			got := seriesOf(t, sqlResp.Frames)["device=pico,sensor=internal"]
			if len(got) != 60 {
				t.Fatalf("fill %s: %d points, want 60 (one per minute)", fill, len(got))
			}
			gap := got[11] // 00:21, inside the gap
			switch fill {
			case "null":
				if gap.v != nil {
					t.Errorf("fill null: %v at 00:21", *gap.v)
				}
			case "previous":
				if gap.v == nil || *gap.v != *got[10].v {
					t.Errorf("fill previous: 00:21 should repeat 00:20")
				}
			case "zero":
				if gap.v == nil || *gap.v != 0 {
					t.Errorf("fill zero: 00:21 should be 0")
				}
			}
			sameSeries(t, "fill "+fill+" sql vs flux", seriesOf(t, sqlResp.Frames), seriesOf(t, fluxResp.Frames), 1e-9)
			checkGolden(t, "builder_sql_fill_"+fill, sqlResp, influx.Bucket)
		}
	})

	t.Run("golden shapes", func(t *testing.T) {
		short := base.Add(10 * time.Minute)
		shortTo := short.Add(5 * time.Minute)
		cases := map[string]map[string]any{
			"builder_sql_avg_1m":    builder("sql", "avg", "1m", nil),
			"builder_flux_avg_1m":   builder("flux", "avg", "1m", nil),
			"builder_sql_raw_one":   builder("sql", "", "", map[string]any{"device": "pico", "sensor": "dht22"}),
			"builder_sql_table":     builder("sql", "max", "1m", map[string]any{"format": "table"}),
			"builder_sql_empty":     builder("sql", "avg", "1m", map[string]any{"device": "nobody"}),
			"variable_devices":      {"source": "sql", "variable": "devices", "metric": "temperature"},
			"variable_sensors_flux": {"source": "flux", "variable": "sensors", "metric": "temperature", "device": "pico"},
			"code_sql_table":        {"source": "sql", "mode": "code", "format": "table", "rawSql": "SELECT device, count(*) AS n FROM readings WHERE $__timeFilter(time) GROUP BY device ORDER BY device"},
		}
		for name, m := range cases {
			r := runOne(t, d, dq(t, "A", m, short, shortTo, time.Minute))
			if r.Error != nil {
				t.Fatalf("%s: %v", name, r.Error)
			}
			checkGolden(t, name, r, influx.Bucket)
		}
	})

	// Error responses are checked here rather than in golden files: the SDK's golden writer cannot read back
	// a response that has an error and no frames.
	t.Run("errors", func(t *testing.T) {
		cases := []struct {
			model  map[string]any
			source backend.ErrorSource
			want   string
		}{
			{map[string]any{"source": "mqtt", "topic": "pico/#"}, backend.ErrorSourceDownstream, "live only"},
			{map[string]any{"source": "mqtt", "topic": "pico/#", "live": true}, backend.ErrorSourceDownstream, "MQTT is not configured"},
			{map[string]any{"source": "sql", "mode": "builder"}, backend.ErrorSourceDownstream, "metric is required"},
			{map[string]any{"source": "sql", "mode": "code", "rawSql": "SELECT * FROM no_such_table"}, backend.ErrorSourceDownstream, `relation "no_such_table" does not exist`},
			{map[string]any{"source": "flux", "mode": "code", "flux": "from(bucket: v.bucket) |> nope()"}, backend.ErrorSourceDownstream, "InfluxDB"},
			{map[string]any{"source": "sql", "metric": "temperature", "aggregation": "median"}, backend.ErrorSourceDownstream, "aggregation"},
			{map[string]any{"source": "sql", "metric": "temperature", "aggregation": "avg", "interval": "1ms"}, backend.ErrorSourceDownstream, "buckets"},
			{map[string]any{"source": "sql", "metric": "temperature", "interval": "1M", "aggregation": "avg"}, backend.ErrorSourceDownstream, "months"},
		}
		for _, c := range cases {
			r := runOne(t, d, dq(t, "A", c.model, from, base.Add(72*time.Hour), time.Minute))
			if r.Error == nil || !strings.Contains(r.Error.Error(), c.want) || r.ErrorSource != c.source {
				t.Errorf("%v: got error %v (source %q), want %q from %q", c.model, r.Error, r.ErrorSource, c.want, c.source)
			}
		}
		// One bad query does not fail the others.
		resp, err := d.QueryData(context.Background(), &backend.QueryDataRequest{Queries: []backend.DataQuery{
			dq(t, "bad", map[string]any{"source": "sql", "mode": "code", "rawSql": "SELECT 1/0"}, from, to, time.Minute),
			dq(t, "good", map[string]any{"source": "sql", "metric": "temperature", "aggregation": "avg", "interval": "5m"}, from, to, time.Minute),
		}})
		if err != nil || resp.Responses["bad"].Error == nil || resp.Responses["good"].Error != nil || len(seriesOf(t, resp.Responses["good"].Frames)) != 3 {
			t.Errorf("mixed request: err %v, bad %v, good %v", err, resp.Responses["bad"].Error, resp.Responses["good"].Error)
		}
	})
}

// checkGolden compares a response with testdata/<name>.jsonc, with the random bucket name normalised.
func checkGolden(t *testing.T, name string, r backend.DataResponse, bucket string) {
	t.Helper()
	for _, f := range r.Frames {
		if f.Meta != nil && f.Meta.ExecutedQueryString != "" {
			f.Meta.ExecutedQueryString = strings.ReplaceAll(f.Meta.ExecutedQueryString, bucket, "BUCKET")
		}
	}
	if r.Error != nil {
		r.Error = fmt.Errorf("%s", strings.ReplaceAll(r.Error.Error(), bucket, "BUCKET"))
	}
	experimental.CheckGoldenJSONResponse(t, "testdata", name, &r, *update)
}
