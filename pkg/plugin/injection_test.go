package plugin

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/jackc/pgx/v5/pgxpool"
)

// hostile are values a dashboard variable or a crafted request could carry.
var hostile = []string{
	`'; DROP TABLE readings; --`,
	`x' OR '1'='1`,
	`pico' UNION SELECT now(), secret, secret, 1 FROM canary --`,
	"\u2019; DROP TABLE canary; --",   // right single quotation mark
	"\u02bc OR \u02bc1\u02bc=\u02bc1", // modifier letter apostrophe
	`$1`,
	`$$; DROP TABLE canary; $$`,
	`\'; DROP TABLE canary; --`,
	`\\`,
	`)`,
	`) OR (1=1`,
	`") |> drop() //`,
	`${r._value}`,
	`" or r.device != "`,
	"pico\nDROP TABLE canary",
	"pico\x00",
	strings.Repeat("A", 5000),
	strings.Repeat("'", 300),
	`*`,
	`%`,
	`.*`,
	`1; SELECT pg_sleep(5)`,
}

const canarySecret = "TOPSECRET-canary-7f3a"

// TestInjectionFailsSafely pushes hostile strings through every builder field, variable query and resource
// parameter, on SQL and Flux. Each query must fail with a clear error or return no rows of any other series;
// afterwards the readings table and a canary table are unchanged, the InfluxDB bucket still holds every
// point, and the canary's content appears in no response.
func TestInjectionFailsSafely(t *testing.T) {
	rows := dataset()
	pgURL, admin := newPostgres(t, rows)
	influx := newInflux(t, rows)
	ctx := context.Background()
	if _, err := admin.Exec(ctx, "CREATE TABLE canary (secret text); INSERT INTO canary VALUES ('"+canarySecret+"')"); err != nil {
		t.Fatal(err)
	}
	before := dbFingerprint(t, admin)
	d := newDS(t, settingsFor(t, pgURL, &influx, nil))
	from, to := base, base.Add(2*time.Hour)

	fields := []string{"metric", "device", "sensor", "aggregation", "interval", "fill", "format", "source", "mode", "variable", "topic"}
	var queries []backend.DataQuery
	for _, source := range []string{"sql", "flux"} {
		for _, field := range fields {
			for i, h := range hostile {
				m := map[string]any{"source": source, "mode": "builder", "metric": "temperature", "device": "pico", "aggregation": "avg", "interval": "5m"}
				m[field] = h
				queries = append(queries, dq(t, fmt.Sprintf("%s-%s-%d", source, field, i), m, from, to, time.Minute))
				// The same value in a variable query (metric / device / sensor filters).
				if field == "metric" || field == "device" || field == "sensor" {
					v := map[string]any{"source": source, "variable": "devices", field: h}
					queries = append(queries, dq(t, fmt.Sprintf("%s-var-%s-%d", source, field, i), v, from, to, time.Minute))
				}
			}
		}
	}
	resp, err := d.QueryData(ctx, &backend.QueryDataRequest{Queries: queries})
	if err != nil {
		t.Fatalf("QueryData: %v", err)
	}
	if len(resp.Responses) != len(queries) {
		t.Fatalf("%d responses for %d queries", len(resp.Responses), len(queries))
	}
	failed, empty := 0, 0
	for refID, r := range resp.Responses {
		raw, _ := json.Marshal(r)
		if strings.Contains(string(raw), canarySecret) {
			t.Fatalf("%s: canary leaked: %s", refID, raw)
		}
		if r.Error != nil {
			failed++
			if r.ErrorSource != backend.ErrorSourceDownstream {
				t.Errorf("%s: error %v is marked %q, want downstream", refID, r.Error, r.ErrorSource)
			}
			continue
		}
		// A hostile device/sensor/metric value that was accepted must match nothing: a leak would show up as
		// series (or variable values) of other devices.
		rowsSeen := 0
		for _, f := range r.Frames {
			rowsSeen += f.Rows()
		}
		hostileSelector := strings.Contains(refID, "-metric-") || strings.Contains(refID, "-device-") || strings.Contains(refID, "-sensor-")
		if hostileSelector && rowsSeen > 0 && !wildcardIndex(refID) {
			t.Errorf("%s: hostile selector returned %d rows", refID, rowsSeen)
		}
		if rowsSeen == 0 {
			empty++
		}
	}
	t.Logf("%d hostile queries: %d failed with an error, %d returned nothing, the rest are hostile values in enumerated fields that fell back or failed", len(queries), failed, empty)

	// Resources with hostile filters.
	srv := resourceServer(t, d)
	for _, path := range []string{"/devices", "/metrics", "/sensors"} {
		for _, p := range []string{"metric", "device", "sensor", "source"} {
			for _, h := range hostile {
				body, status := get(t, srv+path+"?"+p+"="+url.QueryEscape(h))
				if strings.Contains(body, canarySecret) {
					t.Fatalf("%s?%s=%q leaked the canary", path, p, h)
				}
				if status == http.StatusOK && p != "source" && !isWildcard(h) && body != "[]\n" {
					t.Errorf("%s?%s=%q: %s", path, p, h, body)
				}
			}
		}
	}

	if after := dbFingerprint(t, admin); after != before {
		t.Fatalf("database changed:\nbefore %s\nafter  %s", before, after)
	}
	// InfluxDB is unchanged too.
	all := runOne(t, d, dq(t, "count", map[string]any{"source": "flux", "metric": "temperature", "aggregation": "count", "interval": "1d"}, from, to, time.Minute))
	total := 0.0
	for _, pts := range seriesOf(t, all.Frames) { // one wide frame: a value field per series
		for _, p := range pts {
			if p.v != nil {
				total += *p.v
			}
		}
	}
	if want := 3*720 - 41; int(total) != want {
		t.Fatalf("InfluxDB temperature points: %v, want %d", total, want)
	}
}

func wildcardIndex(refID string) bool {
	var i int
	if _, err := fmt.Sscanf(refID[strings.LastIndex(refID, "-")+1:], "%d", &i); err != nil {
		return false
	}
	return isWildcard(hostile[i])
}

// isWildcard: "*" is the documented "all" selector, not an injection.
func isWildcard(s string) bool { return s == "*" }

// TestRawSQLCannotWrite proves the session is read-only: writes, DDL, session tricks that try to turn
// read-only off, and multi-statement strings all fail through code SQL, on a pool of one connection (so
// every statement reuses the session the previous one tried to change).
func TestRawSQLCannotWrite(t *testing.T) {
	pgURL, admin := newPostgres(t, dataset())
	ctx := context.Background()
	if _, err := admin.Exec(ctx, "CREATE TABLE canary (secret text); INSERT INTO canary VALUES ('"+canarySecret+"')"); err != nil {
		t.Fatal(err)
	}
	before := dbFingerprint(t, admin)
	d := newDS(t, settingsFor(t, pgURL, nil, map[string]any{"postgres": map[string]any{"maxConns": 1}}))

	run := func(sql string) backend.DataResponse {
		return runOne(t, d, dq(t, "A", map[string]any{"source": "sql", "mode": "code", "format": "table", "rawSql": sql}, base, base.Add(time.Hour), time.Minute))
	}
	insert := "INSERT INTO readings (time, device, metric, sensor, value) VALUES (now(), 'evil', 'temperature', '', 1)"
	mustFail := []string{
		insert,
		"DROP TABLE canary",
		"DELETE FROM readings",
		"UPDATE canary SET secret = 'x'",
		"TRUNCATE readings",
		"CREATE TABLE evil (a int)",
		"WITH d AS (DELETE FROM readings RETURNING *) SELECT count(*) FROM d",
		"SELECT * FROM canary FOR UPDATE",
		"DO $$ BEGIN INSERT INTO canary VALUES ('x'); END $$",
		"SELECT 1; DROP TABLE canary",
		"COPY canary FROM PROGRAM 'true'",
	}
	for _, sql := range mustFail {
		if r := run(sql); r.Error == nil {
			t.Errorf("%q succeeded", sql)
		} else if r.ErrorSource != backend.ErrorSourceDownstream {
			t.Errorf("%q: error source %q", sql, r.ErrorSource)
		}
	}
	// Attempts to turn read-only off for the session; each is followed by a write that must still fail.
	tricks := []string{
		"SELECT set_config('default_transaction_read_only', 'off', false)",
		"SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE",
		"SET default_transaction_read_only = off",
		"SET transaction_read_only = off",
		"RESET ALL",
		"COMMIT",
		"BEGIN READ WRITE",
		"SELECT set_config('statement_timeout', '0', false)",
	}
	for _, trick := range tricks {
		r := run(trick)
		t.Logf("%q → error %v", trick, r.Error)
		if r := run(insert); r.Error == nil || !strings.Contains(r.Error.Error(), "read-only") {
			t.Fatalf("after %q the insert was not refused as read-only: %v", trick, r.Error)
		}
	}
	// The statement timeout survives the set_config attempt.
	if r := run("SELECT current_setting('statement_timeout') AS t, current_setting('default_transaction_read_only') AS ro"); r.Error != nil {
		t.Fatal(r.Error)
	} else if got := fmt.Sprint(r.Frames[0].Fields[0].ConcreteAt(0)) + " " + fmt.Sprint(r.Frames[0].Fields[1].ConcreteAt(0)); !strings.Contains(got, "30s") || !strings.Contains(got, "on") {
		t.Fatalf("session settings after tricks: %s, want statement_timeout 30s and read-only on", got)
	}
	if after := dbFingerprint(t, admin); after != before {
		t.Fatalf("database changed:\nbefore %s\nafter  %s", before, after)
	}
}

// TestStatementTimeout shows the statement timeout bounds a query, as a downstream timeout error.
func TestStatementTimeout(t *testing.T) {
	pgURL, _ := newPostgres(t, nil)
	d := newDS(t, settingsFor(t, pgURL, nil, map[string]any{"statementTimeout": "300ms"}))
	start := time.Now()
	r := runOne(t, d, dq(t, "A", map[string]any{"source": "sql", "mode": "code", "format": "table", "rawSql": "SELECT pg_sleep(5)"}, base, base.Add(time.Hour), time.Minute))
	if r.Error == nil || !strings.Contains(r.Error.Error(), "statement timeout") || time.Since(start) > 3*time.Second {
		t.Fatalf("want a statement timeout within 3s, got %v after %v", r.Error, time.Since(start))
	}
	if r.ErrorSource != backend.ErrorSourceDownstream {
		t.Fatalf("timeout is %q, want downstream", r.ErrorSource)
	}
	// Context cancellation is honoured too.
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start = time.Now()
	resp, err := d.QueryData(ctx, &backend.QueryDataRequest{Queries: []backend.DataQuery{
		dq(t, "A", map[string]any{"source": "sql", "mode": "code", "format": "table", "rawSql": "SELECT pg_sleep(0.25), pg_sleep(0.25)"}, base, base.Add(time.Hour), time.Minute)}})
	if err != nil || resp.Responses["A"].Error == nil || time.Since(start) > 2*time.Second {
		t.Fatalf("cancelled query: err %v, response %v, after %v", err, resp.Responses["A"].Error, time.Since(start))
	}
}

// dbFingerprint summarises the tables a hostile query could touch.
func dbFingerprint(t testing.TB, pool *pgxpool.Pool) string {
	t.Helper()
	var out string
	err := pool.QueryRow(context.Background(), `SELECT format('readings=%s/%s rollup=%s canary=%s tables=%s',
		(SELECT count(*) FROM readings), (SELECT sum(value) FROM readings), (SELECT sum(count) FROM readings_1m),
		(SELECT string_agg(secret, ',') FROM canary),
		(SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables WHERE schemaname = 'public'))`).Scan(&out)
	if err != nil {
		t.Fatalf("fingerprint: %v", err)
	}
	return out
}

// resourceServer exposes the instance's CallResource over a local HTTP server, for tests.
func resourceServer(t testing.TB, d *Datasource) string {
	t.Helper()
	srv := newTestHTTPServer(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		req := &backend.CallResourceRequest{Path: strings.TrimPrefix(r.URL.Path, "/"), Method: r.Method, URL: r.URL.String(), Body: body, Headers: map[string][]string{}}
		err := d.CallResource(r.Context(), req, backend.CallResourceResponseSenderFunc(func(res *backend.CallResourceResponse) error {
			for k, v := range res.Headers {
				w.Header()[k] = v
			}
			w.WriteHeader(res.Status)
			_, err := w.Write(res.Body)
			return err
		}))
		if err != nil {
			t.Errorf("CallResource: %v", err)
		}
	})
	return srv
}

func get(t testing.TB, u string) (string, int) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b), resp.StatusCode
}
