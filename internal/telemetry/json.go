package telemetry

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"time"
)

func (d *Decoder) decodeJSON(base Labels, p []byte, received time.Time, dst []Reading) ([]Reading, *Rejection) {
	dec := json.NewDecoder(bytes.NewReader(p))
	dec.UseNumber() // keep the number text: "1e999" must be rejected as inf, not as a syntax error
	var root any
	if err := dec.Decode(&root); err != nil {
		return dst, reject(ReasonBadJSON, "%v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return dst, reject(ReasonBadJSON, "unexpected data after the JSON value at offset %d", dec.InputOffset())
	}

	t := received
	if d.timePath != nil {
		if v, ok := lookup(root, d.timePath); ok {
			var rej *Rejection
			if t, rej = d.parseJSONTime(v); rej != nil {
				return dst, rej
			}
		}
	}

	n0 := len(dst)
	var rej *Rejection
	if len(d.fields) > 0 {
		for i := range d.fields {
			f := &d.fields[i]
			v, ok := lookup(root, f.segs)
			if !ok {
				continue
			}
			l := overlay(base, f.labels)
			if l.Metric == "" {
				l.Metric = f.path
			}
			num, ok := v.(json.Number)
			if !ok {
				r, isState, rej := d.jsonState(l, f.path, v)
				if rej != nil {
					return dst, rej
				}
				if isState {
					dst = append(dst, r)
				}
				continue // other leaves are neither readings nor states
			}
			if dst, rej = appendJSONReading(dst, l, f.path, num); rej != nil {
				return dst, rej
			}
		}
	} else if dst, rej = d.walkJSON(root, "", base, dst); rej != nil {
		return dst, rej
	}
	if len(dst) == n0 {
		if d.valueType != ValueNumber {
			return dst, reject(ReasonNoFields, "no numeric, string or boolean field in the JSON payload")
		}
		return dst, reject(ReasonNoFields, "no numeric field in the JSON payload")
	}
	for i := n0; i < len(dst); i++ {
		if rej := checkReadingLabels(labelsOf(&dst[i])); rej != nil {
			return dst, rej
		}
		dst[i].Time = t
	}
	if rej := d.checkTime(t, received); rej != nil {
		return dst, rej
	}
	return dst, nil
}

// walkJSON appends a reading for every numeric leaf under v, in sorted key order, and a state for every string
// or boolean leaf the value type admits (jsonState).
func (d *Decoder) walkJSON(v any, path string, base Labels, dst []Reading) ([]Reading, *Rejection) {
	var rej *Rejection
	switch v := v.(type) {
	case map[string]any:
		for _, k := range slices.Sorted(maps.Keys(v)) {
			child := k
			if path != "" {
				child = path + "." + k
			}
			if dst, rej = d.walkJSON(v[k], child, base, dst); rej != nil {
				return dst, rej
			}
		}
	case []any:
		for i, e := range v {
			child := strconv.Itoa(i)
			if path != "" {
				child = path + "." + child
			}
			if dst, rej = d.walkJSON(e, child, base, dst); rej != nil {
				return dst, rej
			}
		}
	case json.Number, string, bool:
		if d.timePath != nil && path == d.timeField {
			return dst, nil
		}
		l := base
		switch path {
		case "", "value": // a bare value or a top-level "value" field: the topic's metric
			l.Metric = cmpOr(base.Metric, "value")
		default:
			l.Metric = path
		}
		if num, ok := v.(json.Number); ok {
			return appendJSONReading(dst, l, cmpOr(path, "(top level)"), num)
		}
		r, isState, rej := d.jsonState(l, cmpOr(path, "(top level)"), v)
		if rej != nil {
			return dst, rej
		}
		if isState {
			dst = append(dst, r)
		}
	}
	return dst, nil
}

func appendJSONReading(dst []Reading, l Labels, path string, num json.Number) ([]Reading, *Rejection) {
	v, err := strconv.ParseFloat(string(num), 64)
	if rej := checkFloat(v, err, []byte(num)); rej != nil {
		rej.Detail = truncate("field "+quoteTrunc(path)+": "+rej.Detail, maxDetail)
		if rej.Reason == ReasonBadLine { // cannot happen: json.Number text is valid JSON number syntax
			rej.Reason = ReasonBadJSON
		}
		return dst, rej
	}
	return append(dst, Reading{Device: l.Device, Metric: l.Metric, Sensor: l.Sensor, Unit: l.Unit, Value: v}), nil
}

// overlay returns base with the non-empty labels of o.
func overlay(base, o Labels) Labels {
	base.Device = cmpOr(o.Device, base.Device)
	base.Metric = cmpOr(o.Metric, base.Metric)
	base.Sensor = cmpOr(o.Sensor, base.Sensor)
	base.Unit = cmpOr(o.Unit, base.Unit)
	return base
}

func labelsOf(r *Reading) Labels {
	return Labels{Device: r.Device, Metric: r.Metric, Sensor: r.Sensor, Unit: r.Unit}
}

// lookup follows a dotted path (already split) through objects and arrays (numeric segments).
func lookup(v any, segs []string) (any, bool) {
	for _, s := range segs {
		switch c := v.(type) {
		case map[string]any:
			var ok bool
			if v, ok = c[s]; !ok {
				return nil, false
			}
		case []any:
			i, err := strconv.Atoi(s)
			if err != nil || i < 0 || i >= len(c) {
				return nil, false
			}
			v = c[i]
		default:
			return nil, false
		}
	}
	return v, true
}

func (d *Decoder) parseJSONTime(v any) (time.Time, *Rejection) {
	switch v := v.(type) {
	case string:
		if d.timeFormat == timeAuto || d.timeFormat == timeRFC3339 {
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				return time.Time{}, reject(ReasonBadTime, "time field %s: %s is not an RFC 3339 time", quoteTrunc(d.timeField), quoteTrunc(v))
			}
			return t.UTC(), nil
		}
		return d.unixTime(v)
	case json.Number:
		if d.timeFormat == timeRFC3339 {
			return time.Time{}, reject(ReasonBadTime, "time field %s is a number, want an RFC 3339 string", quoteTrunc(d.timeField))
		}
		return d.unixTime(string(v))
	}
	return time.Time{}, reject(ReasonBadTime, "time field %s is %s, want a string or a number", quoteTrunc(d.timeField), jsonKind(v))
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	}
	return "of an unexpected type"
}

// maxAbsUnixSeconds bounds parsed times (about year 33658) so that time arithmetic cannot overflow; anything
// beyond is out of range for any sensible MaxFuture.
const maxAbsUnixSeconds = 1e12

// unixTime parses a Unix timestamp in the configured unit (or, for auto, the unit its magnitude implies:
// below 1e11 seconds, below 1e14 milliseconds, below 1e17 microseconds, else nanoseconds).
func (d *Decoder) unixTime(s string) (time.Time, *Rejection) {
	unit := d.timeFormat
	if i, err := strconv.ParseInt(s, 10, 64); err == nil {
		if unit == timeAuto {
			unit = magnitudeUnit(math.Abs(float64(i)))
		}
		per := unitsPerSecond(unit)
		sec, frac := i/per, i%per
		if sec > maxAbsUnixSeconds || sec < -maxAbsUnixSeconds {
			return time.Time{}, reject(ReasonTimeRange, "time field %s: %s is out of range", quoteTrunc(d.timeField), quoteTrunc(s))
		}
		return time.Unix(sec, frac*(1e9/per)).UTC(), nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if (err != nil && !errors.Is(err, strconv.ErrRange)) || math.IsNaN(f) { // overflow continues as ±Inf
		return time.Time{}, reject(ReasonBadTime, "time field %s: %s is not a number", quoteTrunc(d.timeField), quoteTrunc(s))
	}
	if unit == timeAuto {
		unit = magnitudeUnit(math.Abs(f))
	}
	secs := f / float64(unitsPerSecond(unit))
	if !(math.Abs(secs) <= maxAbsUnixSeconds) { // also ±Inf
		return time.Time{}, reject(ReasonTimeRange, "time field %s: %s is out of range", quoteTrunc(d.timeField), quoteTrunc(s))
	}
	whole, frac := math.Modf(secs)
	return time.Unix(int64(whole), int64(math.Round(frac*1e9))).UTC(), nil
}

func magnitudeUnit(a float64) timeFormat {
	switch {
	case a < 1e11:
		return timeUnix
	case a < 1e14:
		return timeUnixMS
	case a < 1e17:
		return timeUnixUS
	}
	return timeUnixNS
}

func unitsPerSecond(u timeFormat) int64 {
	switch u {
	case timeUnixMS:
		return 1e3
	case timeUnixUS:
		return 1e6
	case timeUnixNS:
		return 1e9
	}
	return 1
}
