package sqlquery

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/fieldline-iot/fieldline/internal/golden"
)

// The test range starts and ends off every bucket grid, so the goldens show raw reads keeping it and
// aggregated reads widening it to whole buckets.
var (
	testFrom = time.Date(2026, 3, 2, 10, 7, 31, 250_000_000, time.UTC)
	testTo   = time.Date(2026, 3, 2, 16, 52, 10, 0, time.UTC)
)

// hostile is shaped like an SQL injection; it may only ever travel as a bound argument.
const hostile = "x'; DROP TABLE readings; --"

func testRequest(agg Aggregation, interval time.Duration) Request {
	return Request{Metric: "temperature", Aggregation: agg, Interval: interval, From: testFrom, To: testTo, Limit: 100}
}

// renderStatement is a Statement as the golden files hold it: the SQL text, the arguments, and the fields
// the caller reads (rollup, effective range, and how ReadRows regroups rollup rows).
func renderStatement(st Statement) string {
	var b strings.Builder
	b.WriteString("-- sql --\n")
	b.WriteString(st.SQL)
	b.WriteString("\n")
	renderArgs(&b, st.Args)
	b.WriteString("-- statement --\n")
	fmt.Fprintf(&b, "rollup: %t\n", st.Rollup)
	fmt.Fprintf(&b, "range: %s .. %s\n", st.From.Format(time.RFC3339Nano), st.To.Format(time.RFC3339Nano))
	if st.regroup != nil {
		fmt.Fprintf(&b, "regroup: width %v, aggregation %s, max input rows %d\n", st.regroup.width, st.regroup.agg, st.regroup.maxInput)
	} else {
		b.WriteString("regroup: none\n")
	}
	return b.String()
}

var allAggregations = []Aggregation{Avg, Min, Max, Last, Count, Sum}

type buildCase struct {
	name string
	req  Request
	opt  Options
}

func buildCases() []buildCase {
	var cases []buildCase
	add := func(name string, req Request, opt Options) {
		cases = append(cases, buildCase{name, req, opt})
	}
	with := func(req Request, f func(*Request)) Request { f(&req); return req }

	// Raw rows: the series index order, the exact range, filters as = or = ANY.
	add("raw", testRequest(None, 0), Options{})
	add("raw_one_device_one_sensor", with(testRequest(None, 0), func(r *Request) {
		r.Devices, r.Sensors = []string{"pico"}, []string{"dht22"}
	}), Options{})
	add("raw_devices_sensors", with(testRequest(None, 0), func(r *Request) {
		r.Devices, r.Sensors = []string{"pico", "node1"}, []string{"dht22", ""}
	}), Options{})
	add("raw_sensor_only_limit_1", with(testRequest(None, 0), func(r *Request) {
		r.Sensors, r.Limit = []string{"internal"}, 1
	}), Options{})

	// Aggregates of the raw table (30 s: no rollup is that fine): date_bin on PostgreSQL, time_bucket on
	// TimescaleDB; last differs too.
	for _, a := range allAggregations {
		add("raw30s_"+string(a)+"_plain", testRequest(a, 30*time.Second), Options{})
		add("raw30s_"+string(a)+"_timescale", testRequest(a, 30*time.Second), Options{Timescale: true})
	}
	add("raw30s_avg_devices_one_sensor_timescale", with(testRequest(Avg, 30*time.Second), func(r *Request) {
		r.Devices, r.Sensors = []string{"pico", "node1"}, []string{"dht22"}
	}), Options{Timescale: true})
	// 90 s is at least a minute but no rollup width divides it.
	add("raw90s_avg_plain", testRequest(Avg, 90*time.Second), Options{})
	// NoRollup: even a rollup's own width is aggregated from the raw table.
	add("norollup1h_avg_plain", testRequest(Avg, time.Hour), Options{NoRollup: true})
	add("norollup1h_last_timescale", testRequest(Last, time.Hour), Options{Timescale: true, NoRollup: true})

	// A rollup's own width: its rows are the buckets.
	for _, a := range allAggregations {
		add("rollup1m_"+string(a), testRequest(a, time.Minute), Options{})
	}
	add("rollup5m_avg", testRequest(Avg, 5*time.Minute), Options{})
	add("rollup1h_max", testRequest(Max, time.Hour), Options{})
	add("rollup1m_avg_one_device_sensors", with(testRequest(Avg, time.Minute), func(r *Request) {
		r.Devices, r.Sensors = []string{"pico"}, []string{"dht22", "internal"}
	}), Options{})

	// Wider buckets: rollup rows of the coarsest dividing width, regrouped in Go.
	for _, a := range allAggregations {
		add("regroup10m_"+string(a), testRequest(a, 10*time.Minute), Options{})
	}
	add("regroup2m_sum", testRequest(Sum, 2*time.Minute), Options{})
	add("regroup7m_count", testRequest(Count, 7*time.Minute), Options{})
	add("regroup2h_min", testRequest(Min, 2*time.Hour), Options{})
	add("regroup1d_last", testRequest(Last, 24*time.Hour), Options{})
	add("regroup10m_avg_devices_one_sensor", with(testRequest(Avg, 10*time.Minute), func(r *Request) {
		r.Devices, r.Sensors = []string{"pico", "node1"}, []string{"dht22"}
	}), Options{})
	return cases
}

func TestBuildGolden(t *testing.T) {
	for _, c := range buildCases() {
		t.Run(c.name, func(t *testing.T) {
			st, err := Build(c.req, c.opt)
			if err != nil {
				t.Fatal(err)
			}
			golden.Check(t, "build_"+c.name, renderStatement(st))
			if st.Rollup {
				// Rollup statements use no bucket function: the same on both databases.
				other := c.opt
				other.Timescale = !other.Timescale
				st2, err := Build(c.req, other)
				if err != nil {
					t.Fatal(err)
				}
				if st2.SQL != st.SQL || !reflect.DeepEqual(st2.Args, st.Args) {
					t.Errorf("rollup statement depends on Timescale:\n%s\n%s", st.SQL, st2.SQL)
				}
			}
		})
	}
}

// TestBuildBindsValues: the statement text does not depend on the metric, device and sensor values (they
// are bound), and a value shaped like an injection is an argument, never SQL text.
func TestBuildBindsValues(t *testing.T) {
	for _, c := range buildCases() {
		t.Run(c.name, func(t *testing.T) {
			req := c.req
			req.Metric = hostile
			req.Devices = replaceAll(req.Devices, hostile)
			req.Sensors = replaceAll(req.Sensors, hostile)
			if len(req.Devices) == 0 {
				req.Devices = []string{hostile}
			}
			benign := req
			benign.Metric = "m"
			benign.Devices = replaceAll(req.Devices, "d")
			benign.Sensors = replaceAll(req.Sensors, "s")
			st, err := Build(req, c.opt)
			if err != nil {
				t.Fatal(err)
			}
			ref, err := Build(benign, c.opt)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(st.SQL, hostile) || strings.Contains(st.SQL, "DROP") {
				t.Fatalf("a value reached the SQL text:\n%s", st.SQL)
			}
			if st.SQL != ref.SQL {
				t.Errorf("the SQL text depends on label values:\n%s\n%s", st.SQL, ref.SQL)
			}
			if st.Args[0] != hostile {
				t.Errorf("metric not bound as $1: %v", st.Args)
			}
			found := false
			for _, a := range st.Args[1:] {
				switch v := a.(type) {
				case string:
					found = found || v == hostile
				case []string:
					found = found || v[0] == hostile
				}
			}
			if !found {
				t.Errorf("device filter value not among the arguments: %v", st.Args)
			}
		})
	}
}

func replaceAll(values []string, v string) []string {
	if len(values) == 0 {
		return nil
	}
	out := make([]string, len(values))
	for i := range out {
		out[i] = v
	}
	return out
}

func TestBuildErrors(t *testing.T) {
	ok := testRequest(Avg, 5*time.Minute)
	with := func(f func(*Request)) Request { r := ok; f(&r); return r }
	for _, c := range []struct {
		name string
		req  Request
		want string
	}{
		{"no metric", with(func(r *Request) { r.Metric = "" }), "builder query: metric is required"},
		{"empty range", with(func(r *Request) { r.To = r.From }),
			"builder query: empty time range 2026-03-02T10:07:31Z .. 2026-03-02T10:07:31Z"},
		{"reversed range", with(func(r *Request) { r.From, r.To = testTo, testFrom }),
			"builder query: empty time range 2026-03-02T16:52:10Z .. 2026-03-02T10:07:31Z"},
		{"zero limit", with(func(r *Request) { r.Limit = 0 }), "builder query: row limit must be positive"},
		{"negative limit", with(func(r *Request) { r.Limit = -5 }), "builder query: row limit must be positive"},
		{"no interval", with(func(r *Request) { r.Interval = 0 }), "builder query: bucket width 0s: must be positive"},
		{"negative interval", with(func(r *Request) { r.Interval = -time.Minute }), "builder query: bucket width -1m0s: must be positive"},
		{"interval under 1ms", with(func(r *Request) { r.Interval = 500 * time.Microsecond }),
			"builder query: bucket width 500µs: must be at least 1ms"},
		{"interval finer than PostgreSQL", with(func(r *Request) { r.Interval = time.Millisecond + time.Nanosecond }),
			"builder query: bucket width 1.000001ms: must be a whole number of microseconds (PostgreSQL's resolution)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			st, err := Build(c.req, Options{})
			if err == nil {
				t.Fatalf("accepted; SQL %s", st.SQL)
			}
			if err.Error() != c.want {
				t.Errorf("error %q\n want %q", err, c.want)
			}
		})
	}
	// Raw reads need no interval.
	if _, err := Build(with(func(r *Request) { r.Aggregation, r.Interval = None, 0 }), Options{}); err != nil {
		t.Errorf("raw read without interval: %v", err)
	}
}

func TestParseAggregation(t *testing.T) {
	for in, want := range map[string]Aggregation{
		"": None, "none": None, "raw": None, " RAW ": None, "None": None,
		"avg": Avg, "AVG": Avg, " avg\t": Avg, "mean": Avg, "Average": Avg,
		"min": Min, "max": Max, "last": Last, "count": Count, "sum": Sum, "Sum": Sum,
	} {
		got, err := ParseAggregation(in)
		if err != nil || got != want {
			t.Errorf("ParseAggregation(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"median", "avg(value)", "first", "a vg", "avg;", hostile} {
		got, err := ParseAggregation(in)
		want := fmt.Sprintf("aggregation %q: want avg, min, max, last, count, sum or none", in)
		if err == nil || err.Error() != want {
			t.Errorf("ParseAggregation(%q) = %q, %v; want error %q", in, got, err, want)
		}
	}
}
