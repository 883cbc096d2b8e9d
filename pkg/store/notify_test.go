package store

import (
	"strings"
	"testing"
	"time"

	"github.com/fieldline-iot/fieldline/pkg/telemetry"
)

func TestNotificationRoundTrip(t *testing.T) {
	t0 := time.Date(2026, 11, 22, 10, 0, 0, 123456000, time.UTC)
	batch := []telemetry.Reading{
		{Time: t0, Device: "pico", Metric: "temperature", Sensor: "dht22", Value: 22.4},
		{Time: t0.Add(-time.Second), Device: `we"ird\dev`, Metric: "rssi", Value: -33},
	}
	p := EncodeNotification(batch)
	if len(p) > MaxNotifyPayload {
		t.Fatalf("payload %d bytes", len(p))
	}
	n, err := DecodeNotification(p)
	if err != nil {
		t.Fatal(err)
	}
	if !n.HasRows() || len(n.Rows) != 2 || n.N != 2 {
		t.Fatalf("decoded %+v", n)
	}
	if !n.From.Equal(t0.Add(-time.Second)) || !n.To.Equal(t0) {
		t.Errorf("watermark %s..%s", n.From, n.To)
	}
	for i := range batch {
		if n.Rows[i] != (telemetry.Reading{Time: batch[i].Time, Device: batch[i].Device, Metric: batch[i].Metric, Sensor: batch[i].Sensor, Value: batch[i].Value}) {
			t.Errorf("row %d: got %+v want %+v", i, n.Rows[i], batch[i])
		}
	}
}

func TestNotificationWatermarkWhenTooBig(t *testing.T) {
	var batch []telemetry.Reading
	for i := 0; i < 400; i++ {
		batch = append(batch, telemetry.Reading{Time: time.Unix(1_800_000_000+int64(i), 0), Device: "device-" + strings.Repeat("x", 10), Metric: "temperature", Value: float64(i)})
	}
	p := EncodeNotification(batch)
	if len(p) > MaxNotifyPayload {
		t.Fatalf("payload %d bytes over the limit", len(p))
	}
	n, err := DecodeNotification(p)
	if err != nil {
		t.Fatal(err)
	}
	if n.HasRows() || n.N != 400 || n.From.Unix() != 1_800_000_000 || n.To.Unix() != 1_800_000_399 {
		t.Errorf("want watermark only, got %+v", n)
	}
	// Every size up to the limit stays under it (the estimate and the exact check agree).
	for k := 1; k < 200; k++ {
		if p := EncodeNotification(batch[:k]); len(p) > MaxNotifyPayload {
			t.Fatalf("%d rows: %d bytes", k, len(p))
		}
	}
	if EncodeNotification(nil) != "" {
		t.Error("empty batch should encode to empty string")
	}
}

func TestDecodeNotificationErrors(t *testing.T) {
	for _, p := range []string{"", "{", `{"v":2,"from":1,"to":2,"n":1}`, `{"v":1,"n":1}`, `{"v":1,"from":1,"to":1,"n":1,"rows":[[1,"a"]]}`,
		`{"v":1,"from":1,"to":1,"n":1,"rows":[["x","a","b","c",1]]}`} {
		if _, err := DecodeNotification(p); err == nil {
			t.Errorf("DecodeNotification(%q) succeeded", p)
		}
	}
}

func FuzzDecodeNotification(f *testing.F) {
	f.Add(EncodeNotification([]telemetry.Reading{{Time: time.Unix(1, 0), Device: "a", Metric: "b", Value: 1}}))
	f.Add(`{"v":1,"from":1,"to":2,"n":3}`)
	f.Fuzz(func(t *testing.T, p string) {
		n, err := DecodeNotification(p)
		if err == nil && n.HasRows() && len(n.Rows) == 0 && !strings.Contains(p, "[]") {
			t.Errorf("rows present but empty for %q", p)
		}
	})
}
