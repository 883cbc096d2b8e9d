package plugin

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/grafana/grafana-plugin-sdk-go/backend/gtime"

	"github.com/fieldline-iot/fieldline/internal/telemetry"
	"github.com/fieldline-iot/fieldline/pkg/frames"
	"github.com/fieldline-iot/fieldline/pkg/live"
	"github.com/fieldline-iot/fieldline/pkg/sqlquery"
)

// Query sources, modes, formats, fill modes and variable kinds of the query model (docs/plugin.md, "Queries").
const (
	SourceSQL  = "sql"
	SourceFlux = "flux"
	SourceMQTT = "mqtt"
	// SourceInfluxQL is code InfluxQL on InfluxDB (the v1 query API).
	SourceInfluxQL = "influxql"

	ModeBuilder = "builder"
	ModeCode    = "code"
	// ModeStates is the builder over text and boolean values (the states table): state changes per series.
	ModeStates = "states"

	FormatTimeSeries = "time_series"
	FormatTable      = "table"

	FillNone     = "none"
	FillNull     = frames.FillNull
	FillPrevious = frames.FillPrevious
	FillZero     = frames.FillZero
)

// Limits on user values (labels: telemetry.CheckLabel, the rule the ingester applies).
const (
	maxCodeBytes = 1 << 20
	maxBuckets   = 2_000_000 // buckets per series a builder query may ask for
)

// Query is a parsed, validated query (the JSON the frontend sends; docs/plugin.md, "Queries").
type Query struct {
	RefID         string
	Source        string // sql | flux | mqtt
	Mode          string // builder | code
	Metric        string
	Devices       []string // empty: all devices
	Sensors       []string // empty: all sensors
	Aggregation   sqlquery.Aggregation
	Interval      time.Duration // 0: Grafana's interval for the panel
	Live          bool
	RawSQL        string
	Flux          string
	InfluxQL      string
	Topic         string
	Template      string        // MQTT topic template, e.g. {device}/{metric}/{sensor}; "" = device is the topic, metric its last level
	PayloadFormat string        // MQTT payload format: value | json | influx
	JSON          live.MQTTJSON // MQTT json payloads: field paths, time field and format
	Format        string        // time_series | table
	Fill          string        // none | null | previous | zero
	Variable      sqlquery.Label
	State         string // states mode: keep only the changes to this value ("": every change)
}

// queryJSON is the wire form. device and sensor may be comma-separated lists (multi-value template variables
// interpolated as "a,b"); "" and "*" mean all.
type queryJSON struct {
	RefID       string `json:"refId"`
	Source      string `json:"source"`
	Mode        string `json:"mode"`
	Device      string `json:"device"`
	Metric      string `json:"metric"`
	Sensor      string `json:"sensor"`
	Aggregation string `json:"aggregation"`
	Interval    string `json:"interval"`
	Live        bool   `json:"live"`
	RawSQL      string `json:"rawSql"`
	Flux        string `json:"flux"`
	InfluxQL    string `json:"influxql"`
	Topic       string `json:"topic"`
	Template    string `json:"template"`
	PayloadFmt  string `json:"payloadFormat"`
	JSONFields  string `json:"jsonFields"`     // comma-separated dotted paths
	JSONTime    string `json:"jsonTimeField"`  // dotted path of the payload's time
	JSONTimeFmt string `json:"jsonTimeFormat"` // auto, unix, unix_ms, unix_us, unix_ns, rfc3339
	Format      string `json:"format"`
	Fill        string `json:"fill"`
	Variable    string `json:"variable"`
	State       string `json:"state"` // states mode: only changes to this value
}

// ParseQuery decodes and validates one query's JSON. Unknown fields (datasource, intervalMs, hide, …) are
// ignored. Defaults: source sql; mode code when rawSql/flux is set and no builder metric, else builder;
// format time_series; fill none.
func ParseQuery(raw []byte) (Query, error) {
	var j queryJSON
	if err := json.Unmarshal(raw, &j); err != nil {
		return Query{}, fmt.Errorf("query JSON: %w", err)
	}
	q := Query{RefID: j.RefID, Live: j.Live, RawSQL: j.RawSQL, Flux: j.Flux, InfluxQL: j.InfluxQL, Topic: strings.TrimSpace(j.Topic),
		Template: strings.TrimSpace(j.Template), PayloadFormat: strings.ToLower(strings.TrimSpace(j.PayloadFmt))}
	var err error

	q.Source = strings.ToLower(strings.TrimSpace(j.Source))
	switch q.Source {
	case "", "postgres", "postgresql", "timescaledb":
		q.Source = SourceSQL
		if j.Source == "" && j.Flux != "" && j.RawSQL == "" && j.Metric == "" {
			q.Source = SourceFlux
		}
	case "influx", "influxdb":
		q.Source = SourceFlux
	default:
		if !slices.Contains(QuerySources, q.Source) {
			return Query{}, fmt.Errorf("source %q: want one of %s", quoteTrunc(j.Source), strings.Join(QuerySources, ", "))
		}
	}

	q.Mode = strings.ToLower(strings.TrimSpace(j.Mode))
	switch q.Mode {
	case "":
		q.Mode = ModeBuilder
		if j.Metric == "" && ((q.Source == SourceSQL && j.RawSQL != "") || (q.Source == SourceFlux && j.Flux != "")) {
			q.Mode = ModeCode
		}
	case "raw", "editor":
		q.Mode = ModeCode
	default:
		if !slices.Contains(QueryModes, q.Mode) {
			return Query{}, fmt.Errorf("mode %q: want one of %s", quoteTrunc(j.Mode), strings.Join(QueryModes, ", "))
		}
	}

	switch f := strings.ToLower(strings.TrimSpace(j.Format)); f {
	case "", "time_series", "timeseries", "time series":
		q.Format = FormatTimeSeries
	default:
		if !slices.Contains(ResultFormats, f) {
			return Query{}, fmt.Errorf("format %q: want one of %s", quoteTrunc(j.Format), strings.Join(ResultFormats, ", "))
		}
		q.Format = f
	}

	switch f := strings.ToLower(strings.TrimSpace(j.Fill)); f {
	case "":
		q.Fill = FillNone
	case "0":
		q.Fill = FillZero
	default:
		if !slices.Contains(FillModes, f) {
			return Query{}, fmt.Errorf("fill %q: want one of %s", quoteTrunc(j.Fill), strings.Join(FillModes, ", "))
		}
		q.Fill = f
	}

	if q.PayloadFormat != "" && !slices.Contains(PayloadFormats, q.PayloadFormat) {
		return Query{}, fmt.Errorf("payloadFormat %q: want one of %s", quoteTrunc(j.PayloadFmt), strings.Join(PayloadFormats, ", "))
	}
	q.JSON = live.MQTTJSON{Fields: splitPaths(j.JSONFields), TimeField: strings.TrimSpace(j.JSONTime), TimeFormat: strings.TrimSpace(j.JSONTimeFmt)}
	if q.JSON.TimeField != "" || q.JSON.TimeFormat != "" || len(q.JSON.Fields) > 0 {
		if len(q.JSON.Fields) > live.MaxJSONFields {
			return Query{}, fmt.Errorf("jsonFields: at most %d paths", live.MaxJSONFields)
		}
		if _, err := telemetry.NewDecoder("#", telemetry.Options{Format: telemetry.FormatJSON, Static: telemetry.Labels{Device: "d"},
			JSON: telemetry.JSONOptions{TimeField: q.JSON.TimeField, TimeFormat: q.JSON.TimeFormat}}); err != nil {
			return Query{}, fmt.Errorf("jsonTimeField/jsonTimeFormat: %w", err)
		}
	}
	if q.Aggregation, err = sqlquery.ParseAggregation(j.Aggregation); err != nil {
		return Query{}, err
	}
	if q.Interval, err = parseInterval(j.Interval); err != nil {
		return Query{}, err
	}
	if q.Metric, err = parseLabel("metric", j.Metric); err != nil {
		return Query{}, err
	}
	if q.Devices, err = parseSelector("device", j.Device); err != nil {
		return Query{}, err
	}
	if q.Sensors, err = parseSelector("sensor", j.Sensor); err != nil {
		return Query{}, err
	}
	if j.Variable != "" {
		if q.Variable, err = sqlquery.ParseLabel(j.Variable); err != nil {
			return Query{}, fmt.Errorf("variable: %w", err)
		}
		if q.Source == SourceMQTT {
			return Query{}, errors.New("variable queries need source sql or flux")
		}
		return q, nil
	}

	switch {
	case q.Source == SourceInfluxQL:
		q.Mode = ModeCode // InfluxQL is code only
		if strings.TrimSpace(q.InfluxQL) == "" {
			return Query{}, errInfluxQLEmpty
		}
		if len(q.InfluxQL) > maxCodeBytes {
			return Query{}, errors.New("code query: influxql is longer than 1 MiB")
		}
	case q.Source == SourceMQTT:
		if q.Topic == "" {
			return Query{}, errors.New("mqtt query: topic is required")
		}
	case q.Mode == ModeStates:
		if q.Source != SourceSQL {
			return Query{}, errors.New("states mode reads the states table: it needs source sql")
		}
		if q.Metric == "" {
			return Query{}, errors.New("states query: metric is required")
		}
		// States are not aggregated or gap-filled: aggregation, interval and fill are ignored (an editor
		// switching modes may leave them set).
		q.Aggregation, q.Interval, q.Fill = sqlquery.None, 0, FillNone
		if q.State = strings.TrimSpace(j.State); q.State != "" {
			if reason, msg := telemetry.CheckText(q.State); reason != "" {
				return Query{}, fmt.Errorf("state: %s", msg)
			}
		}
	case q.Mode == ModeBuilder:
		if q.Metric == "" {
			return Query{}, errors.New("builder query: metric is required")
		}
		if q.Fill != FillNone && q.Aggregation == sqlquery.None {
			return Query{}, errors.New("builder query: fill needs an aggregation (gaps are defined by the buckets)")
		}
	case q.Source == SourceSQL:
		if strings.TrimSpace(q.RawSQL) == "" {
			return Query{}, errors.New("code query: rawSql is empty")
		}
		if len(q.RawSQL) > maxCodeBytes {
			return Query{}, errors.New("code query: rawSql is longer than 1 MiB")
		}
	case q.Source == SourceFlux:
		if strings.TrimSpace(q.Flux) == "" {
			return Query{}, errors.New("code query: flux is empty")
		}
		if len(q.Flux) > maxCodeBytes {
			return Query{}, errors.New("code query: flux is longer than 1 MiB")
		}
	}
	return q, nil
}

// splitPaths splits comma-separated JSON field paths (blank entries dropped).
func splitPaths(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func parseInterval(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	switch s {
	case "", "auto", "$__interval", "${__interval}", "$__auto":
		return 0, nil
	}
	d, err := gtime.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("interval %q: want a duration such as 10s, 1m, 1h, 1d", quoteTrunc(s))
	}
	if strings.ContainsAny(s, "My") {
		return 0, fmt.Errorf("interval %q: months and years have no fixed length; use days or weeks", quoteTrunc(s))
	}
	if d < time.Millisecond || d%time.Microsecond != 0 {
		return 0, fmt.Errorf("interval %q: must be a whole number of microseconds, at least 1ms", quoteTrunc(s))
	}
	return d, nil
}

// parseLabel validates one label value with telemetry.CheckLabel (the ingester never stores a label that fails
// it, so rejecting one loses nothing).
func parseLabel(field, v string) (string, error) {
	v = strings.TrimSpace(v)
	switch msg := telemetry.CheckLabel(v); {
	case msg == "":
		return v, nil
	case len(v) > telemetry.MaxLabelBytes || !utf8.ValidString(v):
		return "", fmt.Errorf("%s %s", field, msg)
	default:
		return "", fmt.Errorf("%s %s: %s", field, quoteTrunc(v), msg)
	}
}

// parseSelector splits "a,b" into values; "", "*", "$__all" or a list containing "*" select everything.
func parseSelector(field, v string) ([]string, error) {
	v = strings.TrimSpace(v)
	if v == "" || v == "*" || v == "$__all" {
		return nil, nil
	}
	if strings.HasPrefix(v, "{") && strings.HasSuffix(v, "}") {
		v = v[1 : len(v)-1] // Grafana's "glob"/"csv in braces" multi-value format
	}
	parts := strings.Split(v, ",")
	if len(parts) > sqlquery.MaxSelectorValues {
		return nil, fmt.Errorf("%s: more than %d values", field, sqlquery.MaxSelectorValues)
	}
	out := make([]string, 0, len(parts))
	seen := make(map[string]bool, len(parts))
	for _, p := range parts {
		p, err := parseLabel(field, p)
		if err != nil {
			return nil, err
		}
		if p == "*" {
			return nil, nil
		}
		if p == "" || seen[p] {
			continue
		}
		seen[p] = true
		out = append(out, p)
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

func quoteTrunc(s string) string {
	const max = 64
	if len(s) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return fmt.Sprintf("%q", s)
}
