package sqlquery

import (
	"strings"
	"testing"
	"time"
)

func TestCodeSQL(t *testing.T) {
	got := CodeSQL(Request{Metric: "o'clock", Devices: []string{"a", "b'c"}, Aggregation: Last, Interval: 90 * time.Second})
	for _, want := range []string{
		"$__timeGroupAlias(time, 90s)",
		"(array_agg(value ORDER BY time DESC))[1] AS value",
		"metric = 'o''clock'",
		"device IN ('a', 'b''c')",
		"$__timeFilter(time)",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("CodeSQL: missing %q in\n%s", want, got)
		}
	}
	if strings.Contains(got, "sensor") && strings.Contains(got, "sensor IN") {
		t.Errorf("no sensor selector was given:\n%s", got)
	}
	raw := CodeSQL(Request{Metric: "t"})
	if strings.Contains(raw, "GROUP BY") || !strings.Contains(raw, "ORDER BY time") {
		t.Errorf("raw rows: %s", raw)
	}
	if got := CodeSQL(Request{Metric: "t", Aggregation: Avg}); !strings.Contains(got, "$__timeGroupAlias(time, $__interval)") {
		t.Errorf("no interval: the panel's: %s", got)
	}
	for d, want := range map[time.Duration]string{time.Hour: "1h", 5 * time.Minute: "5m", 1500 * time.Millisecond: "1500ms", 10 * time.Second: "10s"} {
		if got := GrafanaInterval(d); got != want {
			t.Errorf("GrafanaInterval(%v) = %s, want %s", d, got, want)
		}
	}
}
