package telemetry

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
	"unsafe"
)

// Reading is one stored sample.
type Reading struct {
	Time   time.Time
	Device string
	Metric string
	Sensor string // "" when the topic has none
	Unit   string // optional, "" when unknown
	Value  float64
	Kind   Kind   // KindNumber (Value), or a state: KindText or KindBool (Text)
	Text   string // a state's value; "" for numbers
}

// Format is the payload format of a subscription.
type Format string

// Payload formats.
const (
	FormatValue  Format = "value"  // ASCII number, e.g. "22.4", "-33", " 27.6\n" (surrounding whitespace ok)
	FormatJSON   Format = "json"   // JSON document, every numeric leaf (or the mapped ones) a reading
	FormatInflux Format = "influx" // InfluxDB line protocol
)

// ErrInvalidOptions is wrapped by the errors NewDecoder and ParseFormat return for bad configuration.
var ErrInvalidOptions = errors.New("telemetry: invalid decoder options")

// ParseFormat parses a configured format name: "value", "json" or "influx" (case-insensitive, surrounding
// spaces ignored). The empty string means the default, FormatValue.
func ParseFormat(s string) (Format, error) {
	switch f := Format(strings.ToLower(strings.TrimSpace(s))); f {
	case "":
		return FormatValue, nil
	case FormatValue, FormatJSON, FormatInflux:
		return f, nil
	}
	return "", fmt.Errorf("%w: unknown format %s (want %q, %q or %q)", ErrInvalidOptions, quoteTrunc(s), FormatValue, FormatJSON, FormatInflux)
}

// Limits and defaults.
const (
	DefaultMaxPayloadBytes = 65536
	DefaultMaxFuture       = time.Hour
	MaxLabelBytes          = 256 // see CheckLabel
)

var labelTooLong = "is longer than " + strconv.Itoa(MaxLabelBytes) + " bytes"

// MinTime is the earliest reading time accepted: readings before it are rejected as time_out_of_range (they are
// almost always a device whose clock was never set).
var MinTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// JSONOptions configures FormatJSON.
type JSONOptions struct {
	// TimeField is the dotted path of the time field, "" = none (receive time). When the payload has no such
	// field the receive time is used; when it has one that cannot be parsed the message is rejected (bad_time).
	TimeField string
	// TimeFormat is "auto" (default: an RFC 3339 string, or a number whose magnitude tells s/ms/us/ns),
	// "unix", "unix_ms", "unix_us", "unix_ns" (a number, or a string holding one) or "rfc3339" (a string).
	TimeFormat string
	// Fields maps dotted paths (e.g. "n1.t") to labels that override the topic's (non-empty fields only).
	// When non-empty, ONLY these paths are read; a path that is missing or not a number is skipped, and a
	// mapping without a Metric takes the topic's (template or Static) metric, else the path.
	// When empty, every numeric leaf becomes a reading whose metric is its dotted path (array elements are
	// addressed by index, "a.0"), except a top-level field named "value" (or a bare top-level number), whose
	// metric is the topic's metric, else "value".
	Fields map[string]Labels
}

// InfluxOptions configures FormatInflux.
type InfluxOptions struct {
	Precision  string   // timestamp precision: "ns" (default), "us", "ms", "s"
	DeviceTags []string // tags read for the device, first present wins; default "device", "node", "host"
	SensorTag  string   // default "sensor"
	UnitTag    string   // default "unit"
}

// Options configures a Decoder. The zero value of each field means its default.
type Options struct {
	Format          Format        // default FormatValue
	MaxPayloadBytes int           // default 65536 when 0
	MaxFuture       time.Duration // default 1h when 0; readings with time > received+MaxFuture are rejected
	Static          Labels        // labels used when the template does not provide them (template wins)
	ValueType       ValueType     // default ValueNumber: which values are readings and which are states
	JSON            JSONOptions   // FormatJSON only (ignored otherwise)
	Influx          InfluxOptions // FormatInflux only (ignored otherwise)
}

type timeFormat uint8

const (
	timeAuto timeFormat = iota
	timeUnix
	timeUnixMS
	timeUnixUS
	timeUnixNS
	timeRFC3339
)

// TimeFormatNames are the JSON time formats, in the order editors offer them ("" is auto; unix_s is unix).
var TimeFormatNames = []string{"auto", "unix", "unix_ms", "unix_us", "unix_ns", "rfc3339"}

var timeFormats = map[string]timeFormat{
	"":        timeAuto,
	"auto":    timeAuto,
	"unix":    timeUnix,
	"unix_s":  timeUnix,
	"unix_ms": timeUnixMS,
	"unix_us": timeUnixUS,
	"unix_ns": timeUnixNS,
	"rfc3339": timeRFC3339,
}

type jsonField struct {
	path   string
	segs   []string
	labels Labels
}

// Decoder turns one MQTT message into readings. It is immutable and safe for concurrent use.
type Decoder struct {
	tpl        *Template
	format     Format
	maxPayload int
	maxFuture  time.Duration
	static     Labels
	valueType  ValueType // never "": NewDecoder parses "" as ValueNumber

	// json
	timePath   []string // nil = none
	timeField  string
	timeFormat timeFormat
	fields     []jsonField // sorted by path; empty = every numeric leaf

	// influx
	precision  int64 // nanoseconds per timestamp unit
	deviceTags []string
	sensorTag  string
	unitTag    string
}

// NewDecoder compiles template and validates opts. Errors wrap ErrInvalidTemplate or ErrInvalidOptions.
func NewDecoder(template string, opts Options) (*Decoder, error) {
	tpl, err := ParseTemplate(template)
	if err != nil {
		return nil, err // already "telemetry: invalid topic template "...": <problem>"
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w (template %s): %s", ErrInvalidOptions, quoteTrunc(template), fmt.Sprintf(format, args...))
	}
	d := &Decoder{tpl: tpl, static: opts.Static}

	if d.format, err = ParseFormat(string(opts.Format)); err != nil {
		return nil, bad("unknown Format %s (want %q, %q or %q)", quoteTrunc(string(opts.Format)), FormatValue, FormatJSON, FormatInflux)
	}
	if d.valueType, err = ParseValueType(string(opts.ValueType)); err != nil {
		return nil, bad("unknown ValueType %s (want number, text, bool or auto)", quoteTrunc(string(opts.ValueType)))
	}
	switch {
	case opts.MaxPayloadBytes < 0:
		return nil, bad("MaxPayloadBytes is negative (%d)", opts.MaxPayloadBytes)
	case opts.MaxPayloadBytes == 0:
		d.maxPayload = DefaultMaxPayloadBytes
	default:
		d.maxPayload = opts.MaxPayloadBytes
	}
	switch {
	case opts.MaxFuture < 0:
		return nil, bad("MaxFuture is negative (%s)", opts.MaxFuture)
	case opts.MaxFuture == 0:
		d.maxFuture = DefaultMaxFuture
	default:
		d.maxFuture = opts.MaxFuture
	}
	if name, msg := checkLabels(opts.Static, false); msg != "" {
		return nil, bad("Static.%s %s", name, msg)
	}
	base := tpl.Provides()
	haveDevice := base.Device != "" || opts.Static.Device != ""
	haveMetric := base.Metric != "" || opts.Static.Metric != ""

	switch d.format {
	case FormatValue:
		if !haveMetric {
			return nil, bad("the value format needs a metric: put {metric} in the template or set Static.Metric")
		}
		if !haveDevice {
			return nil, bad("the value format needs a device: put {device} in the template or set Static.Device")
		}
	case FormatJSON:
		if err := d.initJSON(opts.JSON, haveDevice); err != nil {
			return nil, bad("JSON: %v", err)
		}
	case FormatInflux:
		if err := d.initInflux(opts.Influx); err != nil {
			return nil, bad("Influx: %v", err)
		}
	}
	return d, nil
}

func (d *Decoder) initJSON(o JSONOptions, haveDevice bool) error {
	tf, ok := timeFormats[strings.ToLower(o.TimeFormat)]
	if !ok {
		return fmt.Errorf("unknown TimeFormat %s (want auto, unix, unix_ms, unix_us, unix_ns or rfc3339)", quoteTrunc(o.TimeFormat))
	}
	d.timeFormat = tf
	if o.TimeField != "" {
		segs, err := splitPath(o.TimeField)
		if err != nil {
			return fmt.Errorf("TimeField: %w", err)
		}
		d.timePath, d.timeField = segs, o.TimeField
	}
	for path, l := range o.Fields {
		segs, err := splitPath(path)
		if err != nil {
			return fmt.Errorf("json fields: %w", err)
		}
		if path == o.TimeField {
			return fmt.Errorf("json fields: path %s is also the TimeField", quoteTrunc(path))
		}
		if name, msg := checkLabels(l, false); msg != "" {
			return fmt.Errorf("json fields[%s].%s %s", quoteTrunc(path), name, msg)
		}
		if !haveDevice && l.Device == "" {
			return fmt.Errorf("json fields[%s] has no Device and neither the template nor Static provides one", quoteTrunc(path))
		}
		d.fields = append(d.fields, jsonField{path: path, segs: segs, labels: l})
	}
	if !haveDevice && len(d.fields) == 0 {
		return errors.New("no device: put {device} in the template, set Static.Device or map Fields with a Device")
	}
	slices.SortFunc(d.fields, func(a, b jsonField) int { return strings.Compare(a.path, b.path) })
	return nil
}

func splitPath(p string) ([]string, error) {
	if p == "" {
		return nil, errors.New("empty path")
	}
	segs := strings.Split(p, ".")
	if slices.Contains(segs, "") {
		return nil, fmt.Errorf("path %s has an empty segment", quoteTrunc(p))
	}
	return segs, nil
}

func (d *Decoder) initInflux(o InfluxOptions) error {
	switch o.Precision {
	case "", "ns":
		d.precision = 1
	case "us", "µs":
		d.precision = int64(time.Microsecond)
	case "ms":
		d.precision = int64(time.Millisecond)
	case "s":
		d.precision = int64(time.Second)
	default:
		return fmt.Errorf("unknown Precision %s (want ns, us, ms or s)", quoteTrunc(o.Precision))
	}
	d.deviceTags = []string{"device", "node", "host"}
	if len(o.DeviceTags) > 0 {
		d.deviceTags = slices.Clone(o.DeviceTags)
	}
	if slices.Contains(d.deviceTags, "") {
		return errors.New("DeviceTags contains an empty tag name")
	}
	d.sensorTag, d.unitTag = cmpOr(o.SensorTag, "sensor"), cmpOr(o.UnitTag, "unit")
	return nil
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// Template returns the decoder's compiled topic template.
func (d *Decoder) Template() *Template { return d.tpl }

// Format returns the decoder's payload format.
func (d *Decoder) Format() Format { return d.format }

// Decode appends the message's readings to dst and returns it. On rejection it returns dst unchanged (length as
// passed in) and a *Rejection. A message is all-or-nothing: if any of its values or labels is bad the whole
// message is rejected.
//
// Checks, in order: the topic matches the template (topic_mismatch); the payload is not empty after trimming
// ASCII whitespace (empty), not longer than MaxPayloadBytes (oversized), valid UTF-8 (not_utf8); then the
// format's own checks; finally every reading's labels (bad_label) and time (time_out_of_range: before MinTime
// or after received+MaxFuture; this applies to the receive time too).
//
// For the value format Decode allocates nothing beyond growing dst.
func (d *Decoder) Decode(topic string, payload []byte, received time.Time, dst []Reading) ([]Reading, error) {
	m, ok := d.tpl.Match(topic)
	if !ok {
		return dst, reject(ReasonTopicMismatch, "topic %s does not match template %s", quoteTrunc(topic), quoteTrunc(d.tpl.raw))
	}
	base := d.static
	if p := d.tpl.provides; p != 0 {
		if p&hasDevice != 0 {
			base.Device = m.Device
		}
		if p&hasMetric != 0 {
			base.Metric = m.Metric
		}
		if p&hasSensor != 0 {
			base.Sensor = m.Sensor
		}
		if p&hasUnit != 0 {
			base.Unit = m.Unit
		}
	}
	p := trimSpace(payload)
	if len(p) == 0 {
		return dst, reject(ReasonEmpty, "payload is empty (%d bytes of whitespace)", len(payload))
	}
	if len(payload) > d.maxPayload {
		return dst, Oversized(len(payload), d.maxPayload)
	}
	if !utf8.Valid(payload) {
		return dst, reject(ReasonNotUTF8, "payload is not valid UTF-8: %s", quoteTruncBytes(p))
	}
	n0 := len(dst)
	var rej *Rejection
	switch d.format {
	case FormatJSON:
		dst, rej = d.decodeJSON(base, p, received, dst)
	case FormatInflux:
		dst, rej = d.decodeInflux(base, p, received, dst)
	default:
		dst, rej = d.decodeValue(base, p, received, dst)
	}
	if rej != nil {
		clear(dst[n0:]) // drop references held by partially built readings
		return dst[:n0], rej
	}
	return dst, nil
}

func (d *Decoder) decodeValue(l Labels, p []byte, received time.Time, dst []Reading) ([]Reading, *Rejection) {
	if len(p) >= 2 && p[0] == '"' && p[len(p)-1] == '"' {
		p = p[1 : len(p)-1]
	}
	if d.valueType != ValueNumber {
		r, rej := d.decodeState(l, p)
		if rej == nil {
			rej = checkReadingLabels(l)
		}
		if rej == nil {
			rej = d.checkTime(received, received)
		}
		if rej != nil {
			return dst, rej
		}
		r.Time = received
		return append(dst, r), nil
	}
	// ParseFloat does not retain its argument (its errors hold a copy), so a zero-copy view is safe.
	v, err := strconv.ParseFloat(unsafe.String(unsafe.SliceData(p), len(p)), 64)
	if rej := checkFloat(v, err, p); rej != nil {
		if rej.Reason == ReasonBadLine { // syntax error: for the value format that is not_a_number
			rej.Reason = ReasonNotANumber
		}
		return dst, rej
	}
	if rej := checkReadingLabels(l); rej != nil {
		return dst, rej
	}
	if rej := d.checkTime(received, received); rej != nil {
		return dst, rej
	}
	return append(dst, Reading{Time: received, Device: l.Device, Metric: l.Metric, Sensor: l.Sensor, Unit: l.Unit, Value: v}), nil
}

// checkFloat classifies the result of strconv.ParseFloat(text). A syntax error is reported as bad_line_protocol;
// callers translate it to their format's reason.
func checkFloat(v float64, err error, text []byte) *Rejection {
	if err != nil {
		if errors.Is(err, strconv.ErrRange) && math.IsInf(v, 0) {
			return reject(ReasonInf, "value %s overflows float64", quoteTruncBytes(text))
		}
		if errors.Is(err, strconv.ErrRange) {
			return nil // underflow: ParseFloat returns the nearest value (0 or a denormal)
		}
		return reject(ReasonBadLine, "cannot parse %s as a number", quoteTruncBytes(text))
	}
	if math.IsNaN(v) {
		return reject(ReasonNaN, "value %s is NaN", quoteTruncBytes(text))
	}
	if math.IsInf(v, 0) {
		return reject(ReasonInf, "value %s is infinite", quoteTruncBytes(text))
	}
	return nil
}

// checkTime rejects t before MinTime or after received+MaxFuture.
func (d *Decoder) checkTime(t, received time.Time) *Rejection {
	if t.Before(MinTime) {
		return reject(ReasonTimeRange, "time %s is before %s", t.UTC().Format(time.RFC3339Nano), MinTime.Format(time.RFC3339))
	}
	if limit := received.Add(d.maxFuture); t.After(limit) {
		return reject(ReasonTimeRange, "time %s is more than %s after the receive time %s",
			t.UTC().Format(time.RFC3339Nano), d.maxFuture, received.UTC().Format(time.RFC3339Nano))
	}
	return nil
}

func checkReadingLabels(l Labels) *Rejection {
	if name, msg := checkLabels(l, true); msg != "" {
		var v string
		switch name {
		case "Device":
			v = l.Device
		case "Metric":
			v = l.Metric
		case "Sensor":
			v = l.Sensor
		default:
			v = l.Unit
		}
		return reject(ReasonBadLabel, "%s %s %s", strings.ToLower(name), quoteTrunc(v), msg)
	}
	return nil
}

// checkLabels returns the name of the first bad label and what is wrong with it, or "", "".
// With required, Device and Metric must be non-empty.
func checkLabels(l Labels, required bool) (name, msg string) {
	if required {
		if l.Device == "" {
			return "Device", "is empty"
		}
		if l.Metric == "" {
			return "Metric", "is empty"
		}
	}
	if msg := checkLabel(l.Device); msg != "" {
		return "Device", msg
	}
	if msg := checkLabel(l.Metric); msg != "" {
		return "Metric", msg
	}
	if msg := checkLabel(l.Sensor); msg != "" {
		return "Sensor", msg
	}
	if msg := checkLabel(l.Unit); msg != "" {
		return "Unit", msg
	}
	return "", ""
}

// CheckLabel validates one label value (device, sensor, metric, unit, a topic level) wherever one enters
// Fieldline: from a message, a query, a channel path. A value passes when it is at most MaxLabelBytes of valid
// UTF-8 without control characters; otherwise the result says what is wrong ("is longer than 256 bytes",
// "is not valid UTF-8", "contains a control character"). It does not allocate: decoders call it per reading.
func CheckLabel(s string) string { return checkLabel(s) }

func checkLabel(s string) string {
	if len(s) > MaxLabelBytes {
		return labelTooLong
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < utf8.RuneSelf {
			if c < 0x20 || c == 0x7f {
				return "contains a control character"
			}
			continue
		}
		// Non-ASCII: decode the rest rune by rune.
		for rest := s[i:]; rest != ""; {
			r, size := utf8.DecodeRuneInString(rest)
			if r == utf8.RuneError && size == 1 {
				return "is not valid UTF-8"
			}
			if unicode.IsControl(r) {
				return "contains a control character"
			}
			rest = rest[size:]
		}
		break
	}
	return ""
}

// trimSpace trims ASCII whitespace (space, \t, \n, \v, \f, \r) from both ends.
func trimSpace(b []byte) []byte {
	i, j := 0, len(b)
	for i < j && isSpace(b[i]) {
		i++
	}
	for j > i && isSpace(b[j-1]) {
		j--
	}
	return b[i:j]
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}
