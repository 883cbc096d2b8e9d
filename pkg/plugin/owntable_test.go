package plugin

import (
	"context"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fieldline-iot/fieldline/internal/telemetry"
	"github.com/fieldline-iot/fieldline/internal/testsvc"
	"github.com/fieldline-iot/fieldline/pkg/frames"
)

// The first field report's database, verbatim (create_hypertable aside: TimescaleDB is not installable here; the
// index on ts is the one create_hypertable makes), its trigger and its bridge's INSERT.
const (
	reportSchema = `
CREATE TABLE readings (
    ts    TIMESTAMPTZ      NOT NULL DEFAULT NOW(),
    topic TEXT             NOT NULL,
    value DOUBLE PRECISION NOT NULL
);
CREATE INDEX readings_ts_idx ON readings (ts DESC);

CREATE OR REPLACE FUNCTION notify_new_reading()
RETURNS trigger AS $$
BEGIN
  PERFORM pg_notify(
    'new_reading',
    row_to_json(NEW)::text
  );
  RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER readings_notify
AFTER INSERT ON readings
FOR EACH ROW EXECUTE FUNCTION notify_new_reading();`
	reportBridgeInsert = "INSERT INTO readings  (topic, value) VALUES ($1, $2)"
)

// reportDB is a fresh database holding the report's schema; it returns the pool and the data source settings
// that map its table.
func reportDB(t testing.TB, extra map[string]any) (*pgxpool.Pool, backend.DataSourceInstanceSettings) {
	t.Helper()
	dbURL := testsvc.NewPostgresDB(t)
	pool, err := pgxpool.New(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if _, err := pool.Exec(context.Background(), reportSchema); err != nil {
		t.Fatalf("the report's schema: %v", err)
	}
	table := map[string]any{"name": "readings", "timeColumn": "ts", "valueColumn": "value",
		"topicColumn": "topic", "topicTemplate": "{device}/{metric}/{sensor}", "notifyChannel": "new_reading"}
	all := map[string]any{"postgres": map[string]any{"table": table}}
	for k, v := range extra {
		all[k] = v
	}
	return pool, settingsFor(t, dbURL, nil, all)
}

func insertAt(t testing.TB, pool *pgxpool.Pool, ts time.Time, topic string, v float64) {
	t.Helper()
	if _, err := pool.Exec(context.Background(), "INSERT INTO readings (ts, topic, value) VALUES ($1, $2, $3)", ts, topic, v); err != nil {
		t.Fatal(err)
	}
}

// TestOwnTableHistory: builder queries (raw and aggregated), variables, pickers and health work on the report's
// readings(ts, topic, value) with the topic split by {device}/{metric}/{sensor}; topics the template does not
// match (pico/status) stay out.
func TestOwnTableHistory(t *testing.T) {
	pool, s := reportDB(t, nil)
	want := map[string][]telemetry.Reading{}
	for i := range 120 {
		ts := base.Add(time.Duration(i) * 10 * time.Second)
		for _, r := range []telemetry.Reading{
			{Time: ts, Device: "pico", Metric: "temperature", Sensor: "dht22", Value: 20 + float64(i%13)*0.25},
			{Time: ts, Device: "pico", Metric: "humidity", Sensor: "dht22", Value: 40 + float64(i%7)},
			{Time: ts, Device: "node2", Metric: "temperature", Sensor: "ds18b20", Value: 10 + float64(i%5)},
		} {
			insertAt(t, pool, r.Time, r.Device+"/"+r.Metric+"/"+r.Sensor, r.Value)
			want[r.Device+"/"+r.Metric] = append(want[r.Device+"/"+r.Metric], r)
		}
		insertAt(t, pool, ts, "pico/status", 1) // two levels: not a reading of this template
	}
	d := newDS(t, s)

	res, err := d.CheckHealth(context.Background(), &backend.CheckHealthRequest{})
	if err != nil || res.Status != backend.HealthStatusOk || !strings.Contains(res.Message, "table readings mapped") {
		t.Fatalf("health: %v %v %s", err, res.Status, res.Message)
	}

	from, to := base, base.Add(20*time.Minute)
	raw := runOne(t, d, dq(t, "A", map[string]any{"source": "sql", "metric": "temperature", "device": "pico", "aggregation": "none"}, from, to, time.Second))
	if raw.Error != nil {
		t.Fatal(raw.Error)
	}
	got := seriesOf(t, raw.Frames)
	pts := got[labelsKey(frames.SeriesLabels("pico", "dht22"))]
	if len(got) != 1 || len(pts) != 120 {
		t.Fatalf("raw: want 1 series of 120 rows, got %d series: %v", len(got), keysOf(got))
	}
	for i, p := range pts {
		if w := want["pico/temperature"][i]; !p.t.Equal(w.Time) || *p.v != w.Value {
			t.Fatalf("row %d: got %v=%v, want %v=%v", i, p.t, *p.v, w.Time, w.Value)
		}
	}

	agg := runOne(t, d, dq(t, "A", map[string]any{"source": "sql", "metric": "temperature", "aggregation": "avg", "interval": "5m"}, from, to, time.Minute))
	if agg.Error != nil {
		t.Fatal(agg.Error)
	}
	series := seriesOf(t, agg.Frames)
	if len(series) != 2 {
		t.Fatalf("avg: want pico and node2, got %v", keysOf(series))
	}
	for key, rows := range map[string][]telemetry.Reading{
		labelsKey(frames.SeriesLabels("pico", "dht22")):    want["pico/temperature"],
		labelsKey(frames.SeriesLabels("node2", "ds18b20")): want["node2/temperature"],
	} {
		buckets := map[time.Time][]float64{}
		for _, r := range rows {
			b := r.Time.Truncate(5 * time.Minute)
			buckets[b] = append(buckets[b], r.Value)
		}
		if len(series[key]) != len(buckets) {
			t.Fatalf("%s: %d buckets, want %d", key, len(series[key]), len(buckets))
		}
		for _, p := range series[key] {
			vs := buckets[p.t]
			sum := 0.0
			for _, v := range vs {
				sum += v
			}
			if len(vs) == 0 || *p.v != sum/float64(len(vs)) {
				t.Errorf("%s bucket %v: got %v, want the average of %v", key, p.t, *p.v, vs)
			}
		}
	}

	for _, c := range []struct {
		variable, metric string
		want             []string
	}{
		{"devices", "", []string{"node2", "pico"}},
		{"metrics", "", []string{"humidity", "temperature"}},
		{"sensors", "temperature", []string{"dht22", "ds18b20"}},
		{"devices", "humidity", []string{"pico"}},
	} {
		r := runOne(t, d, dq(t, "V", map[string]any{"source": "sql", "variable": c.variable, "metric": c.metric}, from, to, time.Minute))
		if r.Error != nil {
			t.Fatalf("variable %s: %v", c.variable, r.Error)
		}
		var values []string
		for i := 0; i < r.Frames[0].Rows(); i++ {
			values = append(values, r.Frames[0].Fields[0].At(i).(string))
		}
		if !slices.Equal(values, c.want) {
			t.Errorf("variable %s (metric %q): got %v, want %v", c.variable, c.metric, values, c.want)
		}
	}
	srv := resourceServer(t, d)
	if body, status := get(t, srv+"/metrics?device=pico"); status != 200 || strings.TrimSpace(body) != `["humidity","temperature"]` {
		t.Errorf("/metrics?device=pico: %d %s", status, body)
	}
}

func keysOf[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// TestOwnTableLive: the report's database, unchanged, shows history then live: a live builder query answers
// the history up to the seam, and RunStream (through the report's own trigger on new_reading and a read-back
// of the table by time) carries the bridge's INSERTs after it, each row exactly once, including one committed
// during the handover; other topics stay out.
func TestOwnTableLive(t *testing.T) {
	pool, s := reportDB(t, liveExtra)
	d := newDS(t, s)
	now := time.Now().UTC()
	topic := "pico/temperature/dht22"
	for i := 60; i >= 1; i-- {
		insertAt(t, pool, now.Add(-time.Duration(i)*time.Second), topic, float64(1000+i))
		insertAt(t, pool, now.Add(-time.Duration(i)*time.Second), "node2/temperature/ds18b20", float64(2000+i))
	}
	resp := liveQuery(t, d, "A", map[string]any{"source": "sql", "metric": "temperature", "device": "pico", "aggregation": "none"}, now.Add(-time.Hour), now)
	history, channels := historyRows(t, resp)
	if len(channels) < 1 {
		t.Fatalf("no channel: %v", channels)
	}
	bridge := func(v float64) {
		if _, err := pool.Exec(context.Background(), reportBridgeInsert, topic, v); err != nil {
			t.Fatal(err)
		}
	}
	bridge(3001) // during the handover: after QueryData, before the stream starts
	sink, _ := runStream(t, d, channels[0])
	sink.waitRows(t, "handover read back", 10*time.Second, func(r []liveRow) bool { return slices.ContainsFunc(r, func(x liveRow) bool { return x.v == 3001 }) })
	for v := 3002.0; v <= 3010; v++ {
		bridge(v)
		if _, err := pool.Exec(context.Background(), reportBridgeInsert, "node2/temperature/ds18b20", v+1000); err != nil {
			t.Fatal(err)
		}
	}
	sink.waitRows(t, "bridge rows", 10*time.Second, func(r []liveRow) bool { return slices.ContainsFunc(r, func(x liveRow) bool { return x.v == 3010 }) })
	time.Sleep(300 * time.Millisecond) // anything doubled would arrive by now

	rows, err := pool.Query(context.Background(), "SELECT ts, value FROM readings WHERE topic = $1 AND ts >= $2", topic, now.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	var want []telemetry.Reading
	for rows.Next() {
		var ts time.Time
		var v float64
		if err := rows.Scan(&ts, &v); err != nil {
			t.Fatal(err)
		}
		want = append(want, reading("pico", "dht22", ts, v))
	}
	rows.Close()
	checkExactlyOnce(t, "report database: history + live", want, history, sink.rows())
}

// TestOwnTableSettings: a mapping that cannot work is refused with the field it concerns, and live queries on a
// table without a notify channel say what to set.
func TestOwnTableSettings(t *testing.T) {
	pgURL := testsvc.PostgresURL(t)
	u, _ := url.Parse(pgURL)
	for name, c := range map[string]struct {
		table map[string]any
		want  string
	}{
		"no time column":     {map[string]any{"name": "readings", "valueColumn": "value", "deviceColumn": "d", "metricName": "t"}, "timeColumn is required"},
		"hostile identifier": {map[string]any{"name": "readings; DROP TABLE x", "timeColumn": "ts", "valueColumn": "value", "deviceColumn": "d", "metricName": "t"}, "table:"},
		"quoted column":      {map[string]any{"name": "readings", "timeColumn": `ts"`, "valueColumn": "value", "deviceColumn": "d", "metricName": "t"}, "timeColumn:"},
		"no device":          {map[string]any{"name": "readings", "timeColumn": "ts", "valueColumn": "value", "metricName": "t"}, "device: set deviceColumn"},
		"no metric":          {map[string]any{"name": "readings", "timeColumn": "ts", "valueColumn": "value", "topicColumn": "topic", "topicTemplate": "{device}/+"}, "metric: set metricColumn"},
		"bad template":       {map[string]any{"name": "readings", "timeColumn": "ts", "valueColumn": "value", "topicColumn": "topic", "topicTemplate": "{device}/{nope}"}, "topicTemplate"},
		"template alone":     {map[string]any{"name": "readings", "timeColumn": "ts", "valueColumn": "value", "topicTemplate": "{device}/{metric}"}, "topicColumn and topicTemplate go together"},
		"bad channel":        {map[string]any{"name": "readings", "timeColumn": "ts", "valueColumn": "value", "deviceColumn": "d", "metricName": "t", "notifyChannel": "a b"}, "notifyChannel"},
	} {
		s := settingsFor(t, pgURL, nil, map[string]any{"postgres": map[string]any{"table": c.table}})
		_, err := LoadSettings(s)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error naming %q", name, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), u.User.String()) {
			t.Errorf("%s: the error echoes the user", name)
		}
	}

	pool, s := reportDB(t, nil)
	_ = pool
	s2 := s
	s2.JSONData = []byte(strings.Replace(string(s.JSONData), `"notifyChannel":"new_reading"`, `"notifyChannel":""`, 1))
	d := newDS(t, s2)
	resp := liveQuery(t, d, "A", map[string]any{"source": "sql", "metric": "temperature"}, time.Now().Add(-time.Hour), time.Now())
	if resp.Error == nil || !strings.Contains(resp.Error.Error(), "notifyChannel") {
		t.Fatalf("live on a table without a channel: %v", resp.Error)
	}
}

// TestAnnotationQuery: an annotation query (the editor sends it as a table, never live) returns the columns
// Grafana turns into annotations: time, timeEnd, text and tags, here from the report's own table.
func TestAnnotationQuery(t *testing.T) {
	pool, s := reportDB(t, nil)
	for i, v := range []float64{1, 0, 1} {
		insertAt(t, pool, base.Add(time.Duration(i)*time.Minute), "pico/status", v)
	}
	d := newDS(t, s)
	r := runOne(t, d, dq(t, "Anno", map[string]any{"source": "sql", "mode": "code", "format": "table", "rawSql": `
SELECT ts AS time, ts + interval '30 seconds' AS "timeEnd",
       split_part(topic, '/', 1) || CASE WHEN value = 0 THEN ' went offline' ELSE ' came online' END AS text,
       'status,' || split_part(topic, '/', 1) AS tags
FROM readings WHERE topic = 'pico/status' AND $__timeFilter(ts) ORDER BY 1`}, base, base.Add(time.Hour), time.Minute))
	if r.Error != nil {
		t.Fatal(r.Error)
	}
	f := r.Frames[0]
	if f.Rows() != 3 {
		t.Fatalf("want 3 annotations, got %d", f.Rows())
	}
	names := map[string]string{}
	for _, fl := range f.Fields {
		names[fl.Name] = fl.Type().String()
	}
	for name, typ := range map[string]string{"time": "[]*time.Time", "timeEnd": "[]*time.Time", "text": "[]*string", "tags": "[]*string"} {
		if names[name] != typ {
			t.Errorf("field %s: %q, want %s (fields %v)", name, names[name], typ, names)
		}
	}
	if text, _ := f.Fields[2].ConcreteAt(1); text != "pico went offline" {
		t.Errorf("second annotation: %v", text)
	}
}
