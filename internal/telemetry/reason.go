package telemetry

import (
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// Reason is why a message was rejected. It is used as a Prometheus label value, so it is snake_case and the set
// is closed: Reasons lists every value.
type Reason string

// The rejection reasons, in the order Reasons returns them.
const (
	ReasonEmpty         Reason = "empty"             // payload empty or only whitespace
	ReasonOversized     Reason = "oversized"         // payload longer than Options.MaxPayloadBytes
	ReasonNotUTF8       Reason = "not_utf8"          // payload is not valid UTF-8
	ReasonNotANumber    Reason = "not_a_number"      // value format could not parse
	ReasonNaN           Reason = "nan"               // a value is NaN
	ReasonInf           Reason = "inf"               // a value is ±Inf or overflows float64 ("1e999")
	ReasonBadJSON       Reason = "bad_json"          // json format: syntax error or trailing data
	ReasonNoFields      Reason = "no_numeric_fields" // json/influx with nothing numeric to store
	ReasonBadLine       Reason = "bad_line_protocol" // influx format: syntax error
	ReasonBadTime       Reason = "bad_time"          // time field present but unparsable
	ReasonTimeRange     Reason = "time_out_of_range" // before 2000-01-01 or more than MaxFuture ahead of receive time
	ReasonTopicMismatch Reason = "topic_mismatch"    // topic does not match the template
	ReasonBadLabel      Reason = "bad_label"         // empty device or metric, label longer than 256 bytes, control chars
	ReasonNotABool      Reason = "not_a_bool"        // value type bool: the payload is not a boolean word
	ReasonTextTooLong   Reason = "text_too_long"     // a state's text is longer than MaxTextBytes
	ReasonBadText       Reason = "bad_text"          // a state's text holds a control character (NUL, newline, …)
)

var allReasons = [...]Reason{
	ReasonEmpty,
	ReasonOversized,
	ReasonNotUTF8,
	ReasonNotANumber,
	ReasonNaN,
	ReasonInf,
	ReasonBadJSON,
	ReasonNoFields,
	ReasonBadLine,
	ReasonBadTime,
	ReasonTimeRange,
	ReasonTopicMismatch,
	ReasonBadLabel,
	ReasonNotABool,
	ReasonTextTooLong,
	ReasonBadText,
}

// Reasons returns every Reason in a stable order (for pre-registering metric label values). The caller may
// modify the returned slice.
func Reasons() []Reason {
	out := make([]Reason, len(allReasons))
	copy(out, allReasons[:])
	return out
}

// Rejection is the error type Decode returns for bad input. Detail is short and safe to log: it never contains
// the whole payload, and any quoted input is truncated to about 64 bytes.
type Rejection struct {
	Reason Reason
	Detail string
}

func (r *Rejection) Error() string {
	if r.Detail == "" {
		return "telemetry: message rejected: " + string(r.Reason)
	}
	return "telemetry: message rejected: " + string(r.Reason) + ": " + r.Detail
}

// ReasonUnknown labels an error that is not a *Rejection (not one of Reasons: decoders return rejections only).
const ReasonUnknown Reason = "unknown"

// ReasonOf returns the Reason and Detail of a *Rejection in err's chain, for counting and logging; any other
// error is ReasonUnknown with its own text.
func ReasonOf(err error) (Reason, string) {
	var r *Rejection
	if errors.As(err, &r) {
		return r.Reason, r.Detail
	}
	return ReasonUnknown, err.Error()
}

// Oversized is the rejection of a payload of size bytes over limit: what Decode returns for one, and what a
// reader that skipped such a payload without keeping it (internal/mqttsub) reports in its place.
func Oversized(size, limit int) *Rejection {
	return reject(ReasonOversized, "payload is %d bytes, limit %d", size, limit)
}

func reject(reason Reason, format string, args ...any) *Rejection {
	return &Rejection{Reason: reason, Detail: truncate(fmt.Sprintf(format, args...), maxDetail)}
}

const (
	maxQuoted = 64  // bytes of input quoted in a Detail
	maxDetail = 256 // bytes of a whole Detail (library error messages may quote input)
)

// truncate cuts s to at most n bytes on a rune boundary, marking the cut with "...".
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

// quoteTrunc quotes s (Go syntax, so control characters and invalid UTF-8 are escaped), truncated to about
// maxQuoted bytes of input.
func quoteTrunc(s string) string {
	if len(s) <= maxQuoted {
		return strconv.Quote(s)
	}
	return strconv.Quote(truncate(s, maxQuoted))
}

func quoteTruncBytes(b []byte) string {
	// Convert at most maxQuoted+1 bytes: enough for quoteTrunc to see that it must cut.
	return quoteTrunc(string(b[:min(len(b), maxQuoted+1)]))
}
