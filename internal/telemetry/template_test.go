package telemetry

import (
	"errors"
	"strings"
	"testing"
)

func TestParseTemplateErrors(t *testing.T) {
	tests := []struct {
		template string
		wantMsg  string // substring of the error message
	}{
		{"", "empty"},
		{"dev{device}/{metric}", "mixes a placeholder with literal text"},
		{"{device}x/{metric}", "mixes a placeholder with literal text"},
		{"{device}{metric}", "mixes a placeholder with literal text"},
		{"{location}/{metric}", `unknown placeholder "{location}"`},
		{"{}/{metric}", `unknown placeholder "{}"`},
		{"{Device}/{metric}", `unknown placeholder "{Device}"`},
		{"{device}/{device}", "used more than once"},
		{"{metric}/x/{metric}", "used more than once"},
		{"#/{device}", "'#' must be the last segment"},
		{"a/#/#", "'#' must be the last segment"},
		{"{device/{metric}", "unbalanced brace"},
		{"device}/{metric}", "unbalanced brace"},
		{"a+/{device}", "wildcards"},
		{"{device}/b#", "wildcards"},
		{"a\x00b/{device}", "NUL"},
		{"\xff/{device}", "UTF-8"},
	}
	for _, tc := range tests {
		t.Run(tc.template, func(t *testing.T) {
			tpl, err := ParseTemplate(tc.template)
			if err == nil {
				t.Fatalf("ParseTemplate(%q) = %v, want error containing %q", tc.template, tpl, tc.wantMsg)
			}
			if !errors.Is(err, ErrInvalidTemplate) {
				t.Errorf("error %v does not wrap ErrInvalidTemplate", err)
			}
			if !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("error %q does not contain %q", err, tc.wantMsg)
			}
		})
	}
}

func TestTemplateMatch(t *testing.T) {
	tests := []struct {
		template, topic string
		want            Labels
		ok              bool
	}{
		{"{device}/{metric}/{sensor}", "pico/temperature/dht22", Labels{Device: "pico", Metric: "temperature", Sensor: "dht22"}, true},
		{"{device}/{metric}/{sensor}", "pico/humidity/dht22", Labels{Device: "pico", Metric: "humidity", Sensor: "dht22"}, true},
		{"{device}/{metric}/{sensor}", "pico/temperature/internal", Labels{Device: "pico", Metric: "temperature", Sensor: "internal"}, true},
		{"{device}/{metric}/{sensor}", "pico/temperature", Labels{}, false},
		{"{device}/{metric}/{sensor}", "pico/temperature/dht22/extra", Labels{}, false},
		{"{device}/{metric}/{sensor}", "pico//dht22", Labels{Device: "pico", Sensor: "dht22"}, true},
		{"iiot/{device}/{metric}", "iiot/node1/temperature", Labels{Device: "node1", Metric: "temperature"}, true},
		{"iiot/{device}/{metric}", "iiot/signal/rssi", Labels{Device: "signal", Metric: "rssi"}, true},
		{"iiot/{device}/{metric}", "iiotx/node1/temperature", Labels{}, false},
		{"iiot/{device}/{metric}", "IIOT/node1/temperature", Labels{}, false},
		{"iiot/{device}/{metric}", "iiot/node1", Labels{}, false},
		{"iiot/{device}/{metric}", "", Labels{}, false},
		{"+/{device}/{metric}/{unit}", "site3/pump/flow/lpm", Labels{Device: "pump", Metric: "flow", Unit: "lpm"}, true},
		{"+/{device}", "/pump", Labels{Device: "pump"}, true},
		{"{device}/#", "pico", Labels{Device: "pico"}, true},
		{"{device}/#", "pico/a/b/c", Labels{Device: "pico"}, true},
		{"{device}/#", "pico/", Labels{Device: "pico"}, true},
		{"#", "anything/at/all", Labels{}, true},
		{"#", "", Labels{}, true},
		{"a/+", "a", Labels{}, false},
		{"a/+", "a/", Labels{}, true},
		{"/{device}", "/x", Labels{Device: "x"}, true},
		{"/{device}", "x", Labels{}, false},
		{"sensors/{sensor}/{metric}/{device}", "sensors/bme280/pressure/attic", Labels{Device: "attic", Metric: "pressure", Sensor: "bme280"}, true},
	}
	for _, tc := range tests {
		t.Run(tc.template+" "+tc.topic, func(t *testing.T) {
			tpl, err := ParseTemplate(tc.template)
			if err != nil {
				t.Fatal(err)
			}
			got, ok := tpl.Match(tc.topic)
			if ok != tc.ok || got != tc.want {
				t.Errorf("Match(%q) = %+v, %v; want %+v, %v", tc.topic, got, ok, tc.want, tc.ok)
			}
			if ok != mqttMatch(tpl.Filter(), tc.topic) {
				t.Errorf("Match(%q) = %v disagrees with MQTT filter %q", tc.topic, ok, tpl.Filter())
			}
		})
	}
}

func TestTemplateStringFilterProvides(t *testing.T) {
	tests := []struct {
		template, filter string
		provides         Labels
	}{
		{"{device}/{metric}/{sensor}", "+/+/+", Labels{Device: "{device}", Metric: "{metric}", Sensor: "{sensor}"}},
		{"iiot/{device}/{metric}", "iiot/+/+", Labels{Device: "{device}", Metric: "{metric}"}},
		{"a/+/{unit}/#", "a/+/+/#", Labels{Unit: "{unit}"}},
		{"#", "#", Labels{}},
		{"/", "/", Labels{}},
	}
	for _, tc := range tests {
		tpl := MustParseTemplate(tc.template)
		if tpl.String() != tc.template {
			t.Errorf("String() = %q, want %q", tpl.String(), tc.template)
		}
		if got := tpl.Filter(); got != tc.filter {
			t.Errorf("%q: Filter() = %q, want %q", tc.template, got, tc.filter)
		}
		if got := tpl.Provides(); got != tc.provides {
			t.Errorf("%q: Provides() = %+v, want %+v", tc.template, got, tc.provides)
		}
	}
}

func TestTemplateMatchAllocs(t *testing.T) {
	tpl := MustParseTemplate("iiot/{device}/{metric}")
	var sink Labels
	allocs := testing.AllocsPerRun(1000, func() {
		sink, _ = tpl.Match("iiot/node1/temperature")
	})
	if allocs != 0 {
		t.Errorf("Match allocates %v times per call, want 0", allocs)
	}
	if sink.Device != "node1" {
		t.Fatal("unexpected match result")
	}
}

// mqttMatch is a reference implementation of MQTT topic-filter matching (OASIS MQTT 5.0, 4.7), written
// independently of Template.Match so the two can be compared.
func mqttMatch(filter, topic string) bool {
	f := strings.Split(filter, "/")
	tp := strings.Split(topic, "/")
	for i, seg := range f {
		if seg == "#" {
			return true // matches the parent level too ("a/#" matches "a")
		}
		if i >= len(tp) {
			return false
		}
		if seg != "+" && seg != tp[i] {
			return false
		}
	}
	return len(f) == len(tp)
}
