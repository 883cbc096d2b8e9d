package telemetry

import (
	"errors"
	"math"
	"strconv"
	"time"
	"unsafe"

	"github.com/influxdata/line-protocol/v2/lineprotocol"
)

// decodeInflux decodes one or more lines of line protocol. Each numeric field of each line is a reading, each
// string or boolean field a state when the value type admits it (see jsonState): the field "value" has the
// measurement as its metric, any other field f has "<measurement>_<f>".
func (d *Decoder) decodeInflux(base Labels, p []byte, received time.Time, dst []Reading) ([]Reading, *Rejection) {
	lp := lineprotocol.NewDecoderWithBytes(p)
	n0 := len(dst)
	line := 0
	for lp.Next() {
		line++
		// The decoder's byte slices are only valid until its next call: copy what we keep at once.
		mb, err := lp.Measurement()
		if err != nil {
			return dst, badLine(line, err)
		}
		measurement := string(mb)
		l := base
		devRank := len(d.deviceTags) // index in deviceTags of the tag that set l.Device
		for {
			k, v, err := lp.NextTag()
			if err != nil {
				return dst, badLine(line, err)
			}
			if k == nil {
				break
			}
			key := unsafe.String(unsafe.SliceData(k), len(k)) // compared only, never kept
			for i, name := range d.deviceTags[:devRank] {
				if key == name {
					l.Device, devRank = string(v), i
					break
				}
			}
			if key == d.sensorTag {
				l.Sensor = string(v)
			}
			if key == d.unitTag {
				l.Unit = string(v)
			}
		}
		first := len(dst)
		for {
			k, kind, v, err := lp.NextFieldBytes()
			if err != nil {
				return dst, badLine(line, err)
			}
			if k == nil {
				break
			}
			var f float64
			switch kind {
			case lineprotocol.Float:
				f, err = strconv.ParseFloat(unsafe.String(unsafe.SliceData(v), len(v)), 64)
				if rej := checkFloat(f, err, v); rej != nil {
					rej.Detail = truncate("line "+strconv.Itoa(line)+" field "+quoteTruncBytes(k)+": "+rej.Detail, maxDetail)
					return dst, rej
				}
			case lineprotocol.Int, lineprotocol.Uint:
				val, err := lineprotocol.NewValueFromBytes(kind, v)
				if err != nil {
					return dst, reject(ReasonBadLine, "line %d field %s: %v", line, quoteTruncBytes(k), err)
				}
				if kind == lineprotocol.Int {
					f = float64(val.IntV())
				} else {
					f = float64(val.UintV())
				}
			case lineprotocol.Bool, lineprotocol.String:
				val, err := lineprotocol.NewValueFromBytes(kind, v)
				if err != nil {
					return dst, reject(ReasonBadLine, "line %d field %s: %v", line, quoteTruncBytes(k), err)
				}
				if d.valueType == ValueNumber {
					continue // not numeric
				}
				ml := l
				ml.Metric = influxMetric(measurement, k)
				var state any
				if kind == lineprotocol.Bool {
					state = val.BoolV()
				} else {
					state = val.StringV()
				}
				r, isState, rej := d.jsonState(ml, "line "+strconv.Itoa(line)+" field "+string(k), state)
				if rej != nil {
					return dst, rej
				}
				if isState {
					dst = append(dst, r)
				}
				continue
			default:
				continue
			}
			dst = append(dst, Reading{Device: l.Device, Metric: influxMetric(measurement, k), Sensor: l.Sensor, Unit: l.Unit, Value: f})
		}
		tb, err := lp.TimeBytes()
		if err != nil {
			return dst, badLine(line, err)
		}
		t := received
		if tb != nil {
			var rej *Rejection
			if t, rej = d.influxTime(line, tb); rej != nil {
				return dst, rej
			}
		}
		for i := first; i < len(dst); i++ {
			if rej := checkReadingLabels(labelsOf(&dst[i])); rej != nil {
				rej.Detail = truncate("line "+strconv.Itoa(line)+": "+rej.Detail, maxDetail)
				return dst, rej
			}
			dst[i].Time = t
		}
		if first < len(dst) {
			if rej := d.checkTime(t, received); rej != nil {
				rej.Detail = truncate("line "+strconv.Itoa(line)+": "+rej.Detail, maxDetail)
				return dst, rej
			}
		}
	}
	if err := lp.Err(); err != nil { // never for a byte decoder; kept for safety
		return dst, badLine(line, err)
	}
	if len(dst) == n0 {
		return dst, reject(ReasonNoFields, "no numeric field in %d line(s) of line protocol", line)
	}
	return dst, nil
}

// influxMetric names a field's metric: the field "value" is the measurement, any other f is "<measurement>_<f>".
func influxMetric(measurement string, field []byte) string {
	if string(field) == "value" {
		return measurement
	}
	return measurement + "_" + string(field)
}

func badLine(line int, err error) *Rejection {
	var de *lineprotocol.DecodeError
	if errors.As(err, &de) {
		return reject(ReasonBadLine, "%v", err) // "at line N:C: problem"
	}
	return reject(ReasonBadLine, "line %d: %v", line, err)
}

// influxTime converts a timestamp in the configured precision.
func (d *Decoder) influxTime(line int, tb []byte) (time.Time, *Rejection) {
	ts, err := strconv.ParseInt(string(tb), 10, 64)
	if err != nil {
		if errors.Is(err, strconv.ErrRange) {
			return time.Time{}, reject(ReasonTimeRange, "line %d: timestamp %s overflows int64", line, quoteTruncBytes(tb))
		}
		return time.Time{}, reject(ReasonBadTime, "line %d: timestamp %s is not an integer", line, quoteTruncBytes(tb))
	}
	if ts > math.MaxInt64/d.precision || ts < math.MinInt64/d.precision {
		return time.Time{}, reject(ReasonTimeRange, "line %d: timestamp %s overflows in precision %s", line, quoteTruncBytes(tb), time.Duration(d.precision))
	}
	return time.Unix(0, ts*d.precision).UTC(), nil
}
