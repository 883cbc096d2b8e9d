// Package tablemap maps a PostgreSQL table the user already has (the first field report's readings(ts, topic,
// value), any table with a time, a value and labels) onto the columns Fieldline reads: time, device, metric,
// sensor, value. The plugin's builders read the mapping's Relation; the rollups installed on such a table
// (internal/store, InstallTableRollups) read the same mapping over the trigger's transition table, so both see
// the same rows.
package tablemap

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/fieldline-iot/fieldline/internal/telemetry"
)

// Table maps a table the user already has onto the columns every builder statement reads (time, device,
// metric, sensor, value), so the builder, variables, pickers and the live read-back work on it unchanged: the
// statements read Relation() instead of Fieldline's readings table. PostgreSQL inlines the subquery, so a
// time range reaches the table's own time index.
//
// Each label is a column of the table, or a level of a topic column read with a topic template (the first
// field report's readings(ts, topic, value) with {device}/{metric}/{sensor}), or absent (sensor ""). The metric
// may also be a fixed name (MetricName) for tables that hold one quantity.
type Table struct {
	Name  string // table or view, optionally schema-qualified ("readings", "public.readings")
	Time  string // timestamptz (or timestamp) column
	Value string // numeric column (read as float8)

	Device, Metric, Sensor string              // label columns ("": not a column)
	Topic                  string              // topic column the Template reads labels from ("": none)
	Template               *telemetry.Template // with Topic
	MetricName             string              // the metric when neither a column nor the template gives one
}

var identPattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_$]{0,62}$`)

// Validate checks the mapping: identifiers (letters, digits, _ and $, at most 63 bytes; the table may carry a
// schema), a time and a value column, and a source for the device and the metric.
func (t *Table) Validate() error {
	var errs []error
	ident := func(field, v string, required bool) {
		switch {
		case v == "" && required:
			errs = append(errs, fmt.Errorf("%s is required", field))
		case v != "" && !identPattern.MatchString(v):
			errs = append(errs, fmt.Errorf("%s: a column name of letters, digits and _ (at most 63 bytes)", field))
		}
	}
	parts := strings.Split(t.Name, ".")
	if t.Name == "" || len(parts) > 2 {
		errs = append(errs, errors.New("table: a table name, optionally schema.table"))
	} else {
		for _, p := range parts {
			ident("table", p, true)
		}
	}
	ident("timeColumn", t.Time, true)
	ident("valueColumn", t.Value, true)
	ident("deviceColumn", t.Device, false)
	ident("metricColumn", t.Metric, false)
	ident("sensorColumn", t.Sensor, false)
	ident("topicColumn", t.Topic, false)
	if (t.Topic == "") != (t.Template == nil) {
		errs = append(errs, errors.New("topicColumn and topicTemplate go together"))
	}
	var fromTopic telemetry.Labels
	if t.Template != nil {
		fromTopic = t.Template.Provides()
	}
	if t.Device == "" && fromTopic.Device == "" {
		errs = append(errs, errors.New("device: set deviceColumn, or a topicTemplate with {device}"))
	}
	if t.Metric == "" && fromTopic.Metric == "" && t.MetricName == "" {
		errs = append(errs, errors.New("metric: set metricColumn, a topicTemplate with {metric}, or metricName"))
	}
	if t.MetricName != "" {
		if msg := telemetry.CheckLabel(t.MetricName); msg != "" {
			errs = append(errs, fmt.Errorf("metricName: %s", msg))
		}
	}
	for _, col := range [][2]string{{"deviceColumn", t.Device}, {"metricColumn", t.Metric}, {"sensorColumn", t.Sensor}} {
		if col[1] != "" && fromTopic != (telemetry.Labels{}) {
			label := strings.TrimSuffix(col[0], "Column")
			if (label == "device" && fromTopic.Device != "") || (label == "metric" && fromTopic.Metric != "") || (label == "sensor" && fromTopic.Sensor != "") {
				errs = append(errs, fmt.Errorf("%s: the topic template gives the %s as well; choose one", col[0], label))
			}
		}
	}
	return errors.Join(errs...)
}

// Relation returns the FROM item of the builder statements: Fieldline's readings table for a nil Table, else a
// subquery over the user's table with the same columns, aliased readings.
func (t *Table) Relation() string {
	if t == nil {
		return "readings"
	}
	return "(" + t.Select(t.QuotedName()) + ") AS readings"
}

// QuotedName is the table's name as an SQL identifier (schema-qualified when it has a schema).
func (t *Table) QuotedName() string {
	var b strings.Builder
	for i, p := range strings.Split(t.Name, ".") {
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(QuoteIdent(p))
	}
	return b.String()
}

// Select returns the SELECT that reads the mapped columns (time, device, metric, sensor, value) from source, a
// relation with the table's columns: the table itself (Relation), or a trigger's transition table (the rollups
// installed on the table, internal/store).
func (t *Table) Select(source string) string {
	var levels []telemetry.Segment
	var hash bool
	if t.Template != nil {
		levels, hash = t.Template.Segments()
	}
	label := func(col, name string) string {
		if col != "" {
			if name == "sensor" {
				return "coalesce(t." + QuoteIdent(col) + "::text, '')"
			}
			return "t." + QuoteIdent(col) + "::text"
		}
		for i, s := range levels {
			if s.Label == name {
				return "split_part(t." + QuoteIdent(t.Topic) + ", '/', " + strconv.Itoa(i+1) + ")"
			}
		}
		if name == "metric" && t.MetricName != "" {
			return Literal(t.MetricName) + "::text"
		}
		return "''::text"
	}
	var b strings.Builder
	b.WriteString("SELECT t.")
	b.WriteString(QuoteIdent(t.Time))
	b.WriteString(" AS time, ")
	b.WriteString(label(t.Device, "device"))
	b.WriteString(" AS device, ")
	b.WriteString(label(t.Metric, "metric"))
	b.WriteString(" AS metric, ")
	b.WriteString(label(t.Sensor, "sensor"))
	b.WriteString(" AS sensor, t.")
	b.WriteString(QuoteIdent(t.Value))
	b.WriteString("::float8 AS value FROM ")
	b.WriteString(source)
	b.WriteString(" t WHERE t.")
	b.WriteString(QuoteIdent(t.Value))
	b.WriteString(" IS NOT NULL")
	for _, col := range []string{t.Device, t.Metric} { // a row without its device or metric is no reading
		if col != "" {
			b.WriteString(" AND t." + QuoteIdent(col) + "::text <> ''")
		}
	}
	if t.Template != nil {
		// Only topics the template matches: its literal levels, its level count, non-empty placeholders.
		topic := "t." + QuoteIdent(t.Topic)
		op := " = "
		if hash {
			op = " >= "
		}
		b.WriteString(" AND array_length(string_to_array(" + topic + ", '/'), 1)" + op + strconv.Itoa(len(levels)))
		for i, s := range levels {
			part := "split_part(" + topic + ", '/', " + strconv.Itoa(i+1) + ")"
			switch {
			case s.Literal != "" && !s.Any && s.Label == "":
				b.WriteString(" AND " + part + " = " + Literal(s.Literal))
			case s.Label == "device" || s.Label == "metric":
				b.WriteString(" AND " + part + " <> ''")
			}
		}
	}
	return b.String()
}

// QuoteIdent quotes a validated identifier.
func QuoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// Literal quotes s as a PostgreSQL string literal (standard_conforming_strings, the default since 9.1: only the
// quote is doubled). NUL cannot be in a label (telemetry.CheckLabel), so it needs no escape.
func Literal(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// JSON is the mapping as the data source's jsonData.postgres.table holds it (docs/plugin.md, "Your own table"),
// and as `fieldline-ingester rollups` reads it.
type JSON struct {
	Name          string `json:"name"`
	TimeColumn    string `json:"timeColumn"`
	ValueColumn   string `json:"valueColumn"`
	DeviceColumn  string `json:"deviceColumn"`
	MetricColumn  string `json:"metricColumn"`
	SensorColumn  string `json:"sensorColumn"`
	TopicColumn   string `json:"topicColumn"`
	TopicTemplate string `json:"topicTemplate"`
	MetricName    string `json:"metricName"`
	NotifyChannel string `json:"notifyChannel"`
}

// ParseJSON decodes a mapping (unknown keys refused) and loads it.
func ParseJSON(raw []byte) (*Table, string, error) {
	var j JSON
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		return nil, "", fmt.Errorf("table mapping: %w", err)
	}
	if j.Name == "" {
		return nil, "", errors.New("table mapping: name is required")
	}
	return j.Load()
}

// Load validates the mapping; nil when no table is named. It returns the table and its NOTIFY channel.
func (j *JSON) Load() (*Table, string, error) {
	if j == nil || j.Name == "" {
		return nil, "", nil
	}
	t := &Table{Name: j.Name, Time: j.TimeColumn, Value: j.ValueColumn, Device: j.DeviceColumn,
		Metric: j.MetricColumn, Sensor: j.SensorColumn, Topic: j.TopicColumn, MetricName: j.MetricName}
	var errs []error
	if j.TopicTemplate != "" {
		tpl, err := telemetry.ParseTemplate(j.TopicTemplate)
		if err != nil {
			errs = append(errs, fmt.Errorf("topicTemplate: %w", err))
		}
		t.Template = tpl
	}
	if t.Template != nil || j.TopicTemplate == "" {
		if err := t.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	if j.NotifyChannel != "" && !channelPattern.MatchString(j.NotifyChannel) {
		errs = append(errs, errors.New("notifyChannel: a channel name of letters, digits and _ (at most 63 bytes)"))
	}
	if len(errs) > 0 {
		return nil, "", fmt.Errorf("postgres.table: %w", errors.Join(errs...))
	}
	return t, j.NotifyChannel, nil
}

var channelPattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)
