package store

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/fieldline-iot/fieldline/internal/telemetry"
)

// The fast path of DecodeNotification: a scanner for the one schema of Notification, some 15 times faster than
// decodeNotificationJSON's encoding/json with per-field json.RawMessage decoding (BenchmarkDecodeNotification).
//
// It reads the ingester's canonical form (EncodeNotification) and the trigger's (json_build_object, json_agg and
// json_build_array: `{"v" : 1, ..., "rows" : [[1, "a", "b", "c", 22.4], ...]}`), with any JSON whitespace and
// key order. Whatever else it meets - malformed JSON, a version other than 1, a missing watermark, null, a
// duplicate or unknown key (encoding/json matches keys case-insensitively; we do not guess), a field of another
// type or count, a number out of range, PostgreSQL's "NaN" for a NaN double - makes it give up, and
// DecodeNotification decodes the payload again with decodeNotificationJSON, which gives the result or the error.
// So whenever the fast path succeeds its result is exactly decodeNotificationJSON's (FuzzDecodeNotification
// checks this), and the errors are decodeNotificationJSON's.

// minRowLen is the length of the shortest row with its comma, `[0,"","","",0],`: it bounds how many rows a
// payload can hold, so a lying "n" cannot make us allocate more than the payload could need.
const minRowLen = len(`[0,"","","",0],`)

// Bits of decodeNotificationFast's seen: the keys read so far.
const (
	seenV = 1 << iota
	seenFrom
	seenTo
	seenN
	seenRows
)

// decodeNotificationFast decodes payload without encoding/json. ok is false when it gave up (see above); the
// caller then falls back to decodeNotificationJSON.
func decodeNotificationFast(payload string) (Notification, bool) {
	sc := notifyScanner{s: payload}
	if !sc.consume('{') {
		return Notification{}, false
	}
	var (
		seen               int
		v, from, to, count int64
		rows               []telemetry.Reading
	)
	for {
		key, ok := sc.key()
		if !ok || !sc.consume(':') {
			return Notification{}, false
		}
		var bit int
		switch key {
		case "v":
			bit = seenV
			v, ok = sc.integer(strconv.IntSize)
		case "from":
			bit = seenFrom
			from, ok = sc.integer(64)
		case "to":
			bit = seenTo
			to, ok = sc.integer(64)
		case "n":
			bit = seenN
			count, ok = sc.integer(strconv.IntSize)
		case "rows":
			bit = seenRows
			// "n" comes before "rows" in both writers' payloads: it sizes the slice when it is plausible.
			capacity := (len(payload) - sc.i) / rowEstimate
			if seen&seenN != 0 && count >= 0 && count <= int64((len(payload)-sc.i)/minRowLen+1) {
				capacity = int(count)
			}
			rows, ok = sc.rows(capacity)
		default:
			return Notification{}, false
		}
		if !ok || seen&bit != 0 {
			return Notification{}, false
		}
		seen |= bit
		if sc.consume(',') {
			continue
		}
		if sc.consume('}') {
			break
		}
		return Notification{}, false
	}
	sc.skipSpace()
	if sc.i != len(payload) || seen&(seenV|seenFrom|seenTo) != seenV|seenFrom|seenTo || v != 1 {
		return Notification{}, false
	}
	return Notification{From: time.UnixMicro(from).UTC(), To: time.UnixMicro(to).UTC(), N: int(count), Rows: rows}, true
}

// notifyScanner reads a payload left to right; s[i] is the next byte to read.
type notifyScanner struct {
	s string
	i int
}

// skipSpace skips JSON whitespace.
func (sc *notifyScanner) skipSpace() {
	for sc.i < len(sc.s) {
		switch sc.s[sc.i] {
		case ' ', '\t', '\n', '\r':
			sc.i++
		default:
			return
		}
	}
}

// consume skips whitespace and then c if it comes next, reporting whether it did.
func (sc *notifyScanner) consume(c byte) bool {
	sc.skipSpace()
	if sc.i < len(sc.s) && sc.s[sc.i] == c {
		sc.i++
		return true
	}
	return false
}

// key reads an object key. Keys we know are plain lower-case ASCII, so one with an escape or a control
// character is not ok (the fallback decides what it means).
func (sc *notifyScanner) key() (string, bool) {
	if !sc.consume('"') {
		return "", false
	}
	end := strings.IndexByte(sc.s[sc.i:], '"')
	if end < 0 {
		return "", false
	}
	key := sc.s[sc.i : sc.i+end]
	for i := 0; i < len(key); i++ {
		if key[i] < ' ' || key[i] == '\\' {
			return "", false
		}
	}
	sc.i += end + 1
	return key, true
}

// rows reads the rows array into a slice made with the given capacity: never nil, even for `[]`.
func (sc *notifyScanner) rows(capacity int) ([]telemetry.Reading, bool) {
	if !sc.consume('[') {
		return nil, false
	}
	rows := make([]telemetry.Reading, 0, capacity)
	if sc.consume(']') {
		return rows, true
	}
	var devices, metrics, sensors labelCache
	for {
		var r telemetry.Reading
		if !sc.consume('[') {
			return nil, false
		}
		us, ok := sc.integer(64)
		if !ok || !sc.consume(',') {
			return nil, false
		}
		r.Time = time.UnixMicro(us).UTC()
		if r.Device, ok = sc.label(&devices); !ok || !sc.consume(',') {
			return nil, false
		}
		if r.Metric, ok = sc.label(&metrics); !ok || !sc.consume(',') {
			return nil, false
		}
		if r.Sensor, ok = sc.label(&sensors); !ok || !sc.consume(',') {
			return nil, false
		}
		if r.Value, ok = sc.float(); !ok || !sc.consume(']') {
			return nil, false
		}
		rows = append(rows, r)
		if sc.consume(',') {
			continue
		}
		if sc.consume(']') {
			return rows, true
		}
		return nil, false
	}
}

// number skips whitespace and reads a number with JSON's grammar, -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?,
// which is stricter than strconv's (no "+1", "0x10", "1_000", "Inf", ".5", "1."). It returns the number's text
// and whether it is an integer (no fraction, no exponent). Whatever follows the number is for the caller to check
// (in "01" or "1x" that is not a delimiter, so the caller gives up).
func (sc *notifyScanner) number() (text string, integer, ok bool) {
	sc.skipSpace()
	s, i := sc.s, sc.i
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && '1' <= s[i] && s[i] <= '9':
		i = skipDigits(s, i+1)
	default:
		return "", false, false
	}
	integer = true
	if i < len(s) && s[i] == '.' {
		integer = false
		start := i + 1
		if i = skipDigits(s, start); i == start {
			return "", false, false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		integer = false
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		start := i
		if i = skipDigits(s, i); i == start {
			return "", false, false
		}
	}
	text = s[sc.i:i]
	sc.i = i
	return text, integer, true
}

// skipDigits returns the index of the first non-digit at or after i.
func skipDigits(s string, i int) int {
	for i < len(s) && '0' <= s[i] && s[i] <= '9' {
		i++
	}
	return i
}

// integer reads a JSON integer that fits in bits bits. Like encoding/json decoding into an int, it rejects a
// fraction or an exponent (1.5, 1.0, 1e3).
func (sc *notifyScanner) integer(bits int) (int64, bool) {
	text, integer, ok := sc.number()
	if !ok || !integer {
		return 0, false
	}
	v, err := strconv.ParseInt(text, 10, bits)
	return v, err == nil
}

// float reads a JSON number as a float64; like encoding/json it rejects one out of range (1e400).
func (sc *notifyScanner) float() (float64, bool) {
	text, _, ok := sc.number()
	if !ok {
		return 0, false
	}
	f, err := strconv.ParseFloat(text, 64)
	return f, err == nil
}

// label reads a JSON string (a device, metric or sensor). The usual string, valid UTF-8 without escapes, is
// the payload's bytes between the quotes, interned in c; the rare one with escapes or invalid UTF-8 goes to
// slowString.
func (sc *notifyScanner) label(c *labelCache) (string, bool) {
	if !sc.consume('"') {
		return "", false
	}
	s, start := sc.s, sc.i
	ascii := true
	for i := start; i < len(s); i++ {
		switch b := s[i]; {
		case b == '"':
			raw := s[start:i]
			if !ascii && !utf8.ValidString(raw) {
				return sc.slowString(start - 1)
			}
			sc.i = i + 1
			return c.intern(raw), true
		case b == '\\':
			return sc.slowString(start - 1)
		case b < ' ':
			return "", false // a control character must be escaped in JSON
		case b >= utf8.RuneSelf:
			ascii = false
		}
	}
	return "", false
}

// slowString reads the string whose opening quote is at q with encoding/json, exactly as decodeNotificationJSON
// would: escapes are decoded and invalid UTF-8 becomes U+FFFD.
func (sc *notifyScanner) slowString(q int) (string, bool) {
	s := sc.s
	for i := q + 1; i < len(s); i++ {
		switch b := s[i]; {
		case b == '"':
			var str string
			if json.Unmarshal([]byte(s[q:i+1]), &str) != nil {
				return "", false
			}
			sc.i = i + 1
			return str, true
		case b == '\\':
			i++ // skip the escaped byte (json.Unmarshal checks the escape)
		case b < ' ':
			return "", false
		}
	}
	return "", false
}

// labelCache interns the labels of one column (device, metric or sensor) within one payload. Rows mostly repeat
// a handful of devices, metrics and sensors, so most rows reuse the string made for an earlier row instead of
// allocating their own. It copies rather than slicing the payload, so that rows a listener buffers do not keep
// whole payloads alive.
type labelCache struct {
	recent [8]string // the labels made last, replaced round-robin; "" needs no entry of its own
	next   int
}

func (c *labelCache) intern(raw string) string {
	for i := range c.recent {
		if c.recent[i] == raw {
			return c.recent[i]
		}
	}
	s := strings.Clone(raw)
	c.recent[c.next] = s
	c.next = (c.next + 1) % len(c.recent)
	return s
}
