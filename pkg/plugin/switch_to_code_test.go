package plugin

import (
	"fmt"
	"regexp"
	"testing"
	"time"
)

// TestSwitchToCodeSQL: "switch to code" in the query editor seeds code SQL with the aggregate expressions of
// src/preview.ts (CODE_AGG). Each of them runs on plain PostgreSQL (TimescaleDB's last() does not) and gives the
// builder's series, so a query switched to code shows what it showed before.
func TestSwitchToCodeSQL(t *testing.T) {
	src := readFrontend(t, "src/preview.ts")
	block := regexp.MustCompile(`(?s)const CODE_AGG[^{]*\{(.*?)\};`).FindStringSubmatch(src)
	if block == nil {
		t.Fatal("src/preview.ts: CODE_AGG not found")
	}
	exprs := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^\s+([a-z]+): '([^']*)',`).FindAllStringSubmatch(block[1], -1) {
		exprs[m[1]] = m[2]
	}
	if len(exprs) != 7 {
		t.Fatalf("CODE_AGG: want 7 aggregations, got %v", exprs)
	}
	rows := dataset()
	pgURL, _ := newPostgres(t, rows)
	d := newDS(t, settingsFor(t, pgURL, nil, nil))
	from, to := base.Add(10*time.Minute), base.Add(70*time.Minute)
	for _, agg := range []string{"avg", "min", "max", "last", "count", "sum"} {
		t.Run(agg, func(t *testing.T) {
			builder := runOne(t, d, dq(t, "A", map[string]any{"source": "sql", "mode": "builder", "metric": "temperature",
				"aggregation": agg, "interval": "5m"}, from, to, 5*time.Minute))
			// The shape builderToRawSql writes.
			code := runOne(t, d, dq(t, "A", map[string]any{"source": "sql", "mode": "code", "rawSql": fmt.Sprintf(
				"SELECT $__timeGroupAlias(time, 5m), device, sensor, %s AS value\nFROM readings\n"+
					"WHERE metric = 'temperature' AND $__timeFilter(time)\nGROUP BY 1, 2, 3\nORDER BY 1", exprs[agg])},
				from, to, 5*time.Minute))
			if builder.Error != nil || code.Error != nil {
				t.Fatalf("builder: %v; code (%s): %v", builder.Error, exprs[agg], code.Error)
			}
			want := seriesOf(t, builder.Frames)
			if len(want) != 3 {
				t.Fatalf("want 3 temperature series from the builder, got %d", len(want))
			}
			sameSeries(t, "builder vs switched to code", want, seriesOf(t, code.Frames), 1e-9)
		})
	}
}
