// Package frames builds the data frames Fieldline answers with, in one place for history and live: dataplane
// time-series-wide frames (series on a shared bucket grid) and time-series-multi frames (one per series) from
// collected series, with gap filling on the bucket grid, table frames, variable
// answers, code-query results split into multi frames, and Grafana's labels push-mode frames that live streams
// send, with their Prometheus-form label sets. series labels are {device, sensor} everywhere.
package frames

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/data"
)

// Series is one (device, sensor) series of a builder query: points in ascending time.
type Series struct {
	Device, Sensor string
	// Extra are further labels that tell series apart (an InfluxDB schema's label tags); nil for most.
	Extra  data.Labels
	Times  []time.Time
	Values []float64

	next *Series // Collector.Add: the series of the row that came after this series' last row
}

// Collector groups rows that arrive ordered by (device, sensor, time), bucket by bucket with the series in a
// repeating order (aggregated reads), or in any order.
type Collector struct {
	byKey     map[[3]string]*Series
	last      *Series
	perSeries int // initial capacity of a series' points
	reserved  int // points reserved so far, at most maxReservedPoints
	Rows      int64
	Truncated bool // the statement stopped at its row limit (also when Rows > the limit)
}

func NewCollector() *Collector {
	return &Collector{byKey: map[[3]string]*Series{}}
}

// Bounds of ExpectPoints' reservations: per series (16 384 points, 512 KiB) and for all series of a read
// (524 288 points, 16 MiB), so a read of many sparse series reserves little that stays unused.
const (
	maxExpectPoints   = 1 << 14
	maxReservedPoints = 1 << 19
)

// ExpectPoints reserves room for n points in each series (an aggregated read has one per bucket), so a series
// does not grow its slices point by point. At most maxExpectPoints per series are reserved, and no more once the
// series so far have maxReservedPoints in all (later series grow as they fill).
func (c *Collector) ExpectPoints(n int) {
	c.perSeries = max(0, min(n, maxExpectPoints))
}

func (c *Collector) newSeries(device, sensor string, extra data.Labels) *Series {
	s := &Series{Device: device, Sensor: sensor, Extra: extra}
	if n := c.perSeries; n > 0 && c.reserved+n <= maxReservedPoints {
		s.Times, s.Values = make([]time.Time, 0, n), make([]float64, 0, n)
		c.reserved += n
	}
	return s
}

func (c *Collector) Add(t time.Time, device, sensor string, v float64) {
	c.Rows++
	s := c.last
	if s == nil || s.Device != device || s.Sensor != sensor || s.Extra != nil {
		// Aggregated reads come bucket by bucket with the series in the same order in each bucket: the series
		// that followed the previous row's series last time is the likely one, checked before the map.
		if n := s; n != nil && n.next != nil && n.next.Device == device && n.next.Sensor == sensor && n.next.Extra == nil {
			s = n.next
		} else {
			k := [3]string{device, sensor}
			s = c.byKey[k]
			if s == nil {
				s = c.newSeries(device, sensor, nil)
				c.byKey[k] = s
			}
			if n != nil {
				n.next = s
			}
		}
		c.last = s
	}
	s.Times = append(s.Times, t)
	s.Values = append(s.Values, v)
}

// AddExtra is Add for series told apart by further labels too (nil or empty extra: Add).
func (c *Collector) AddExtra(t time.Time, device, sensor string, extra data.Labels, v float64) {
	if len(extra) == 0 {
		c.Add(t, device, sensor, v)
		return
	}
	c.Rows++
	k := [3]string{device, sensor, extra.String()}
	s := c.byKey[k]
	if s == nil {
		s = c.newSeries(device, sensor, extra)
		c.byKey[k] = s
	}
	c.last = nil
	s.Times = append(s.Times, t)
	s.Values = append(s.Values, v)
}

// Sorted returns the series ordered by (device, sensor, extra labels), each sorted by time.
func (c *Collector) Sorted() []*Series {
	out := make([]*Series, 0, len(c.byKey))
	for _, s := range c.byKey {
		if !sort.SliceIsSorted(s.Times, func(i, j int) bool { return s.Times[i].Before(s.Times[j]) }) {
			sort.Stable(byTime{s})
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Device != out[j].Device {
			return out[i].Device < out[j].Device
		}
		if out[i].Sensor != out[j].Sensor {
			return out[i].Sensor < out[j].Sensor
		}
		return out[i].Extra.String() < out[j].Extra.String()
	})
	return out
}

type byTime struct{ s *Series }

func (b byTime) Len() int           { return len(b.s.Times) }
func (b byTime) Less(i, j int) bool { return b.s.Times[i].Before(b.s.Times[j]) }
func (b byTime) Swap(i, j int) {
	b.s.Times[i], b.s.Times[j] = b.s.Times[j], b.s.Times[i]
	b.s.Values[i], b.s.Values[j] = b.s.Values[j], b.s.Values[i]
}

// SeriesLabels are the dataplane labels of a series: device, and sensor when the series has one (an empty
// label value means "no label" in Grafana and Prometheus alike).
func SeriesLabels(device, sensor string) data.Labels {
	l := data.Labels{"device": device}
	if sensor != "" {
		l["sensor"] = sensor
	}
	return l
}

// DisplayName is the legend text of a series: "device/sensor metric" or "device metric".
func DisplayName(metric, device, sensor string) string {
	if sensor != "" {
		return device + "/" + sensor + " " + metric
	}
	return device + " " + metric
}

// Fill modes of GridFill.
const (
	FillNull     = "null"
	FillPrevious = "previous"
	FillZero     = "zero"
)

// GridFill describes gap filling on the bucket grid [From, To) with step Interval.
type GridFill struct {
	Mode     string // FillNull | FillPrevious | FillZero
	Value    float64
	From, To time.Time
	Interval time.Duration
}

func (g *GridFill) nullable() bool {
	return g != nil && (g.Mode == FillNull || g.Mode == FillPrevious)
}

// TimeSeries builds dataplane time-series-multi frames: one frame per series with a time field and a
// float64 value field named after the metric, labels {device, sensor}, time ascending. With no series the
// response is one empty typed frame, as the dataplane contract asks.
func TimeSeries(refID, metric string, all []*Series, fill *GridFill, executed string) data.Frames {
	meta := func() *data.FrameMeta {
		return &data.FrameMeta{
			Type:                data.FrameTypeTimeSeriesMulti,
			TypeVersion:         data.FrameTypeVersion{0, 1},
			ExecutedQueryString: executed,
		}
	}
	if len(all) == 0 {
		f := data.NewFrame(refID)
		f.RefID = refID
		f.Meta = meta()
		return data.Frames{f}
	}
	frames := make(data.Frames, 0, len(all))
	for _, s := range all {
		var timeField, valueField *data.Field
		if fill != nil {
			timeField, valueField = FillGrid(metric, s, fill)
		} else {
			timeField = data.NewField(data.TimeSeriesTimeFieldName, nil, s.Times)
			valueField = data.NewField(metric, nil, s.Values)
		}
		describe(valueField, metric, s)
		f := data.NewFrame(metric, timeField, valueField)
		f.RefID = refID
		f.Meta = meta()
		frames = append(frames, f)
	}
	return frames
}

// Wide builds one dataplane time-series-wide frame: a time field shared by every series, then one float64
// value field per series named after the metric, with the series' labels and the legend (DisplayNameFromDS)
// of its multi frame, in the order of all. With fill, the time field is the whole bucket grid and each series
// is put on it as FillGrid does (fill null and previous: nullable values). Without fill, every series must have
// the same timestamps; ok is false when they do not (one series lacks a bucket another has) or there is no
// series, and the caller answers multi frames (TimeSeries) instead: a null in a wide frame is not the same
// answer as an absent point (Grafana's time series panel breaks the line at a null but spans a point that is
// missing from one of several frames, and alert reducers see the null), so missing buckets are not turned into
// nulls unless the query asks for fill null.
func Wide(refID, metric string, all []*Series, fill *GridFill, executed string) (f *data.Frame, ok bool) {
	if len(all) == 0 {
		return nil, false
	}
	fields := make([]*data.Field, 1, len(all)+1)
	if fill != nil {
		times := fill.grid()
		fields[0] = data.NewField(data.TimeSeriesTimeFieldName, nil, times)
		for _, s := range all {
			fields = append(fields, fill.values(metric, s, times))
		}
	} else {
		times := all[0].Times
		for _, s := range all[1:] {
			if !sameTimes(times, s.Times) {
				return nil, false
			}
		}
		fields[0] = data.NewField(data.TimeSeriesTimeFieldName, nil, times)
		for _, s := range all {
			fields = append(fields, data.NewField(metric, nil, s.Values))
		}
	}
	for i, s := range all {
		describe(fields[i+1], metric, s)
	}
	f = data.NewFrame(metric, fields...)
	f.RefID = refID
	f.Meta = &data.FrameMeta{
		Type:                data.FrameTypeTimeSeriesWide,
		TypeVersion:         data.FrameTypeVersion{0, 1},
		ExecutedQueryString: executed,
	}
	return f, true
}

// sameTimes reports whether two ascending timestamp lists are equal.
func sameTimes(a, b []time.Time) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !a[i].Equal(b[i]) {
			return false
		}
	}
	return true
}

// describe sets a series' value field labels ({device, sensor} and any extra labels) and its legend.
func describe(valueField *data.Field, metric string, s *Series) {
	valueField.Labels = SeriesLabels(s.Device, s.Sensor)
	display := DisplayName(metric, s.Device, s.Sensor)
	for k, v := range s.Extra {
		valueField.Labels[k] = v
	}
	if len(s.Extra) > 0 {
		display += " " + s.Extra.String()
	}
	valueField.Config = &data.FieldConfig{DisplayNameFromDS: display}
}

// FillGrid returns the series on the full bucket grid, filling missing buckets per the mode. Points are on the
// grid already (bucket starts); the walk is linear.
func FillGrid(metric string, s *Series, g *GridFill) (*data.Field, *data.Field) {
	times := g.grid()
	return data.NewField(data.TimeSeriesTimeFieldName, nil, times), g.values(metric, s, times)
}

// grid is the bucket starts of [From, To).
func (g *GridFill) grid() []time.Time {
	times := make([]time.Time, 0, int(g.To.Sub(g.From)/g.Interval))
	for t := g.From; t.Before(g.To); t = t.Add(g.Interval) {
		times = append(times, t)
	}
	return times
}

// values is the value field of s on the grid times, missing buckets filled per the mode. Nullable values point
// into s.Values (no allocation per point).
func (g *GridFill) values(metric string, s *Series, times []time.Time) *data.Field {
	var vals []float64
	var nvals []*float64
	if g.nullable() {
		nvals = make([]*float64, 0, len(times))
	} else {
		vals = make([]float64, 0, len(times))
	}
	i := 0
	var prev *float64
	for _, t := range times {
		for i < len(s.Times) && s.Times[i].Before(t) {
			i++ // points off the grid (never produced by the builders) are skipped
		}
		if i < len(s.Times) && s.Times[i].Equal(t) {
			if nvals != nil {
				prev = &s.Values[i]
				nvals = append(nvals, prev)
			} else {
				vals = append(vals, s.Values[i])
			}
			i++
			continue
		}
		switch g.Mode {
		case FillNull:
			nvals = append(nvals, nil)
		case FillPrevious:
			nvals = append(nvals, prev)
		default:
			vals = append(vals, g.Value)
		}
	}
	if nvals != nil {
		return data.NewField(metric, nil, nvals)
	}
	return data.NewField(metric, nil, vals)
}

// FillFrames puts the two-field (time, value) frames of result on the grid of g, filling gaps per its mode
// (code queries' $__timeGroup fill); other frames pass unchanged.
func FillFrames(result data.Frames, g *GridFill) data.Frames {
	out := make(data.Frames, 0, len(result))
	for _, f := range result {
		if len(f.Fields) != 2 {
			out = append(out, f)
			continue
		}
		s := &Series{}
		for i := 0; i < f.Rows(); i++ {
			t, _ := f.Fields[0].At(i).(time.Time)
			v, err := f.Fields[1].NullableFloatAt(i)
			if err != nil || v == nil {
				continue
			}
			s.Times = append(s.Times, t)
			s.Values = append(s.Values, *v)
		}
		tf, vf := FillGrid(f.Fields[1].Name, s, g)
		vf.Labels = f.Fields[1].Labels
		vf.Config = f.Fields[1].Config
		nf := data.NewFrame(f.Name, tf, vf)
		nf.RefID, nf.Meta = f.RefID, f.Meta
		out = append(out, nf)
	}
	return out
}

// Table is the table format of a builder query: time, device, sensor, <metric> rows, ordered by device,
// sensor, time.
func Table(refID, metric string, all []*Series, executed string) *data.Frame {
	var times []time.Time
	var devices, sensors []string
	var values []float64
	for _, s := range all {
		for i := range s.Times {
			times = append(times, s.Times[i])
			devices = append(devices, s.Device)
			sensors = append(sensors, s.Sensor)
			values = append(values, s.Values[i])
		}
	}
	f := data.NewFrame(refID,
		data.NewField("time", nil, times),
		data.NewField("device", nil, devices),
		data.NewField("sensor", nil, sensors),
		data.NewField(metric, nil, values))
	f.RefID = refID
	f.Meta = &data.FrameMeta{Type: data.FrameTypeTable, ExecutedQueryString: executed}
	return f
}

// Strings is the answer of a variable query: one string column.
func Strings(refID, name string, values []string) *data.Frame {
	if values == nil {
		values = []string{}
	}
	f := data.NewFrame(refID, data.NewField(name, nil, values))
	f.RefID = refID
	f.Meta = &data.FrameMeta{Type: data.FrameTypeTable}
	return f
}

// WideToMulti splits a wide time-series frame (one time field, several value fields) into dataplane multi
// frames, one per value field, dropping empty label values and sorting by time.
func WideToMulti(refID string, wide *data.Frame, executed string) (data.Frames, error) {
	ts := wide.TimeSeriesSchema()
	if ts.Type != data.TimeSeriesTypeWide {
		return nil, fmt.Errorf("result is not a time series (it needs a time column and numeric columns); use format table")
	}
	timeField := wide.Fields[ts.TimeIndex]
	var frames data.Frames
	for i, f := range wide.Fields {
		if i == ts.TimeIndex || !f.Type().Numeric() {
			continue
		}
		labels := data.Labels{}
		for k, v := range f.Labels {
			if v != "" {
				labels[k] = v
			}
		}
		fr := data.NewFrame(f.Name, copyField(timeField), copyField(f))
		fr.Fields[1].Labels = labels
		fr.RefID = refID
		fr.Meta = &data.FrameMeta{Type: data.FrameTypeTimeSeriesMulti, TypeVersion: data.FrameTypeVersion{0, 1}, ExecutedQueryString: executed}
		frames = append(frames, fr)
	}
	if len(frames) == 0 {
		return nil, fmt.Errorf("result has no numeric column; use format table")
	}
	return frames, nil
}

func copyField(f *data.Field) *data.Field {
	c := data.NewFieldFromFieldType(f.Type(), 0)
	c.Name = f.Name
	c.Config = f.Config
	c.AppendAll(f)
	return c
}

// LabelsPush is a frame in Grafana's labels push mode: a string field "labels" (one label set per row, in
// Prometheus form {k="v", ...}, see PromLabels), then time, then the value. Live streams send these; nil
// slices make the empty frame a live query answers with.
func LabelsPush[V float64 | string](refID, valueName string, labels []string, times []time.Time, values []V) *data.Frame {
	if labels == nil {
		labels, times, values = []string{}, []time.Time{}, []V{}
	}
	f := data.NewFrame(refID,
		data.NewField("labels", nil, labels),
		data.NewField(data.TimeSeriesTimeFieldName, nil, times),
		data.NewField(valueName, nil, values))
	f.RefID = refID
	return f
}

// labelValueReplacer keeps label values inside PromLabels' quotes.
var labelValueReplacer = strings.NewReplacer(`"`, "'", "\n", " ", `\`, "/")

// PromLabels renders label pairs (key, value, key, value...) as {k="v", ...}, skipping empty values.
// Quotes and newlines in values are replaced: Grafana's label parser does not unescape.
func PromLabels(kv ...string) string {
	var b strings.Builder
	b.WriteByte('{')
	n := 0
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			continue
		}
		if n > 0 {
			b.WriteString(", ")
		}
		n++
		b.WriteString(kv[i])
		b.WriteString(`="`)
		b.WriteString(labelValueReplacer.Replace(kv[i+1]))
		b.WriteByte('"')
	}
	b.WriteByte('}')
	return b.String()
}
