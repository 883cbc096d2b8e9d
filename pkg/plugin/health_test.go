package plugin

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"

	"github.com/fieldline-iot/fieldline/internal/testsvc"
)

// TestCheckHealth: every configured part is checked and named; a broken part says why; no secret leaks.
func TestCheckHealth(t *testing.T) {
	pgURL, _ := newPostgres(t, nil)
	influx := testsvc.NewInfluxBucket(t)
	mqttURL := testsvc.MQTTURL(t)

	s := settingsFor(t, pgURL, &influx, map[string]any{"mqtt": map[string]any{"url": mqttURL}})
	d := newDS(t, s)
	res, err := d.CheckHealth(context.Background(), &backend.CheckHealthRequest{})
	if err != nil || res.Status != backend.HealthStatusOk {
		t.Fatalf("healthy setup: %v %v %q", err, res.Status, res.Message)
	}
	for _, want := range []string{"PostgreSQL", "plain PostgreSQL", "read-only", "InfluxDB", "MQTT ok"} {
		if !strings.Contains(res.Message, want) {
			t.Errorf("message %q lacks %q", res.Message, want)
		}
	}

	// Wrong PostgreSQL password, missing bucket, unreachable broker: one message naming all three.
	const secret = "Wrong-Pa55word-Sentinel"
	broken := influx
	broken.Bucket = "no_such_bucket"
	s = settingsFor(t, pgURL, &broken, map[string]any{"mqtt": map[string]any{"url": "tcp://127.0.0.1:1"}})
	s.DecryptedSecureJSONData["postgresPassword"] = secret
	s.DecryptedSecureJSONData["mqttPassword"] = secret + "-mqtt"
	d = newDS(t, s)
	res, _ = d.CheckHealth(context.Background(), &backend.CheckHealthRequest{})
	if res.Status != backend.HealthStatusError {
		t.Fatalf("broken setup reported %v: %q", res.Status, res.Message)
	}
	for _, want := range []string{"PostgreSQL failed", "password authentication failed", "InfluxDB failed", "no_such_bucket", "MQTT failed"} {
		if !strings.Contains(res.Message, want) {
			t.Errorf("message %q lacks %q", res.Message, want)
		}
	}
	if strings.Contains(res.Message+string(res.JSONDetails), secret) {
		t.Fatalf("secret leaked: %s", res.Message)
	}
	t.Logf("broken: %s", res.Message)

	// Invalid settings surface through health with the field name.
	bad := newDS(t, backend.DataSourceInstanceSettings{JSONData: json.RawMessage(`{"postgres":{"host":"x:1"}}`)})
	res, _ = bad.CheckHealth(context.Background(), &backend.CheckHealthRequest{})
	if res.Status != backend.HealthStatusError || !strings.Contains(res.Message, "postgres.database") {
		t.Fatalf("invalid settings: %q", res.Message)
	}
}

// TestResources covers the discovery endpoints and their filters, /topics, and variable queries.
func TestResources(t *testing.T) {
	pgURL, _ := newPostgres(t, dataset())
	d := newDS(t, settingsFor(t, pgURL, nil, nil))
	srv := resourceServer(t, d)
	cases := map[string]string{
		"/metrics":                 `["humidity","temperature"]`,
		"/metrics?device=node1":    `["temperature"]`,
		"/metrics?sensor=dht22":    `["humidity","temperature"]`,
		"/devices":                 `["node1","pico"]`,
		"/devices?metric=humidity": `["pico"]`,
		"/devices?metric=temperature&sensor=internal": `["pico"]`,
		"/sensors?device=pico&metric=temperature":     `["dht22","internal"]`,
		"/sensors?device=node1":                       `[]`,
		"/sensors?device=pico,node1&metric=humidity":  `["dht22"]`,
	}
	for path, want := range cases {
		body, status := get(t, srv+path)
		if status != 200 || strings.TrimSpace(body) != want {
			t.Errorf("%s: %d %s, want %s", path, status, body, want)
		}
	}
	if body, status := get(t, srv+"/topics"); status != 404 || !strings.Contains(body, "MQTT not configured") {
		t.Errorf("/topics: %d %s", status, body)
	}
	r := runOne(t, d, dq(t, "V", map[string]any{"variable": "sensors", "device": "pico", "metric": "temperature"}, base, base.Add(time.Hour), time.Minute))
	if r.Error != nil || r.Frames[0].Rows() != 2 {
		t.Fatalf("variable query: %v", r.Error)
	}
}

// TestDisposeWhileQuerying disposes an instance while slow queries run: they finish or fail cleanly, later
// calls get a clear error, nothing panics or hangs.
func TestDisposeWhileQuerying(t *testing.T) {
	pgURL, _ := newPostgres(t, dataset())
	inst, err := NewDatasource(context.Background(), settingsFor(t, pgURL, nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	d := inst.(*Datasource)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := runOne(t, d, dq(t, "A", map[string]any{"source": "sql", "mode": "code", "format": "table", "rawSql": "SELECT pg_sleep(0.3), count(*) FROM readings"}, base, base.Add(time.Hour), time.Minute))
			errs <- r.Error
		}()
	}
	time.Sleep(100 * time.Millisecond)
	done := make(chan struct{})
	go func() { d.Dispose(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Dispose hung")
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Logf("in-flight query: %v", err)
		}
	}
	r := runOne(t, d, dq(t, "A", map[string]any{"source": "sql", "metric": "temperature"}, base, base.Add(time.Hour), time.Minute))
	if r.Error == nil || !strings.Contains(r.Error.Error(), "reconfigured") {
		t.Fatalf("query after Dispose: %v", r.Error)
	}
}
