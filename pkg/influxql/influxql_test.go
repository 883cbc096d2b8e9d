package influxql

import (
	"strings"
	"testing"
	"time"
)

func TestExpand(t *testing.T) {
	from, to := time.UnixMilli(1_700_000_000_000), time.UnixMilli(1_700_003_600_000)
	got := Expand(`SELECT mean("value") FROM "temperature" WHERE $timeFilter AND "node" = '$timeFilter' GROUP BY time($__interval), "node" -- $__interval_ms`,
		Vars{From: from, To: to, Interval: 10 * time.Second})
	want := `SELECT mean("value") FROM "temperature" WHERE time >= 1700000000000ms and time <= 1700003600000ms AND "node" = '$timeFilter' GROUP BY time(10s), "node" -- 10000`
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if got := Expand("GROUP BY time($interval)", Vars{Interval: 1500 * time.Millisecond}); got != "GROUP BY time(1500ms)" {
		t.Errorf("$interval: %s", got)
	}
}

func TestCheckReadOnly(t *testing.T) {
	for _, ok := range []string{
		`SELECT mean("value") FROM "temperature" WHERE time > now() - 1h GROUP BY "node"`,
		`select * from "into"`,
		`SELECT * FROM m WHERE tag = 'a; DROP DATABASE x'`,
		`SHOW TAG VALUES FROM "temperature" WITH KEY = "node"; SHOW MEASUREMENTS`,
		"SELECT 1 -- ; DROP DATABASE x\n",
		`SELECT "value" FROM m WHERE "x" = 'it\'s; into'`,
	} {
		if err := CheckReadOnly(ok); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
	for _, bad := range []string{
		``, `   ;  `,
		`DROP DATABASE telemetry`,
		`SELECT * INTO "copy" FROM "temperature"`,
		`select mean(value) into b from a group by *`,
		`SHOW DATABASES; DROP DATABASE x`,
		`SELECT 1 /* ; */; DELETE FROM m`,
		`CREATE USER x WITH PASSWORD 'y' WITH ALL PRIVILEGES`,
		`GRANT ALL TO x`,
		`KILL QUERY 1`,
		`SELECT * FROM m; ` + strings.Repeat("SELECT 1;", MaxStatements),
	} {
		if err := CheckReadOnly(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func FuzzCheckReadOnly(f *testing.F) {
	f.Add(`SELECT * INTO x FROM y`)
	f.Add(`SHOW DATABASES; DROP DATABASE x`)
	f.Add(`SELECT 'a''b' FROM "c""d"`)
	f.Fuzz(func(t *testing.T, q string) {
		if CheckReadOnly(q) != nil {
			return
		}
		// Whatever passes has only SELECT/SHOW statements and no unquoted INTO.
		for _, st := range splitStatements(stripComments(q)) {
			w := keywords(st)
			if len(w) == 0 || (w[0] != "SELECT" && w[0] != "SHOW") {
				t.Fatalf("%q passed with statement %q", q, st)
			}
			for _, x := range w {
				if x == "INTO" {
					t.Fatalf("%q passed with INTO", q)
				}
			}
		}
		_ = Expand(q, Vars{})
	})
}

// TestMacrosExpand: every listed macro is replaced.
func TestMacrosExpand(t *testing.T) {
	for _, m := range Macros {
		if got := Expand(m, Vars{From: time.Unix(1, 0), To: time.Unix(2, 0), Interval: time.Second}); strings.Contains(got, "$") {
			t.Errorf("%s not expanded: %s", m, got)
		}
	}
}
