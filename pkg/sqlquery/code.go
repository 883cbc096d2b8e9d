package sqlquery

import (
	"fmt"
	"strings"
	"time"

	"github.com/fieldline-iot/fieldline/internal/tablemap"
)

// codeAgg are the aggregates "switch to code" writes: they run on plain PostgreSQL and on TimescaleDB alike
// (TimescaleDB's last() does not exist on plain PostgreSQL).
var codeAgg = map[Aggregation]string{
	None:  "value",
	Avg:   "avg(value)",
	Min:   "min(value)",
	Max:   "max(value)",
	Last:  "(array_agg(value ORDER BY time DESC))[1]",
	Count: "count(value)",
	Sum:   "sum(value)",
}

// CodeSQL is the code SQL a builder request becomes when the user switches the editor to code: the user's own
// text from then on, so values are written as quoted literals and Grafana's macros stand in for the time range
// and, without a fixed interval, for the bucket width. It reads the readings table (the rollups are the
// builder's business) and runs on plain PostgreSQL and TimescaleDB. From, To and Limit are not used.
func CodeSQL(req Request) string {
	where := []string{"metric = " + Literal(req.Metric)}
	if in := literalList(req.Devices); in != "" {
		where = append(where, "device IN ("+in+")")
	}
	if in := literalList(req.Sensors); in != "" {
		where = append(where, "sensor IN ("+in+")")
	}
	where = append(where, "$__timeFilter(time)")
	cond := strings.Join(where, " AND ")
	if req.Aggregation == None {
		return "SELECT time, device, sensor, value\nFROM readings\nWHERE " + cond + "\nORDER BY time"
	}
	interval := "$__interval"
	if req.Interval > 0 {
		interval = GrafanaInterval(req.Interval)
	}
	agg, ok := codeAgg[req.Aggregation]
	if !ok {
		agg = codeAgg[Avg]
	}
	return fmt.Sprintf("SELECT $__timeGroupAlias(time, %s), device, sensor, %s AS value\nFROM readings\nWHERE %s\nGROUP BY 1, 2, 3\nORDER BY 1",
		interval, agg, cond)
}

// Literal quotes s as a PostgreSQL string literal (tablemap.Literal).
func Literal(s string) string { return tablemap.Literal(s) }

func literalList(values []string) string {
	q := make([]string, len(values))
	for i, v := range values {
		q[i] = Literal(v)
	}
	return strings.Join(q, ", ")
}

// GrafanaInterval writes d the way Grafana's interval macros and settings read it (5m, 90s, 250ms, 0s).
func GrafanaInterval(d time.Duration) string {
	switch {
	case d == 0:
		return "0s"
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	case d%time.Second == 0:
		return fmt.Sprintf("%ds", d/time.Second)
	}
	return fmt.Sprintf("%dms", d/time.Millisecond)
}
