package fluxquery

import (
	"fmt"
	"strings"
)

// Code is the code Flux a builder request becomes when the user switches the editor to code: Grafana's v.*
// variables stand in for the bucket, the time range and, without a fixed interval, the window, so the text
// follows the dashboard's range from then on. Aggregates use aggregateWindow stamped with the window start
// (the builder's stamping); From, To and Limit are not used.
func Code(req Request) string {
	var b strings.Builder
	b.WriteString("from(bucket: v.bucket)\n")
	b.WriteString("  |> range(start: v.timeRangeStart, stop: v.timeRangeStop)\n")
	fmt.Fprintf(&b, "  |> filter(fn: (r) => r._measurement == %s and r._field == %s)\n", String(req.Metric), String(req.Schema.Field()))
	// InfluxDB 1.8 reads the stop bound inclusively; the filter makes the range half-open everywhere.
	b.WriteString("  |> filter(fn: (r) => r._time < v.timeRangeStop)\n")
	writeSelector(&b, req.Schema.Device(), req.Devices)
	writeSelector(&b, req.Schema.Sensor(), req.Sensors)
	fmt.Fprintf(&b, "  |> group(columns: %s)\n", req.Schema.groupColumns())
	b.WriteString("  |> sort(columns: [\"_time\"])\n")
	if fn, ok := aggFunc[req.Aggregation]; ok {
		every := "v.windowPeriod"
		if req.Interval > 0 {
			every = Duration(req.Interval)
		}
		fmt.Fprintf(&b, "  |> aggregateWindow(every: %s, fn: %s, timeSrc: \"_start\", createEmpty: false)\n", every, fn)
	}
	fmt.Fprintf(&b, "  |> keep(columns: [\"_time\", \"_value\", %s)", strings.TrimPrefix(req.Schema.groupColumns(), "["))
	return b.String()
}
