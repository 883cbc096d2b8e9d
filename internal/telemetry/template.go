package telemetry

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// ErrInvalidTemplate is wrapped by every error ParseTemplate returns.
var ErrInvalidTemplate = errors.New("telemetry: invalid topic template")

// Labels carried by a topic (or set statically).
type Labels struct{ Device, Metric, Sensor, Unit string }

type segKind uint8

const (
	segLiteral segKind = iota
	segDevice
	segMetric
	segSensor
	segUnit
	segPlus
)

// provides bits, one per placeholder.
const (
	hasDevice uint8 = 1 << iota
	hasMetric
	hasSensor
	hasUnit
)

var placeholders = map[string]segKind{
	"device": segDevice,
	"metric": segMetric,
	"sensor": segSensor,
	"unit":   segUnit,
}

type segment struct {
	kind segKind
	lit  string // segLiteral only
}

// Template is a compiled topic template such as "{device}/{metric}/{sensor}" or "iiot/{device}/{metric}".
//
// Segments are separated by '/'. A segment is either a literal (must equal the topic segment), a placeholder
// {device} {metric} {sensor} {unit} (captures that whole segment), "+" (any one segment, ignored), or "#" as
// the last segment only (any number of remaining segments, including zero, ignored). Without a trailing '#',
// a topic must have exactly as many segments as the template.
//
// A Template is immutable and safe for concurrent use.
type Template struct {
	raw      string
	segs     []segment
	hash     bool  // trailing '#'
	provides uint8 // hasDevice|hasMetric|...
}

// ParseTemplate compiles a topic template. Errors wrap ErrInvalidTemplate and name the offending segment.
func ParseTemplate(s string) (*Template, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w %s: %s", ErrInvalidTemplate, quoteTrunc(s), fmt.Sprintf(format, args...))
	}
	if s == "" {
		return nil, bad("template is empty")
	}
	if !utf8.ValidString(s) {
		return nil, bad("template is not valid UTF-8")
	}
	if len(s) > 65535 {
		return nil, bad("template is longer than 65535 bytes (the MQTT topic limit)")
	}
	if i := strings.IndexByte(s, 0); i >= 0 {
		return nil, bad("NUL character at byte %d", i)
	}
	t := &Template{raw: s}
	parts := strings.Split(s, "/")
	t.segs = make([]segment, 0, len(parts))
	for i, p := range parts {
		n := i + 1 // 1-based segment number for messages
		switch {
		case p == "#":
			if i != len(parts)-1 {
				return nil, bad("'#' must be the last segment, found at segment %d of %d", n, len(parts))
			}
			t.hash = true
			continue
		case p == "+":
			t.segs = append(t.segs, segment{kind: segPlus})
			continue
		case len(p) >= 2 && p[0] == '{' && p[len(p)-1] == '}' && strings.Count(p, "{") == 1 && strings.Count(p, "}") == 1:
			name := p[1 : len(p)-1]
			k, ok := placeholders[name]
			if !ok {
				return nil, bad("unknown placeholder %q in segment %d (want one of {device}, {metric}, {sensor}, {unit})", p, n)
			}
			bit := uint8(1) << (k - segDevice)
			if t.provides&bit != 0 {
				return nil, bad("placeholder %s used more than once (again in segment %d)", p, n)
			}
			t.provides |= bit
			t.segs = append(t.segs, segment{kind: k})
			continue
		}
		// A literal segment.
		open, closing := strings.ContainsRune(p, '{'), strings.ContainsRune(p, '}')
		switch {
		case open && closing:
			return nil, bad("segment %d %q mixes a placeholder with literal text; a placeholder must be a whole segment", n, p)
		case open || closing:
			return nil, bad("segment %d %q has an unbalanced brace", n, p)
		case strings.ContainsAny(p, "+#"):
			return nil, bad("segment %d %q: wildcards '+' and '#' must be a whole segment", n, p)
		}
		t.segs = append(t.segs, segment{kind: segLiteral, lit: p})
	}
	return t, nil
}

// MustParseTemplate is like ParseTemplate but panics on error. For tests and static templates.
func MustParseTemplate(s string) *Template {
	t, err := ParseTemplate(s)
	if err != nil {
		panic(err)
	}
	return t
}

// String returns the template as it was parsed.
func (t *Template) String() string { return t.raw }

// Filter returns the MQTT subscription filter that covers every topic the template can match: each
// placeholder becomes '+'. For "iiot/{device}/{metric}" it returns "iiot/+/+".
func (t *Template) Filter() string {
	var b strings.Builder
	for i, sg := range t.segs {
		if i > 0 {
			b.WriteByte('/')
		}
		if sg.kind == segLiteral {
			b.WriteString(sg.lit)
		} else {
			b.WriteByte('+')
		}
	}
	if t.hash {
		if len(t.segs) > 0 {
			b.WriteByte('/')
		}
		b.WriteByte('#')
	}
	return b.String()
}

// Provides reports which labels the template's placeholders supply: the returned Labels has "{device}",
// "{metric}", ... in the fields whose placeholder occurs in the template and "" elsewhere.
func (t *Template) Provides() Labels {
	var l Labels
	if t.provides&hasDevice != 0 {
		l.Device = "{device}"
	}
	if t.provides&hasMetric != 0 {
		l.Metric = "{metric}"
	}
	if t.provides&hasSensor != 0 {
		l.Sensor = "{sensor}"
	}
	if t.provides&hasUnit != 0 {
		l.Unit = "{unit}"
	}
	return l
}

// Match reports whether topic matches the template and extracts the placeholders' labels. The returned strings
// are substrings of topic; Match does not allocate. A placeholder may capture an empty segment ("pico//dht22"):
// Match still succeeds and the Decoder then rejects the empty label as bad_label.
func (t *Template) Match(topic string) (Labels, bool) {
	var l Labels
	pos := 0
	done := false // no segment left in topic
	for i := range t.segs {
		if done {
			return Labels{}, false
		}
		var s string
		if j := strings.IndexByte(topic[pos:], '/'); j >= 0 {
			s = topic[pos : pos+j]
			pos += j + 1
		} else {
			s = topic[pos:]
			done = true
		}
		switch sg := &t.segs[i]; sg.kind {
		case segLiteral:
			if s != sg.lit {
				return Labels{}, false
			}
		case segDevice:
			l.Device = s
		case segMetric:
			l.Metric = s
		case segSensor:
			l.Sensor = s
		case segUnit:
			l.Unit = s
		case segPlus:
		}
	}
	if !done && !t.hash {
		return Labels{}, false // topic has more segments than the template
	}
	return l, true
}

// Segment is one level of a template, for code that translates templates (the SQL of a topic column).
type Segment struct {
	Label   string // "device", "metric", "sensor" or "unit" for a placeholder; "" otherwise
	Literal string // the level's text for a literal level
	Any     bool   // '+': any one level
}

// Segments returns the template's levels in order, and whether it ends with '#' (any number of further levels).
func (t *Template) Segments() (segs []Segment, hash bool) {
	names := map[segKind]string{segDevice: "device", segMetric: "metric", segSensor: "sensor", segUnit: "unit"}
	for _, sg := range t.segs {
		switch sg.kind {
		case segLiteral:
			segs = append(segs, Segment{Literal: sg.lit})
		case segPlus:
			segs = append(segs, Segment{Any: true})
		default:
			segs = append(segs, Segment{Label: names[sg.kind]})
		}
	}
	return segs, t.hash
}
