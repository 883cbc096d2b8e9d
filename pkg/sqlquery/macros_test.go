package sqlquery

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/data"
	"github.com/grafana/grafana-plugin-sdk-go/data/sqlutil"

	"github.com/fieldline-iot/fieldline/internal/golden"
)

// codeQuery is a code query over the test range (unix 1772446051.25 .. 1772470330) with a 5-minute interval.
func codeQuery(sql string) *sqlutil.Query {
	return &sqlutil.Query{RawSQL: sql, Interval: 5 * time.Minute, TimeRange: backend.TimeRange{From: testFrom, To: testTo}}
}

func renderInterpolation(in, out string, fill *Fill) string {
	var b strings.Builder
	fmt.Fprintf(&b, "-- query --\n%s\n-- sql --\n%s\n-- fill --\n", in, out)
	if fill == nil {
		b.WriteString("none\n")
		return b.String()
	}
	mode := map[data.FillMode]string{data.FillModePrevious: "previous", data.FillModeNull: "null", data.FillModeValue: "value"}[fill.Missing.Mode]
	fmt.Fprintf(&b, "mode %s, value %v, interval %v\n", mode, fill.Missing.Value, fill.Interval)
	return b.String()
}

// TestInterpolateGolden covers every macro of macros.go, on plain PostgreSQL and on TimescaleDB where the
// output differs (the $__timeGroup family).
func TestInterpolateGolden(t *testing.T) {
	for _, c := range []struct {
		name      string
		sql       string
		timescale bool
	}{
		{"time", "SELECT $__time(ts), value FROM readings", false},
		{"time_epoch", "SELECT $__timeEpoch(ts), value FROM readings", false},
		{"time_filter", "SELECT time, value FROM readings WHERE $__timeFilter(time) AND metric = 'temperature'", false},
		{"time_from_to", "SELECT $__timeFrom(), $__timeTo(), $__timeFrom, $__timeTo", false},
		{"time_group_plain", "SELECT $__timeGroup(time, '5m') AS t, avg(value) FROM readings GROUP BY 1", false},
		{"time_group_timescale", "SELECT $__timeGroup(time, '5m') AS t, avg(value) FROM readings GROUP BY 1", true},
		{"time_group_interval", "SELECT $__timeGroup(time, $__interval), $__timeGroup(time, auto)", false},
		{"time_group_units", `SELECT $__timeGroup(time, 1500ms), $__timeGroup(time, "90s"), $__timeGroup(time, 1h), $__timeGroup(time, 1d)`, true},
		{"time_group_expression", "SELECT $__timeGroup(date_trunc('second', time), 10s) FROM readings", false},
		{"time_group_fill_null", "SELECT $__timeGroup(time, 1m, NULL), avg(value) FROM readings GROUP BY 1", false},
		{"time_group_fill_previous", "SELECT $__timeGroup(time, 1m, previous), avg(value) FROM readings GROUP BY 1", true},
		{"time_group_fill_value", "SELECT $__timeGroup(time, $__interval, -2.5), avg(value) FROM readings GROUP BY 1", false},
		{"time_group_alias_plain", "SELECT $__timeGroupAlias(time, 15m), max(value) FROM readings GROUP BY 1", false},
		{"time_group_alias_fill_timescale", "SELECT $__timeGroupAlias(time, 15m, 0), max(value) FROM readings GROUP BY 1", true},
		{"unix_epoch_filter", "SELECT ts, v FROM legacy WHERE $__unixEpochFilter(ts)", false},
		{"unix_epoch_from_to", "SELECT $__unixEpochFrom(), $__unixEpochTo()", false},
		{"unix_epoch_group", "SELECT $__unixEpochGroup(ts, 5m), $__unixEpochGroup(ts, 1500ms) FROM legacy", false},
		{"unix_epoch_group_alias", "SELECT $__unixEpochGroupAlias(ts, $__interval), avg(v) FROM legacy GROUP BY 1", false},
		{"interval", "SELECT '$__interval'::interval, $__interval_ms", false},
		{"no_macro", "SELECT 1 -- $_not_a_macro, __timeFilter(x)", false},
		{"dashboard", `SELECT $__timeGroupAlias(time, $__interval, previous), device, avg(value) AS value
FROM readings
WHERE metric = 'temperature' AND $__timeFilter(time)
GROUP BY 1, 2
ORDER BY 1`, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, fill, err := Interpolate(codeQuery(c.sql), c.timescale)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(out, "$__") {
				t.Errorf("macro left unexpanded: %s", out)
			}
			golden.Check(t, "interpolate_"+c.name, renderInterpolation(c.sql, out, fill))
		})
	}
}

// TestInterpolateIntervalMsInTimeGroup: Interpolate's doc comment promises $__interval_ms as the interval of
// $__timeGroup, and intervalArg handles the name, but sqlutil.Interpolate applies the longer macro name
// interval_ms before timeGroup, so $__timeGroup receives "300000" (no unit) and fails.
func TestInterpolateIntervalMsInTimeGroup(t *testing.T) {
	t.Skip("known bug: $__interval_ms is expanded before $__timeGroup sees it (reported with the tests of issue t17)")
	want, _, err := Interpolate(codeQuery("SELECT $__timeGroup(time, $__interval)"), false)
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := Interpolate(codeQuery("SELECT $__timeGroup(time, $__interval_ms)"), false)
	if err != nil || got != want {
		t.Errorf("$__interval_ms: %q, %v; want %q", got, err, want)
	}
}

func TestInterpolateErrors(t *testing.T) {
	for _, c := range []struct {
		sql      string
		interval time.Duration
		want     string
	}{
		{"SELECT $__time FROM t", 0, "macro $__time needs 1 argument(s), got 0"},
		{"SELECT $__time() FROM t", 0, "macro $__time needs 1 argument(s), got 1"},
		{"SELECT $__timeEpoch() FROM t", 0, "macro $__timeEpoch needs 1 argument(s), got 1"},
		{"WHERE $__timeFilter()", 0, "macro $__timeFilter needs 1 argument(s), got 1"},
		{"WHERE $__timeFilter(time", 0, "missing close bracket"},
		{"SELECT $__timeGroup(time)", 0, "macro $__timeGroup needs 2 argument(s), got 1"},
		{"SELECT $__timeGroupAlias(time)", 0, "macro $__timeGroupAlias needs 2 argument(s), got 1"},
		{"SELECT $__timeGroup(time, 5m, previous, 1)", 0, "macro $__timeGroup takes a column, an interval and an optional fill value"},
		{"SELECT $__timeGroup(time, 5 parsecs)", 0, `macro timeGroup: interval "5 parsecs"`},
		{"SELECT $__timeGroup(time, 0s)", 0, "macro timeGroup: bucket width 0s: must be positive"},
		{"SELECT $__timeGroup(time, $__interval)", 0, "macro timeGroup: the query has no interval"},
		{"SELECT $__timeGroupAlias(time, $__interval_ms)", 0, "macro timeGroupAlias: the query has no interval"},
		{"SELECT $__timeGroup(time, 5m, zero)", time.Minute, `macro $__timeGroup: fill value "zero": want NULL, previous or a number`},
		// An argument is parsed as a duration, never copied into the SQL.
		{"SELECT $__timeGroup(time, 5m' OR '1'='1)", time.Minute, `macro timeGroup: interval "5m' OR '1'='1"`},
		{"SELECT $__unixEpochFilter()", 0, "macro $__unixEpochFilter needs 1 argument(s), got 1"},
		{"SELECT $__unixEpochGroup(ts)", 0, "macro $__unixEpochGroup needs a column and an interval"},
		{"SELECT $__unixEpochGroupAlias(ts, $__interval)", 0, "macro unixEpochGroupAlias: the query has no interval"},
		{"SELECT $__unixEpochGroup(ts, 1 fortnight)", time.Minute, `macro unixEpochGroup: interval "1 fortnight"`},
		{"SELECT * FROM $__table", time.Minute, "macro $__table is not supported by this data source"},
		{"SELECT $__column FROM t", time.Minute, "macro $__column is not supported by this data source"},
	} {
		q := codeQuery(c.sql)
		q.Interval = c.interval
		out, fill, err := Interpolate(q, false)
		if err == nil {
			t.Errorf("%s: accepted as %q (fill %v)", c.sql, out, fill)
			continue
		}
		if !strings.HasPrefix(err.Error(), "interpolate macros: ") || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s:\n error %q\n  want %q", c.sql, err, c.want)
		}
		if out != "" || fill != nil {
			t.Errorf("%s: error with output %q, fill %v", c.sql, out, fill)
		}
	}
}

// TestMacroNamesInterpolate: every name MacroNames lists (the editor's completion list is checked against it)
// is expanded by Interpolate, and the SDK defaults left out of it fail.
func TestMacroNamesInterpolate(t *testing.T) {
	for _, name := range MacroNames() {
		in := "SELECT $__" + name + "(time, '1m') FROM readings"
		out, _, err := Interpolate(codeQuery(in), true)
		if err != nil {
			t.Errorf("$__%s: %v", name, err)
			continue
		}
		if strings.Contains(out, "$__"+name) {
			t.Errorf("$__%s is not expanded: %s", name, out)
		}
	}
	for _, name := range unsupportedMacros {
		if _, _, err := Interpolate(codeQuery("SELECT $__"+name+"(x)"), true); err == nil {
			t.Errorf("$__%s: want an error", name)
		}
	}
}
