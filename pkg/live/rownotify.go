package live

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/fieldline-iot/fieldline/internal/store"
	"github.com/fieldline-iot/fieldline/internal/telemetry"
	"github.com/fieldline-iot/fieldline/pkg/sqlquery"
)

// Live on the user's own table: their trigger's NOTIFY (e.g. pg_notify('new_reading', row_to_json(NEW)::text))
// carries one row as a JSON object named by the table's columns. decodeRow reads it with the same mapping the
// builder statements use (sqlquery.Table) and hands the stream a one-row Notification, so matching, the seam and
// the read-back (from the mapped table) are the ones of Fieldline's own channel.

// rowTimeLayouts are the forms row_to_json writes timestamptz (with offset) and timestamp (without) in.
var rowTimeLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999Z07", "2006-01-02T15:04:05.999999999"}

// newRowDecoder returns the decoder of one mapped row per payload.
func newRowDecoder(t *sqlquery.Table) func(payload string) (store.Notification, error) {
	return func(payload string) (store.Notification, error) {
		r, err := decodeRow(t, payload)
		if err != nil {
			return store.Notification{}, err
		}
		return store.Notification{From: r.Time, To: r.Time, N: 1, Rows: []telemetry.Reading{r}}, nil
	}
}

func decodeRow(t *sqlquery.Table, payload string) (telemetry.Reading, error) {
	var row map[string]json.RawMessage
	if err := json.Unmarshal([]byte(payload), &row); err != nil {
		return telemetry.Reading{}, errors.New("notification: not a JSON object (want the row, e.g. row_to_json(NEW))")
	}
	str := func(col string) (string, bool) {
		raw, ok := row[col]
		if !ok || string(raw) == "null" {
			return "", false
		}
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return s, true
		}
		return string(raw), true // a number or boolean column as a label
	}
	var r telemetry.Reading
	ts, ok := str(t.Time)
	if !ok {
		return r, fmt.Errorf("notification: no %q field", t.Time)
	}
	for _, layout := range rowTimeLayouts {
		if tm, err := time.Parse(layout, ts); err == nil {
			r.Time = tm.UTC()
			break
		}
	}
	if r.Time.IsZero() {
		return r, fmt.Errorf("notification: %q is not a timestamp", t.Time)
	}
	v, ok := str(t.Value)
	if !ok {
		return r, fmt.Errorf("notification: no %q field", t.Value)
	}
	var err error
	if r.Value, err = strconv.ParseFloat(strings.TrimSpace(v), 64); err != nil {
		return r, fmt.Errorf("notification: %q is not a number", t.Value)
	}
	if t.Template != nil {
		topic, _ := str(t.Topic)
		l, ok := t.Template.Match(topic)
		if !ok {
			return r, errors.New("notification: the topic does not match the table's topic template")
		}
		r.Device, r.Metric, r.Sensor = l.Device, l.Metric, l.Sensor
	}
	if t.Device != "" {
		r.Device, _ = str(t.Device)
	}
	if t.Metric != "" {
		r.Metric, _ = str(t.Metric)
	}
	if t.Sensor != "" {
		r.Sensor, _ = str(t.Sensor)
	}
	if r.Metric == "" {
		r.Metric = t.MetricName
	}
	for _, l := range [][2]string{{"device", r.Device}, {"metric", r.Metric}} {
		if l[1] == "" {
			return r, fmt.Errorf("notification: empty %s", l[0])
		}
		if msg := telemetry.CheckLabel(l[1]); msg != "" {
			return r, fmt.Errorf("notification: %s: %s", l[0], msg)
		}
	}
	if r.Sensor != "" {
		if msg := telemetry.CheckLabel(r.Sensor); msg != "" {
			return r, fmt.Errorf("notification: sensor: %s", msg)
		}
	}
	return r, nil
}
