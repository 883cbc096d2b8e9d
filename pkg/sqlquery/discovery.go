package sqlquery

import (
	"fmt"
	"strconv"
	"strings"
)

// Label is a series label the discovery statements list.
type Label string

// Discoverable labels.
const (
	Metric Label = "metric"
	Device Label = "device"
	Sensor Label = "sensor"
)

// ParseLabel accepts metric, device, sensor and their plurals.
func ParseLabel(s string) (Label, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "metric", "metrics":
		return Metric, nil
	case "device", "devices":
		return Device, nil
	case "sensor", "sensors":
		return Sensor, nil
	}
	return "", fmt.Errorf("label %q: want metrics, devices or sensors", s)
}

// Discovery lists the distinct values of one label among the series that match the filters.
type Discovery struct {
	Label   Label
	Metrics []string // filters; empty: no filter
	Devices []string
	Sensors []string
	Limit   int // values returned at most

	// MaxSeries bounds the loose index scan (series visited).
	MaxSeries int
	// Recent restricts the scan to readings of the last Recent interval (PostgreSQL interval text, e.g.
	// "7 days"); "" scans every reading. Ignored with Catalogue.
	Recent string
	// Catalogue reads the series catalogue readings_series (schema 9+: every series ever written, kept by the
	// rollup trigger) instead of scanning readings: the same answer on both variants, whatever the age of the
	// series and whether its chunks are compressed or dropped.
	Catalogue bool
	// Table, when set, is the user's own table: the values are read from its newest MaxScan rows of the Recent
	// interval (there is no series index to walk on a mapped table).
	Table   *Table
	MaxScan int
	// States lists the series of the states table (its series index, the same loose index scan) instead of
	// readings; Catalogue and Table are then ignored.
	States bool
}

// DiscoverySQL returns a statement listing the label's values (one text column, sorted, at most Limit rows).
//
// It walks the distinct (metric, device, sensor) triples with a recursive CTE, a "loose index scan" over the
// series index readings_series_time_idx (metric, device, sensor, time DESC): each step is one index descent to
// the next triple, so the cost grows with the number of series, not rows. A single metric filter becomes the
// index prefix; the other filters apply to the (few) triples found.
func DiscoverySQL(d Discovery) (string, []any, error) {
	switch d.Label {
	case Metric, Device, Sensor:
	default:
		return "", nil, fmt.Errorf("discovery: unknown label %q", d.Label)
	}
	if d.Limit <= 0 || d.MaxSeries <= 0 {
		return "", nil, fmt.Errorf("discovery: limits must be positive")
	}
	relation := "readings"
	switch {
	case d.States:
		relation = StatesTable
	case d.Table != nil:
		return scanSQL(d)
	case d.Catalogue:
		return catalogueSQL(d)
	}
	var args []any
	param := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	var inner []string // conditions inside each index descent
	if len(d.Metrics) == 1 {
		inner = append(inner, "r.metric = "+param(d.Metrics[0]))
	}
	if d.Recent != "" {
		inner = append(inner, "r.time > now() - "+param(d.Recent)+"::interval")
	}
	innerWhere := func(extra string) string {
		conds := append([]string{}, inner...)
		if extra != "" {
			conds = append(conds, extra)
		}
		if len(conds) == 0 {
			return ""
		}
		return " WHERE " + strings.Join(conds, " AND ")
	}
	var outer []string
	addOuter := func(col string, values []string) {
		switch {
		case len(values) == 0:
		case col == "metric" && len(values) == 1:
			// already the index prefix
		default:
			outer = append(outer, "s."+col+" = ANY("+param(values)+"::text[])")
		}
	}
	addOuter("metric", d.Metrics)
	addOuter("device", d.Devices)
	addOuter("sensor", d.Sensors)
	maxSeries := param(d.MaxSeries)
	limit := param(d.Limit)

	var b strings.Builder
	b.WriteString("WITH RECURSIVE s(metric, device, sensor, n) AS (\n")
	b.WriteString("  (SELECT r.metric, r.device, r.sensor, 1 FROM " + relation + " r")
	b.WriteString(innerWhere(""))
	b.WriteString(" ORDER BY r.metric, r.device, r.sensor LIMIT 1)\n")
	b.WriteString("  UNION ALL\n")
	b.WriteString("  SELECT x.metric, x.device, x.sensor, s.n + 1 FROM s CROSS JOIN LATERAL (\n")
	b.WriteString("    SELECT r.metric, r.device, r.sensor FROM " + relation + " r")
	// With the metric fixed, the row comparison covers (device, sensor) only: btree then starts the descent
	// at (metric, device, sensor); "metric = $1 AND (metric, device, sensor) > (...)" would restart every
	// step at the metric's first entry.
	next := "(r.metric, r.device, r.sensor) > (s.metric, s.device, s.sensor)"
	if len(d.Metrics) == 1 {
		next = "(r.device, r.sensor) > (s.device, s.sensor)"
	}
	b.WriteString(innerWhere(next))
	b.WriteString("\n    ORDER BY r.metric, r.device, r.sensor LIMIT 1) x\n")
	b.WriteString("  WHERE s.n < " + maxSeries + "\n)\n")
	col := string(d.Label)
	b.WriteString("SELECT DISTINCT s." + col + " FROM s")
	if len(outer) > 0 {
		b.WriteString(" WHERE " + strings.Join(outer, " AND "))
	}
	b.WriteString(" ORDER BY 1 LIMIT " + limit)
	return b.String(), args, nil
}

// catalogueSQL lists the label's values from readings_series (primary key metric, device, sensor; a device index):
// at most MaxSeries series are read, in key order, then the distinct values sorted.
func catalogueSQL(d Discovery) (string, []any, error) {
	var args []any
	param := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	conds := labelConds(nil, param, d)
	var b strings.Builder
	col := string(d.Label)
	b.WriteString("SELECT DISTINCT s." + col + " FROM (SELECT metric, device, sensor FROM readings_series")
	if len(conds) > 0 {
		b.WriteString(" WHERE " + strings.Join(conds, " AND "))
	}
	b.WriteString(" ORDER BY metric, device, sensor LIMIT " + param(d.MaxSeries) + ") s")
	b.WriteString(" ORDER BY 1 LIMIT " + param(d.Limit))
	return b.String(), args, nil
}

// scanSQL lists the label's values from the newest MaxScan rows of a mapped table (of the Recent interval), the
// filters applied.
func scanSQL(d Discovery) (string, []any, error) {
	if d.MaxScan <= 0 {
		return "", nil, fmt.Errorf("discovery: MaxScan must be positive")
	}
	var args []any
	param := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	var conds []string
	if d.Recent != "" {
		conds = append(conds, "time > now() - "+param(d.Recent)+"::interval")
	}
	conds = labelConds(conds, param, d)
	var b strings.Builder
	col := string(d.Label)
	b.WriteString("SELECT DISTINCT s." + col + " FROM (SELECT metric, device, sensor FROM " + d.Table.Relation())
	if len(conds) > 0 {
		b.WriteString(" WHERE " + strings.Join(conds, " AND "))
	}
	b.WriteString(" ORDER BY time DESC LIMIT " + param(d.MaxScan) + ") s")
	b.WriteString(" ORDER BY 1 LIMIT " + param(d.Limit))
	return b.String(), args, nil
}

// labelConds appends the discovery's label filters ("col = $n", or "= ANY($n)" for lists) to conds.
func labelConds(conds []string, param func(any) string, d Discovery) []string {
	for _, f := range []struct {
		col    string
		values []string
	}{{"metric", d.Metrics}, {"device", d.Devices}, {"sensor", d.Sensors}} {
		switch len(f.values) {
		case 0:
		case 1:
			conds = append(conds, f.col+" = "+param(f.values[0]))
		default:
			conds = append(conds, f.col+" = ANY("+param(f.values)+"::text[])")
		}
	}
	return conds
}
