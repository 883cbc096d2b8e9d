package plugin

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// postPreview asks the instance's /preview resource (through CallResource) what a query runs.
func postPreview(t testing.TB, srv string, body any) (Preview, int, string) {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(srv+"/preview", "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatalf("POST /preview: %v", err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var p Preview
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(raw, &p); err != nil {
			t.Fatalf("preview answer %q: %v", raw, err)
		}
	}
	return p, resp.StatusCode, string(raw)
}

func previewBody(model map[string]any, from, to time.Time, interval time.Duration) map[string]any {
	return map[string]any{"query": model, "from": from.UnixMilli(), "to": to.UnixMilli(), "intervalMs": interval.Milliseconds(), "maxDataPoints": 1000}
}

// TestSwitchToCodeSQL: "switch to code" in the query editor seeds code SQL from the /preview resource's code field
// (sqlquery.CodeSQL). For every aggregation and raw rows, the seed runs on plain PostgreSQL (TimescaleDB's
// last() does not) and gives the builder's series, so a query switched to code shows what it showed before; and
// the preview's text is the statement QueryData runs.
func TestSwitchToCodeSQL(t *testing.T) {
	rows := dataset()
	pgURL, _ := newPostgres(t, rows)
	d := newDS(t, settingsFor(t, pgURL, nil, nil))
	srv := resourceServer(t, d)
	from, to := base.Add(10*time.Minute), base.Add(70*time.Minute)
	for _, agg := range []string{"none", "avg", "min", "max", "last", "count", "sum"} {
		for _, interval := range []string{"5m", ""} {
			t.Run(agg+"@"+interval, func(t *testing.T) {
				model := map[string]any{"source": "sql", "mode": "builder", "metric": "temperature", "device": "pico,node1",
					"aggregation": agg, "interval": interval}
				p, status, raw := postPreview(t, srv, previewBody(model, from, to, 5*time.Minute))
				if status != http.StatusOK {
					t.Fatalf("preview: %d %s", status, raw)
				}
				builder := runOne(t, d, dq(t, "A", model, from, to, 5*time.Minute))
				if builder.Error != nil {
					t.Fatalf("builder: %v", builder.Error)
				}
				if got := builder.Frames[0].Meta.ExecutedQueryString; p.Text != got {
					t.Errorf("preview text differs from what QueryData ran:\npreview:\n%s\nran:\n%s", p.Text, got)
				}
				if strings.Count(p.Text, "$") < len(p.Params) || len(p.Params) == 0 {
					t.Errorf("params %v do not match the placeholders of %s", p.Params, p.Text)
				}
				if interval == "" && agg != "none" && !strings.Contains(p.Code, "$__interval") {
					t.Errorf("without a fixed interval the seed should follow the panel ($__interval): %s", p.Code)
				}
				code := runOne(t, d, dq(t, "A", map[string]any{"source": "sql", "mode": "code", "rawSql": p.Code}, from, to, 5*time.Minute))
				if code.Error != nil {
					t.Fatalf("code seed %q: %v", p.Code, code.Error)
				}
				want := seriesOf(t, builder.Frames)
				if len(want) != 3 {
					t.Fatalf("want 3 temperature series from the builder, got %d", len(want))
				}
				// Raw rows of a code query come through Grafana's long-to-wide conversion: a series has a null
				// where another has a row. The values are what matters.
				sameSeries(t, "builder vs switched to code", want, nonNull(seriesOf(t, code.Frames)), 1e-9)
			})
		}
	}
}

func nonNull(in map[string][]point) map[string][]point {
	out := map[string][]point{}
	for k, pts := range in {
		for _, p := range pts {
			if p.v != nil {
				out[k] = append(out[k], p)
			}
		}
	}
	return out
}

// TestSwitchToCodeFlux: the same for Flux on InfluxDB: the preview text is what QueryData ran, and the code seed
// (v.* variables, aggregateWindow) runs on InfluxDB 1.8 and gives the builder's series.
func TestSwitchToCodeFlux(t *testing.T) {
	rows := dataset()
	influx := newInflux(t, rows)
	d := newDS(t, settingsFor(t, "", &influx, nil))
	srv := resourceServer(t, d)
	from, to := base.Add(10*time.Minute), base.Add(70*time.Minute)
	for _, agg := range []string{"none", "avg", "max", "last", "count"} {
		t.Run(agg, func(t *testing.T) {
			model := map[string]any{"source": "flux", "mode": "builder", "metric": "temperature", "sensor": "dht22",
				"aggregation": agg, "interval": "5m"}
			p, status, raw := postPreview(t, srv, previewBody(model, from, to, 5*time.Minute))
			if status != http.StatusOK {
				t.Fatalf("preview: %d %s", status, raw)
			}
			builder := runOne(t, d, dq(t, "A", model, from, to, 5*time.Minute))
			if builder.Error != nil {
				t.Fatalf("builder: %v", builder.Error)
			}
			if got := builder.Frames[0].Meta.ExecutedQueryString; p.Text != got {
				t.Errorf("preview text differs from what QueryData ran:\npreview:\n%s\nran:\n%s", p.Text, got)
			}
			if !strings.Contains(p.Code, "v.timeRangeStart") || !strings.Contains(p.Code, "v.bucket") {
				t.Errorf("the seed should follow the dashboard (v.timeRangeStart, v.bucket): %s", p.Code)
			}
			code := runOne(t, d, dq(t, "A", map[string]any{"source": "flux", "mode": "code", "flux": p.Code}, from, to, 5*time.Minute))
			if code.Error != nil {
				t.Fatalf("code seed %q: %v", p.Code, code.Error)
			}
			want := seriesOf(t, builder.Frames)
			if len(want) == 0 {
				t.Fatal("no series from the builder")
			}
			sameSeries(t, "builder vs switched to code", want, seriesOf(t, code.Frames), 1e-9)
		})
	}
}

// TestPreviewHostile: the preview resource is open to every Viewer: bodies are bounded, queries validated as
// QueryData validates them, methods checked, nothing stored is touched, no secret echoed.
func TestPreviewHostile(t *testing.T) {
	pgURL, pool := newPostgres(t, dataset())
	d := newDS(t, settingsFor(t, pgURL, nil, nil))
	srv := resourceServer(t, d)
	u, _ := url.Parse(pgURL)
	pw, _ := u.User.Password()
	before := readingsFingerprint(t, pool)
	if _, status := get(t, srv+"/preview"); status != http.StatusMethodNotAllowed {
		t.Errorf("GET /preview: status %d, want 405", status)
	}
	huge := map[string]any{"query": map[string]any{"source": "sql", "mode": "code", "rawSql": strings.Repeat("x", maxPreviewBody)}}
	if _, status, _ := postPreview(t, srv, huge); status != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized body: status %d, want 413", status)
	}
	for name, body := range map[string]any{
		"not an object":   "SELECT 1",
		"no query":        map[string]any{"from": 1},
		"hostile metric":  map[string]any{"query": map[string]any{"source": "sql", "metric": "x'; DROP TABLE readings; --\x00"}},
		"bad aggregation": map[string]any{"query": map[string]any{"source": "sql", "metric": "t", "aggregation": "pg_sleep"}},
		"mqtt":            map[string]any{"query": map[string]any{"source": "mqtt", "topic": "#", "live": true}},
		"flux missing":    map[string]any{"query": map[string]any{"source": "flux", "metric": "t"}},
		"too many buckets": map[string]any{"query": map[string]any{"source": "sql", "metric": "t", "aggregation": "avg", "interval": "1s"},
			"from": base.Add(-365 * 24 * time.Hour).UnixMilli(), "to": base.UnixMilli()},
	} {
		_, status, raw := postPreview(t, srv, body)
		if status != http.StatusBadRequest {
			t.Errorf("%s: status %d (%s), want 400", name, status, raw)
		}
		if strings.Contains(raw, "password") || (pw != "" && strings.Contains(raw, pw)) {
			t.Errorf("%s: answer echoes a secret: %s", name, raw)
		}
	}
	// A hostile metric that parses is bound as a parameter, never spliced; the code seed quotes it.
	evil := "it's'; DROP TABLE readings; --"
	p, status, raw := postPreview(t, srv, map[string]any{"query": map[string]any{"source": "sql", "metric": evil, "aggregation": "avg"}})
	if status != http.StatusOK {
		t.Fatalf("quoted metric: %d %s", status, raw)
	}
	if strings.Contains(p.Text, "DROP") || !strings.Contains(strings.Join(p.Params, " "), "'it''s''; DROP TABLE readings; --'") {
		t.Errorf("metric must be bound, not spliced: %s %v", p.Text, p.Params)
	}
	if !strings.Contains(p.Code, "metric = 'it''s''; DROP TABLE readings; --'") {
		t.Errorf("code seed must quote the metric: %s", p.Code)
	}
	runOne(t, d, dq(t, "A", map[string]any{"source": "sql", "mode": "code", "rawSql": p.Code}, base, base.Add(time.Hour), time.Minute))
	if after := readingsFingerprint(t, pool); after != before {
		t.Errorf("stored data changed:\nbefore %s\nafter  %s", before, after)
	}
}

func readingsFingerprint(t testing.TB, pool *pgxpool.Pool) string {
	t.Helper()
	var out string
	err := pool.QueryRow(context.Background(), `SELECT format('readings=%s/%s rollup=%s tables=%s',
		(SELECT count(*) FROM readings), (SELECT sum(value) FROM readings), (SELECT sum(count) FROM readings_1m),
		(SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables WHERE schemaname = 'public'))`).Scan(&out)
	if err != nil {
		t.Fatalf("fingerprint: %v", err)
	}
	return out
}
