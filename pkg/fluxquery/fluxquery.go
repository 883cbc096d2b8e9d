// Package fluxquery builds Fieldline's builder queries in Flux and expands the v.* variables of code queries.
//
// InfluxDB layout: measurement = metric, tags device and sensor (and unit), field "value" as the ingester writes
// them, or the tags and field a Schema names for data written by others. Flux has no bound
// parameters on InfluxDB 1.8/2.x OSS, so every user value becomes a string literal through String, which
// escapes everything Flux's lexer treats specially; values never reach the query any other way.
package fluxquery

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/fieldline-iot/fieldline/internal/timebucket"
)

// String returns s as a Flux string literal: backslash, double quote and "${" (interpolation) are escaped,
// and so are control characters (as \n, \r, \t or \xNN... for the others, which Flux reads as UTF-8 bytes).
func String(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\':
			b.WriteString(`\\`)
		case c == '"':
			b.WriteString(`\"`)
		case c == '$' && i+1 < len(s) && s[i+1] == '{':
			b.WriteString(`\${`)
			i++
		case c == '\n':
			b.WriteString(`\n`)
		case c == '\r':
			b.WriteString(`\r`)
		case c == '\t':
			b.WriteString(`\t`)
		case c < 0x20 || c == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// Time returns t as a Flux time literal (RFC 3339, UTC, nanoseconds when needed).
func Time(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// Duration returns d as a Flux duration literal ("60000ms", "1500us", "7ns").
func Duration(d time.Duration) string {
	switch {
	case d%time.Millisecond == 0:
		return strconv.FormatInt(d.Milliseconds(), 10) + "ms"
	case d%time.Microsecond == 0:
		return strconv.FormatInt(d.Microseconds(), 10) + "us"
	}
	return strconv.FormatInt(d.Nanoseconds(), 10) + "ns"
}

// Aggregation names the builder aggregations (same names as the SQL builder).
type Aggregation string

// aggFunc maps builder aggregations to Flux functions.
var aggFunc = map[Aggregation]string{
	"avg": "mean", "min": "min", "max": "max", "last": "last", "count": "count", "sum": "sum",
}

// Schema names the tags and the field of the builder's series: the zero value is the ingester's layout (tags
// device and sensor, field value); data written by others names its own (the second field report: device tag
// node, no sensor tag).
type Schema struct {
	DeviceTag, SensorTag, ValueField string
	// LabelTags are further tags that tell series apart (e.g. location): kept as labels, never merged.
	LabelTags []string
}

// groupColumns are the columns one series is made of, as a Flux array.
func (s Schema) groupColumns() string {
	cols := []string{String(s.Device()), String(s.Sensor())}
	for _, t := range s.LabelTags {
		cols = append(cols, String(t))
	}
	return "[" + strings.Join(cols, ", ") + "]"
}

// Device, Sensor and Field return the names in use (the defaults for empty ones).
func (s Schema) Device() string { return or(s.DeviceTag, "device") }
func (s Schema) Sensor() string { return or(s.SensorTag, "sensor") }
func (s Schema) Field() string  { return or(s.ValueField, "value") }

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

var identifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Column returns a record's column in Flux: r.name for identifiers, r["…"] otherwise.
func Column(name string) string {
	if identifier.MatchString(name) {
		return "r." + name
	}
	return "r[" + String(name) + "]"
}

// Request is one builder query.
type Request struct {
	Schema      Schema
	Bucket      string
	Metric      string
	Devices     []string // empty: all
	Sensors     []string // empty: all
	Aggregation Aggregation
	Interval    time.Duration
	From, To    time.Time
	Limit       int64 // rows per series at most (Flux limit()); 0: none
}

// Query is a built Flux query and the effective range (whole buckets when aggregating).
type Query struct {
	Flux     string
	From, To time.Time
}

// Build returns the Flux for a builder request. Output: one table per (device, sensor) with columns _time,
// _value, device, sensor, time ascending; aggregated rows are stamped with their bucket start on the
// timebucket grid, like the SQL builder's.
func Build(req Request) (Query, error) {
	if req.Bucket == "" {
		return Query{}, errors.New("flux builder: bucket is not configured")
	}
	if req.Metric == "" {
		return Query{}, errors.New("flux builder: metric is required")
	}
	if !req.To.After(req.From) {
		return Query{}, errors.New("flux builder: empty time range")
	}
	q := Query{From: req.From.UTC(), To: req.To.UTC()}
	fn := ""
	if req.Aggregation != "" {
		var ok bool
		if fn, ok = aggFunc[req.Aggregation]; !ok {
			return Query{}, fmt.Errorf("flux builder: unknown aggregation %q", req.Aggregation)
		}
		if err := timebucket.Validate(req.Interval); err != nil {
			return Query{}, fmt.Errorf("flux builder: %w", err)
		}
		q.From, q.To = timebucket.Range(req.From, req.To, req.Interval)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "from(bucket: %s)\n", String(req.Bucket))
	fmt.Fprintf(&b, "  |> range(start: %s, stop: %s)\n", Time(q.From), Time(q.To))
	fmt.Fprintf(&b, "  |> filter(fn: (r) => r._measurement == %s and r._field == %s)\n", String(req.Metric), String(req.Schema.Field()))
	// InfluxDB 1.8 reads the stop bound inclusively; the explicit filter makes the range half-open everywhere.
	fmt.Fprintf(&b, "  |> filter(fn: (r) => r._time < %s)\n", Time(q.To))
	writeSelector(&b, req.Schema.Device(), req.Devices)
	writeSelector(&b, req.Schema.Sensor(), req.Sensors)
	// One table per (device, sensor) whatever other tags (unit) split the stored series, time ascending.
	fmt.Fprintf(&b, "  |> group(columns: %s)\n", req.Schema.groupColumns())
	b.WriteString("  |> sort(columns: [\"_time\"])\n")
	if fn != "" {
		// window() with an offset puts the windows on the shared grid (aggregateWindow has no offset on
		// InfluxDB 1.8); each aggregate row is stamped with its window start.
		fmt.Fprintf(&b, "  |> window(every: %s, offset: %s)\n", Duration(req.Interval), Duration(timebucket.Offset(req.Interval)))
		fmt.Fprintf(&b, "  |> %s()\n", fn)
		b.WriteString("  |> duplicate(column: \"_start\", as: \"_time\")\n")
		b.WriteString("  |> window(every: inf)\n")
		if req.Aggregation == "count" {
			b.WriteString("  |> toFloat()\n")
		}
	}
	if req.Limit > 0 {
		fmt.Fprintf(&b, "  |> limit(n: %d)\n", req.Limit+1)
	}
	fmt.Fprintf(&b, "  |> keep(columns: [\"_time\", \"_value\", %s)\n", strings.TrimPrefix(req.Schema.groupColumns(), "["))
	q.Flux = b.String()
	return q, nil
}

func writeSelector(b *strings.Builder, tag string, values []string) {
	if len(values) == 0 {
		return
	}
	b.WriteString("  |> filter(fn: (r) => ")
	for i, v := range values {
		if i > 0 {
			b.WriteString(" or ")
		}
		if v == "" {
			// The ingester's "no sensor" is a missing tag in InfluxDB (tag values cannot be empty).
			fmt.Fprintf(b, "not exists %s", Column(tag))
			continue
		}
		fmt.Fprintf(b, "%s == %s", Column(tag), String(v))
	}
	b.WriteString(")\n")
}

// Vars are the values of the v.* variables of a code query.
type Vars struct {
	From, To   time.Time
	Window     time.Duration // v.windowPeriod
	Bucket     string        // v.bucket, v.defaultBucket
	Org        string        // v.organization
	MaxDataPts int64         // v.maxDataPoints
}

// Variables are the names of the v.* variables Expand replaces (v.timeRangeStart, …). The query editor's
// completion list (src/completion.ts) is checked against it by pkg/plugin's TestEditorMacrosMatchBackend.
var Variables = []string{
	"timeRangeStart", "timeRangeStop", "windowPeriod", "bucket", "defaultBucket", "organization", "intervalMs",
	"maxDataPoints",
}

var varPattern = regexp.MustCompile(`\bv\.(` + strings.Join(Variables, "|") + `)\b`)

// Expand replaces Grafana's Flux variables with literals: v.timeRangeStart, v.timeRangeStop (time),
// v.windowPeriod (duration), v.bucket / v.defaultBucket and v.organization (strings), v.intervalMs and
// v.maxDataPoints (integers). InfluxDB 1.8 does not accept an external "v" record, so the expansion is
// textual, the way Grafana's Flux data source does it.
func Expand(flux string, v Vars) string {
	return varPattern.ReplaceAllStringFunc(flux, func(m string) string {
		switch m[2:] {
		case "timeRangeStart":
			return Time(v.From)
		case "timeRangeStop":
			return Time(v.To)
		case "windowPeriod":
			w := v.Window
			if w <= 0 {
				w = time.Millisecond
			}
			return Duration(w)
		case "bucket", "defaultBucket":
			return String(v.Bucket)
		case "organization":
			return String(v.Org)
		case "intervalMs":
			return strconv.FormatInt(v.Window.Milliseconds(), 10)
		case "maxDataPoints":
			return strconv.FormatInt(v.MaxDataPts, 10)
		}
		return m
	})
}
