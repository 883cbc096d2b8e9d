package frames

import (
	"slices"
	"strings"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/data"
)

// StateRow is one state change of a series.
type StateRow struct {
	Time           time.Time
	Device, Sensor string
	Value          string
}

// States builds dataplane time-series-multi frames of text values, one per series (rows ordered by series,
// then time): a time field and a string value field named after the metric with labels {device, sensor}, the
// shape Grafana's State timeline and Stat panels read and the live stream continues. Booleans are the text
// "true"/"false" here and live alike, so a series keeps one field type across the seam.
func States(refID, metric string, rows []StateRow, executed string) data.Frames {
	meta := func() *data.FrameMeta {
		return &data.FrameMeta{Type: data.FrameTypeTimeSeriesMulti, TypeVersion: data.FrameTypeVersion{0, 1}, ExecutedQueryString: executed}
	}
	if len(rows) == 0 {
		f := data.NewFrame(refID)
		f.RefID, f.Meta = refID, meta()
		return data.Frames{f}
	}
	var out data.Frames
	for start := 0; start < len(rows); {
		end := start + 1
		for end < len(rows) && rows[end].Device == rows[start].Device && rows[end].Sensor == rows[start].Sensor {
			end++
		}
		times := make([]time.Time, 0, end-start)
		values := make([]string, 0, end-start)
		for _, r := range rows[start:end] {
			times = append(times, r.Time)
			values = append(values, r.Value)
		}
		vf := data.NewField(metric, SeriesLabels(rows[start].Device, rows[start].Sensor), values)
		vf.Config = &data.FieldConfig{DisplayNameFromDS: DisplayName(metric, rows[start].Device, rows[start].Sensor)}
		f := data.NewFrame(metric, data.NewField(data.TimeSeriesTimeFieldName, nil, times), vf)
		f.RefID, f.Meta = refID, meta()
		out = append(out, f)
		start = end
	}
	return out
}

// StatesTable builds one table frame of state changes, ordered by time, with the columns Grafana's annotation
// queries read: time, text ("pico status: offline") and tags (device, sensor, metric and value, comma-separated),
// then device, sensor, metric and value.
func StatesTable(refID, metric string, rows []StateRow, executed string) *data.Frame {
	sorted := append([]StateRow(nil), rows...)
	slices.SortStableFunc(sorted, func(a, b StateRow) int { return a.Time.Compare(b.Time) })
	n := len(sorted)
	times, texts, tags := make([]time.Time, n), make([]string, n), make([]string, n)
	devices, sensors, metrics, values := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	for i, r := range sorted {
		times[i], devices[i], sensors[i], metrics[i], values[i] = r.Time, r.Device, r.Sensor, metric, r.Value
		texts[i] = DisplayName(metric, r.Device, r.Sensor) + ": " + r.Value
		t := []string{r.Device}
		if r.Sensor != "" {
			t = append(t, r.Sensor)
		}
		t = append(t, metric, r.Value)
		for j := range t {
			t[j] = strings.ReplaceAll(t[j], ",", " ") // a comma would split a tag in two
		}
		tags[i] = strings.Join(t, ",")
	}
	f := data.NewFrame(metric,
		data.NewField("time", nil, times), data.NewField("text", nil, texts), data.NewField("tags", nil, tags),
		data.NewField("device", nil, devices), data.NewField("sensor", nil, sensors),
		data.NewField("metric", nil, metrics), data.NewField("value", nil, values))
	f.RefID = refID
	f.Meta = &data.FrameMeta{Type: data.FrameTypeTable, ExecutedQueryString: executed}
	return f
}
