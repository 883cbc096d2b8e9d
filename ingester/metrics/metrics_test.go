package metrics

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
)

// want is every metric New registers under fieldline_ingester_, with its type and label names, and how to
// record one observation through the Metrics field that should carry that name.
func want(m *Metrics) map[string]struct {
	typ    dto.MetricType
	labels []string
	touch  func()
} {
	type spec = struct {
		typ    dto.MetricType
		labels []string
		touch  func()
	}
	counter, gauge, histogram := dto.MetricType_COUNTER, dto.MetricType_GAUGE, dto.MetricType_HISTOGRAM
	return map[string]spec{
		"messages_received_total":     {counter, []string{"subscription"}, func() { m.Received.WithLabelValues("pico/+/+").Inc() }},
		"messages_rejected_total":     {counter, []string{"reason"}, func() { m.Rejected.WithLabelValues("nan").Inc() }},
		"messages_acked_total":        {counter, nil, func() { m.Acked.Inc() }},
		"messages_inflight":           {gauge, nil, func() { m.Inflight.Inc() }},
		"batches_total":               {counter, nil, func() { m.Batches.Inc() }},
		"batch_rows":                  {histogram, nil, func() { m.BatchRows.Observe(1) }},
		"readings_written_total":      {counter, []string{"sink"}, func() { m.Written.WithLabelValues("postgres").Inc() }},
		"write_errors_total":          {counter, []string{"sink"}, func() { m.WriteErrors.WithLabelValues("postgres").Inc() }},
		"readings_refused_total":      {counter, []string{"sink"}, func() { m.SinkDropped.WithLabelValues("influx").Inc() }},
		"batch_write_seconds":         {histogram, []string{"sink"}, func() { m.WriteSeconds.WithLabelValues("postgres").Observe(1) }},
		"spool_bytes":                 {gauge, []string{"sink"}, func() { m.SpoolBytes.WithLabelValues("postgres").Inc() }},
		"spool_batches":               {gauge, []string{"sink"}, func() { m.SpoolBatches.WithLabelValues("postgres").Inc() }},
		"readings_spooled_total":      {counter, []string{"sink"}, func() { m.Spooled.WithLabelValues("postgres").Inc() }},
		"readings_replayed_total":     {counter, []string{"sink"}, func() { m.Replayed.WithLabelValues("postgres").Inc() }},
		"sink_up":                     {gauge, []string{"sink"}, func() { m.SinkUp.WithLabelValues("postgres").Inc() }},
		"mqtt_connected":              {gauge, nil, func() { m.Connected.Inc() }},
		"mqtt_connections_lost_total": {counter, nil, func() { m.ConnectionsLost.Inc() }},
		"spool_files_set_aside_total": {counter, []string{"reason", "sink"}, func() { m.SetAside.WithLabelValues("postgres", "corrupt").Inc() }},
		"store_failures_total":        {counter, []string{"sink"}, func() { m.StoreFailures.WithLabelValues("all").Inc() }},
	}
}

// TestNewRegistersEveryMetric gathers the registry after one observation through each field: every expected
// family is there with its type, help and labels, carrying exactly that observation, and nothing else is
// registered under the namespace. The Go runtime collector is registered too.
func TestNewRegistersEveryMetric(t *testing.T) {
	m := New()
	specs := want(m)
	for _, s := range specs {
		s.touch()
	}
	families, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, f := range families {
		name := f.GetName()
		if !strings.HasPrefix(name, "fieldline_ingester_") {
			seen[name] = true
			continue
		}
		short := strings.TrimPrefix(name, "fieldline_ingester_")
		s, ok := specs[short]
		if !ok {
			t.Errorf("unexpected metric %s", name)
			continue
		}
		seen[short] = true
		if f.GetType() != s.typ {
			t.Errorf("%s: type %v, want %v", name, f.GetType(), s.typ)
		}
		if f.GetHelp() == "" {
			t.Errorf("%s: no help text", name)
		}
		if len(f.GetMetric()) != 1 {
			t.Errorf("%s: %d series, want the one the test recorded", name, len(f.GetMetric()))
			continue
		}
		series := f.GetMetric()[0]
		var labels []string
		for _, l := range series.GetLabel() {
			labels = append(labels, l.GetName())
		}
		if !slices.Equal(labels, s.labels) { // the exposition sorts label names
			t.Errorf("%s: labels %v, want %v", name, labels, s.labels)
		}
		var v float64
		switch s.typ {
		case dto.MetricType_COUNTER:
			v = series.GetCounter().GetValue()
		case dto.MetricType_GAUGE:
			v = series.GetGauge().GetValue()
		case dto.MetricType_HISTOGRAM:
			v = float64(series.GetHistogram().GetSampleCount())
		}
		if v != 1 {
			t.Errorf("%s = %v after one observation through its field, want 1 (field wired to another metric?)", name, v)
		}
	}
	for short := range specs {
		if !seen[short] {
			t.Errorf("fieldline_ingester_%s not registered", short)
		}
	}
	if !seen["go_goroutines"] {
		t.Error("Go runtime collector not registered")
	}
}

// TestNewIsIndependent: each New has its own registry (tests and a second pipeline do not collide).
func TestNewIsIndependent(t *testing.T) {
	a, b := New(), New()
	a.Acked.Add(3)
	families, err := b.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == "fieldline_ingester_messages_acked_total" && f.GetMetric()[0].GetCounter().GetValue() != 0 {
			t.Error("the second Metrics sees the first one's counter")
		}
	}
}

func get(t *testing.T, url string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body), resp.Header
}

func TestServe(t *testing.T) {
	m := New()
	m.Acked.Add(42)
	var notReady atomic.Pointer[error]
	ready := func() error {
		if e := notReady.Load(); e != nil {
			return *e
		}
		return nil
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	stop, addr, err := Serve(t.Context(), "127.0.0.1:0", m, ready, log)
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			stop()
		}
	}()
	if host, port, err := net.SplitHostPort(addr); err != nil || host != "127.0.0.1" || port == "0" {
		t.Fatalf("bound address %q (%v): want 127.0.0.1 and the port the system chose", addr, err)
	}
	base := "http://" + addr

	code, body, hdr := get(t, base+"/metrics")
	if code != http.StatusOK || !strings.HasPrefix(hdr.Get("Content-Type"), "text/plain") {
		t.Errorf("/metrics: %d %s", code, hdr.Get("Content-Type"))
	}
	for _, line := range []string{
		"# TYPE fieldline_ingester_messages_acked_total counter",
		"fieldline_ingester_messages_acked_total 42",
		"# TYPE fieldline_ingester_mqtt_connected gauge",
		"# TYPE fieldline_ingester_batch_rows histogram",
		"# TYPE go_goroutines gauge",
	} {
		if !strings.Contains(body, line+"\n") {
			t.Errorf("/metrics lacks %q", line)
		}
	}

	if code, body, _ := get(t, base+"/healthz"); code != http.StatusOK || body != "ok\n" {
		t.Errorf("/healthz: %d %q", code, body)
	}
	if code, body, _ := get(t, base+"/readyz"); code != http.StatusOK || body != "ready\n" {
		t.Errorf("/readyz while ready: %d %q", code, body)
	}
	e := errors.Join(errors.New("MQTT not connected"), errors.New("sink postgres: schema not migrated"))
	notReady.Store(&e)
	if code, body, _ := get(t, base+"/readyz"); code != http.StatusServiceUnavailable ||
		body != "not ready: MQTT not connected\nsink postgres: schema not migrated\n" {
		t.Errorf("/readyz while not ready: %d %q", code, body)
	}
	notReady.Store(nil)
	if code, _, _ := get(t, base+"/readyz"); code != http.StatusOK {
		t.Errorf("/readyz ready again: %d", code)
	}
	if code, _, _ := get(t, base+"/nope"); code != http.StatusNotFound {
		t.Errorf("/nope: %d", code)
	}

	stop()
	stopped = true
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Error("still listening after stop()")
	}
}

func TestServeAddressInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	stop, _, err := Serve(context.Background(), ln.Addr().String(), New(), func() error { return nil }, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err == nil {
		stop()
		t.Fatal("Serve on a busy address succeeded")
	}
	if !strings.HasPrefix(err.Error(), "listen on "+ln.Addr().String()+" for /metrics: ") {
		t.Errorf("error %q does not name the address", err)
	}
}
