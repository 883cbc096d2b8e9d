package telemetry

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
	"unsafe"
)

// ValueType is what a subscription's values may be: numbers only (the default), or states too (text, booleans).
type ValueType string

// Value types.
const (
	ValueNumber ValueType = "number" // numbers only: anything else is rejected (not_a_number) or skipped (JSON, line protocol)
	ValueText   ValueType = "text"   // the value format's payload is text; JSON strings and line-protocol string fields are states
	ValueBool   ValueType = "bool"   // the value format's payload is a boolean word; JSON and line-protocol booleans are states
	ValueAuto   ValueType = "auto"   // a number when it parses as one, else a boolean word, else text
)

// ValueTypes lists the value types in the order editors and docs offer them.
var ValueTypes = []ValueType{ValueNumber, ValueText, ValueBool, ValueAuto}

// ParseValueType parses a configured value type (case-insensitive, surrounding spaces ignored); "" is ValueNumber.
func ParseValueType(s string) (ValueType, error) {
	switch v := ValueType(strings.ToLower(strings.TrimSpace(s))); v {
	case "":
		return ValueNumber, nil
	case ValueNumber, ValueText, ValueBool, ValueAuto:
		return v, nil
	}
	return "", fmt.Errorf("%w: unknown value type %s (want number, text, bool or auto)", ErrInvalidOptions, quoteTrunc(s))
}

// Kind is the kind of one reading's value.
type Kind uint8

// Value kinds. A KindText or KindBool reading is a state: its value is Reading.Text ("true"/"false" for
// KindBool), stored in the states table, not in readings.
const (
	KindNumber Kind = iota
	KindText
	KindBool
)

// String names the kind as the states table's kind column does.
func (k Kind) String() string {
	switch k {
	case KindText:
		return "text"
	case KindBool:
		return "bool"
	}
	return "number"
}

// IsState reports whether r carries a text or boolean value.
func (r *Reading) IsState() bool { return r.Kind != KindNumber }

// MaxTextBytes bounds a state's text value (after trimming).
const MaxTextBytes = 1024

// CheckText validates a state's text: not empty, at most MaxTextBytes, valid UTF-8, no control characters other
// than tab (PostgreSQL text cannot hold NUL; newlines would break a panel's one-line state). It returns the
// rejection reason and a short message, or "" when the text is fine.
func CheckText(s string) (Reason, string) {
	switch {
	case s == "":
		return ReasonEmpty, "text value is empty"
	case len(s) > MaxTextBytes:
		return ReasonTextTooLong, "text value is " + strconv.Itoa(len(s)) + " bytes, limit " + strconv.Itoa(MaxTextBytes)
	case !utf8.ValidString(s):
		return ReasonNotUTF8, "text value is not valid UTF-8"
	}
	for _, c := range s {
		if c < 0x20 && c != '\t' || c == 0x7f || c >= 0x80 && c < 0xa0 {
			return ReasonBadText, "text value holds control character " + strconv.QuoteRune(c)
		}
	}
	return "", ""
}

func textRejection(s, where string) *Rejection {
	reason, msg := CheckText(s)
	if reason == "" {
		return nil
	}
	if where != "" {
		msg = where + ": " + msg
	}
	return reject(reason, "%s", msg)
}

// ParseBoolWord reads a boolean word, case-insensitively: true/false, on/off, yes/no, 1/0.
func ParseBoolWord(s string) (value, ok bool) {
	switch strings.ToLower(s) {
	case "true", "on", "yes", "1":
		return true, true
	case "false", "off", "no", "0":
		return false, true
	}
	return false, false
}

// boolText is the stored text of a boolean state.
func boolText(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

// stateReading builds a state reading (time set later by the caller).
func stateReading(l Labels, kind Kind, text string) Reading {
	r := Reading{Device: l.Device, Metric: l.Metric, Sensor: l.Sensor, Unit: l.Unit, Kind: kind, Text: text}
	if kind == KindBool && text == "true" {
		r.Value = 1
	}
	return r
}

// decodeState reads the value format's payload p (trimmed, surrounding double quotes removed) for value types
// other than number. It returns a number reading for auto when p parses as a finite number.
func (d *Decoder) decodeState(l Labels, p []byte) (Reading, *Rejection) {
	s := unsafe.String(unsafe.SliceData(p), len(p)) // checked and copied below before it is kept
	switch d.valueType {
	case ValueBool:
		b, ok := ParseBoolWord(s)
		if !ok {
			return Reading{}, reject(ReasonNotABool, "value %s is not a boolean word (true/false, on/off, yes/no, 1/0)", quoteTruncBytes(p))
		}
		return stateReading(l, KindBool, boolText(b)), nil
	case ValueAuto:
		if v, err := strconv.ParseFloat(s, 64); err == nil && checkFloat(v, nil, p) == nil {
			return Reading{Device: l.Device, Metric: l.Metric, Sensor: l.Sensor, Unit: l.Unit, Value: v}, nil
		}
		if b, ok := ParseBoolWord(s); ok {
			return stateReading(l, KindBool, boolText(b)), nil
		}
	}
	if rej := textRejection(s, ""); rej != nil {
		return Reading{}, rej
	}
	return stateReading(l, KindText, strings.Clone(s)), nil
}

// jsonState turns a JSON string or boolean leaf into a state reading when the value type allows it; ok is false
// when the leaf is not a state for this decoder (it is then skipped, as non-numeric leaves always were).
func (d *Decoder) jsonState(l Labels, path string, v any) (r Reading, ok bool, rej *Rejection) {
	switch v := v.(type) {
	case bool:
		if d.valueType == ValueNumber {
			return Reading{}, false, nil
		}
		return stateReading(l, KindBool, boolText(v)), true, nil
	case string:
		switch d.valueType {
		case ValueNumber:
			return Reading{}, false, nil
		case ValueBool:
			b, isBool := ParseBoolWord(v)
			if !isBool {
				return Reading{}, false, nil
			}
			return stateReading(l, KindBool, boolText(b)), true, nil
		case ValueAuto:
			if b, isBool := ParseBoolWord(v); isBool {
				return stateReading(l, KindBool, boolText(b)), true, nil
			}
		}
		if rej := textRejection(v, "field "+quoteTrunc(path)); rej != nil {
			return Reading{}, false, rej
		}
		return stateReading(l, KindText, v), true, nil
	}
	return Reading{}, false, nil
}
