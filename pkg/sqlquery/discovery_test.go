package sqlquery

import (
	"fmt"
	"strings"
	"testing"

	"github.com/fieldline-iot/fieldline/internal/golden"
)

// Catalogue discovery binds every filter value and bound; the label picks the column from a fixed set.
func TestCatalogueDiscoverySQL(t *testing.T) {
	hostile := "x'); DROP TABLE readings; --"
	q, args, err := DiscoverySQL(Discovery{Label: Device, Metrics: []string{hostile}, Sensors: []string{"a", hostile},
		Limit: 10, MaxSeries: 100, Catalogue: true, Recent: "7 days"})
	if err != nil {
		t.Fatal(err)
	}
	want := "SELECT DISTINCT s.device FROM (SELECT metric, device, sensor FROM readings_series WHERE metric = $1 AND sensor = ANY($2::text[]) ORDER BY metric, device, sensor LIMIT $3) s ORDER BY 1 LIMIT $4"
	if q != want {
		t.Errorf("SQL:\n%s\nwant\n%s", q, want)
	}
	if strings.Contains(q, hostile) || len(args) != 4 {
		t.Errorf("values not bound: %q %v", q, args)
	}
	if _, _, err := DiscoverySQL(Discovery{Label: "metric; DROP", Limit: 1, MaxSeries: 1, Catalogue: true}); err == nil {
		t.Error("unknown label accepted")
	}
	if _, _, err := DiscoverySQL(Discovery{Label: Metric, Catalogue: true}); err == nil {
		t.Error("zero limits accepted")
	}
}

func TestDiscoverySQLGolden(t *testing.T) {
	for _, c := range []struct {
		name string
		d    Discovery
	}{
		// Loose index scan over readings.
		{"scan_metrics", Discovery{Label: Metric, Limit: 500, MaxSeries: 10000}},
		{"scan_devices_of_one_metric_recent", Discovery{Label: Device, Metrics: []string{"temperature"}, Recent: "7 days", Limit: 500, MaxSeries: 10000}},
		{"scan_sensors_filtered", Discovery{Label: Sensor, Metrics: []string{"temperature", "humidity"}, Devices: []string{"pico"},
			Sensors: []string{"dht22", "internal"}, Limit: 50, MaxSeries: 1000}},
		{"scan_devices_recent", Discovery{Label: Device, Recent: "1 day", Sensors: []string{"dht22"}, Limit: 10, MaxSeries: 100}},
		// The series catalogue (Recent does not apply).
		{"catalogue_metrics", Discovery{Label: Metric, Limit: 500, MaxSeries: 10000, Catalogue: true}},
		{"catalogue_sensors_one_each", Discovery{Label: Sensor, Metrics: []string{"temperature"}, Devices: []string{"pico"},
			Sensors: []string{"dht22"}, Limit: 50, MaxSeries: 1000, Catalogue: true, Recent: "7 days"}},
		{"catalogue_devices_several", Discovery{Label: Device, Metrics: []string{"temperature", "humidity"}, Devices: []string{"pico", "node1"},
			Limit: 50, MaxSeries: 1000, Catalogue: true}},
	} {
		t.Run(c.name, func(t *testing.T) {
			q, args, err := DiscoverySQL(c.d)
			if err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			b.WriteString("-- sql --\n")
			b.WriteString(q)
			b.WriteString("\n")
			renderArgs(&b, args)
			golden.Check(t, "discovery_"+c.name, b.String())
		})
	}
}

// TestDiscoverySQLBindsValues: filter values and Recent are arguments in both forms, whatever they contain.
func TestDiscoverySQLBindsValues(t *testing.T) {
	for _, catalogue := range []bool{false, true} {
		for _, label := range []Label{Metric, Device, Sensor} {
			for _, d := range []Discovery{
				{Metrics: []string{hostile}, Devices: []string{hostile}, Sensors: []string{hostile}, Recent: hostile},
				{Metrics: []string{"m", hostile}, Devices: []string{hostile, "d"}, Sensors: []string{"s", hostile}},
			} {
				d.Label, d.Catalogue, d.Limit, d.MaxSeries = label, catalogue, 10, 100
				q, args, err := DiscoverySQL(d)
				if err != nil {
					t.Fatal(err)
				}
				if strings.Contains(q, hostile) || strings.Contains(q, "DROP") {
					t.Errorf("a value reached the SQL text:\n%s", q)
				}
				if !strings.Contains(fmt.Sprint(args), hostile) {
					t.Errorf("value not among the arguments: %v", args)
				}
			}
		}
	}
}

func TestDiscoverySQLErrors(t *testing.T) {
	for _, c := range []struct {
		d    Discovery
		want string
	}{
		{Discovery{Label: "", Limit: 1, MaxSeries: 1}, `discovery: unknown label ""`},
		{Discovery{Label: "units", Limit: 1, MaxSeries: 1}, `discovery: unknown label "units"`},
		{Discovery{Label: Label(hostile), Limit: 1, MaxSeries: 1}, `discovery: unknown label "x'; DROP TABLE readings; --"`},
		{Discovery{Label: Metric, Limit: 0, MaxSeries: 1}, "discovery: limits must be positive"},
		{Discovery{Label: Metric, Limit: 1, MaxSeries: 0}, "discovery: limits must be positive"},
		{Discovery{Label: Device, Limit: -1, MaxSeries: 10, Catalogue: true}, "discovery: limits must be positive"},
	} {
		q, _, err := DiscoverySQL(c.d)
		if err == nil || err.Error() != c.want {
			t.Errorf("%+v: %q, %v; want error %q", c.d, q, err, c.want)
		}
	}
}

func TestParseLabel(t *testing.T) {
	for in, want := range map[string]Label{
		"metric": Metric, "metrics": Metric, " Metrics ": Metric,
		"device": Device, "DEVICES": Device, "sensor": Sensor, "sensors\n": Sensor,
	} {
		if got, err := ParseLabel(in); err != nil || got != want {
			t.Errorf("ParseLabel(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "unit", "time", "metric s", "metric;", hostile} {
		want := fmt.Sprintf("label %q: want metrics, devices or sensors", in)
		if got, err := ParseLabel(in); err == nil || err.Error() != want {
			t.Errorf("ParseLabel(%q) = %q, %v; want error %q", in, got, err, want)
		}
	}
}
