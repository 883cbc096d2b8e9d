package live

import (
	"strings"
	"testing"
	"time"

	"github.com/fieldline-iot/fieldline/internal/telemetry"
	"github.com/fieldline-iot/fieldline/pkg/sqlquery"
)

// TestDecodeRow: the report's trigger payload (row_to_json of readings(ts, topic, value)) decodes with the
// table's mapping; hostile or broken payloads are refused with a reason, never a panic.
func TestDecodeRow(t *testing.T) {
	tbl := &sqlquery.Table{Name: "readings", Time: "ts", Value: "value", Topic: "topic",
		Template: telemetry.MustParseTemplate("{device}/{metric}/{sensor}")}
	r, err := decodeRow(tbl, `{"ts":"2026-12-04T03:41:07.123456+00:00","topic":"pico/temperature/dht22","value":22.4}`)
	if err != nil {
		t.Fatal(err)
	}
	want := telemetry.Reading{Time: time.Date(2026, 12, 4, 3, 41, 7, 123456000, time.UTC), Device: "pico", Metric: "temperature", Sensor: "dht22", Value: 22.4}
	if r != want {
		t.Fatalf("got %+v, want %+v", r, want)
	}
	// timestamp without time zone, a numeric column as a string, label columns instead of a topic
	cols := &sqlquery.Table{Name: "m", Time: "t", Value: "v", Device: "node", MetricName: "temperature"}
	if r, err := decodeRow(cols, `{"t":"2026-12-04T03:41:07","node":7,"v":"27.6"}`); err != nil || r.Device != "7" || r.Value != 27.6 || r.Metric != "temperature" {
		t.Fatalf("columns: %+v %v", r, err)
	}
	for name, payload := range map[string]string{
		"not JSON":          `22.4`,
		"no time":           `{"topic":"pico/temperature/dht22","value":1}`,
		"bad time":          `{"ts":"yesterday","topic":"pico/temperature/dht22","value":1}`,
		"no value":          `{"ts":"2026-12-04T03:41:07Z","topic":"pico/temperature/dht22"}`,
		"text value":        `{"ts":"2026-12-04T03:41:07Z","topic":"pico/temperature/dht22","value":"online"}`,
		"template mismatch": `{"ts":"2026-12-04T03:41:07Z","topic":"pico/status","value":1}`,
		"empty device":      `{"ts":"2026-12-04T03:41:07Z","topic":"/temperature/dht22","value":1}`,
		"NUL in label":      `{"ts":"2026-12-04T03:41:07Z","topic":"pi\u0000co/temperature/dht22","value":1}`,
		"long label":        `{"ts":"2026-12-04T03:41:07Z","topic":"` + strings.Repeat("x", 300) + `/temperature/dht22","value":1}`,
	} {
		if _, err := decodeRow(tbl, payload); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func FuzzDecodeRow(f *testing.F) {
	tbl := &sqlquery.Table{Name: "readings", Time: "ts", Value: "value", Topic: "topic",
		Template: telemetry.MustParseTemplate("{device}/{metric}/{sensor}")}
	f.Add(`{"ts":"2026-12-04T03:41:07.123456+00:00","topic":"pico/temperature/dht22","value":22.4}`)
	f.Add(`{"ts":null}`)
	f.Fuzz(func(t *testing.T, payload string) {
		r, err := decodeRow(tbl, payload)
		if err == nil && (r.Device == "" || r.Metric == "" || telemetry.CheckLabel(r.Device) != "" || telemetry.CheckLabel(r.Metric) != "") {
			t.Fatalf("accepted bad labels: %+v", r)
		}
	})
}
