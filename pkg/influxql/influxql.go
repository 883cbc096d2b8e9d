// Package influxql prepares code InfluxQL queries (InfluxDB 1.x, and 2.x/3 through their v1 query API): Grafana's
// macros are expanded ($timeFilter, $__interval, $__interval_ms, $interval, $__timeFrom/$__timeTo), and only
// read statements pass (SELECT without INTO, and SHOW), because any Viewer can send a code query. The plugin also
// sends queries with GET, which InfluxDB 1.x limits to SELECT and SHOW itself.
package influxql

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Vars are the values of the macros of one query.
type Vars struct {
	From, To time.Time
	Interval time.Duration
}

// Macros are the macros Expand replaces (the editor's completion offers exactly these).
var Macros = []string{"$timeFilter", "$__timeFilter", "$__interval", "$interval", "$__interval_ms", "$__timeFrom", "$__timeTo"}

var macroPattern = regexp.MustCompile(`\$(?:timeFilter|__timeFilter|__interval_ms|__interval|interval|__timeFrom|__timeTo)\b`)

// Expand replaces Grafana's InfluxQL macros with literals (outside quoted strings and identifiers): $timeFilter
// (also $__timeFilter) becomes `time >= <from>ms and time <= <to>ms` as in Grafana's InfluxDB data source,
// $__interval and $interval a duration literal (e.g. 10s), $__interval_ms its milliseconds, $__timeFrom and
// $__timeTo epoch milliseconds with the ms unit.
func Expand(q string, v Vars) string {
	iv := v.Interval
	if iv < time.Millisecond {
		iv = time.Millisecond
	}
	return mapOutsideQuotes(q, func(s string) string {
		return macroPattern.ReplaceAllStringFunc(s, func(m string) string {
			switch m {
			case "$timeFilter", "$__timeFilter":
				return fmt.Sprintf("time >= %dms and time <= %dms", v.From.UnixMilli(), v.To.UnixMilli())
			case "$__interval", "$interval":
				return Duration(iv)
			case "$__interval_ms":
				return strconv.FormatInt(iv.Milliseconds(), 10)
			case "$__timeFrom":
				return strconv.FormatInt(v.From.UnixMilli(), 10) + "ms"
			case "$__timeTo":
				return strconv.FormatInt(v.To.UnixMilli(), 10) + "ms"
			}
			return m
		})
	})
}

// Duration writes d as an InfluxQL duration literal in its largest whole unit (1h, 10s, 250ms).
func Duration(d time.Duration) string {
	switch {
	case d%time.Hour == 0:
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	case d%time.Minute == 0:
		return strconv.FormatInt(int64(d/time.Minute), 10) + "m"
	case d%time.Second == 0:
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	case d%time.Millisecond == 0:
		return strconv.FormatInt(d.Milliseconds(), 10) + "ms"
	}
	return strconv.FormatInt(d.Microseconds(), 10) + "u"
}

// MaxStatements bounds the statements of one query.
const MaxStatements = 16

// CheckReadOnly refuses anything but read statements: every statement (split on ';' outside quotes) must begin
// with SELECT or SHOW, and a SELECT must not write (INTO). Errors name the statement's position, not its text.
func CheckReadOnly(q string) error {
	stmts := splitStatements(stripComments(q))
	if len(stmts) == 0 {
		return errors.New("influxql: the query is empty")
	}
	if len(stmts) > MaxStatements {
		return fmt.Errorf("influxql: at most %d statements", MaxStatements)
	}
	for i, st := range stmts {
		words := keywords(st)
		if len(words) == 0 {
			return fmt.Errorf("influxql: statement %d is empty", i+1)
		}
		switch words[0] {
		case "SELECT":
			for _, w := range words {
				if w == "INTO" {
					return fmt.Errorf("influxql: statement %d writes (SELECT … INTO): only reading queries are allowed", i+1)
				}
			}
		case "SHOW":
		default:
			return fmt.Errorf("influxql: statement %d is %s: only SELECT and SHOW are allowed", i+1, words[0])
		}
	}
	return nil
}

// splitStatements splits on ';' outside quotes, dropping blank statements.
func splitStatements(q string) []string {
	var out []string
	start := 0
	scan(q, func(i int, c byte, quoted bool) {
		if c == ';' && !quoted {
			out = append(out, q[start:i])
			start = i + 1
		}
	})
	out = append(out, q[start:])
	kept := out[:0]
	for _, s := range out {
		if strings.TrimSpace(s) != "" {
			kept = append(kept, s)
		}
	}
	return kept
}

// keywords returns the unquoted words of a statement (comments already stripped), upper-cased.
func keywords(st string) []string {
	var b strings.Builder
	mapOutsideQuotesTo(&b, st, func(s string) string { return s }, true)
	return strings.Fields(strings.ToUpper(b.String()))
}

// stripComments removes -- line comments and /* */ block comments outside quotes.
func stripComments(s string) string {
	var b strings.Builder
	inLine, inBlock := false, false
	scan(s, func(i int, c byte, quoted bool) {
		switch {
		case inLine:
			if c == '\n' {
				inLine = false
				b.WriteByte(c)
			}
			return
		case inBlock:
			if c == '/' && i > 0 && s[i-1] == '*' {
				inBlock = false
			}
			return
		case !quoted && c == '-' && i+1 < len(s) && s[i+1] == '-':
			inLine = true
			return
		case !quoted && c == '/' && i+1 < len(s) && s[i+1] == '*':
			inBlock = true
			return
		}
		b.WriteByte(c)
	})
	return b.String()
}

// scan calls fn for every byte with whether it is inside a quoted string ('…') or identifier ("…"); backslash
// escapes the next byte inside quotes.
func scan(s string, fn func(i int, c byte, quoted bool)) {
	var quote byte
	escaped := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0 && escaped:
			escaped = false
		case quote != 0 && c == '\\':
			escaped = true
		case quote != 0 && c == quote:
			fn(i, c, true)
			quote = 0
			continue
		case quote == 0 && (c == '\'' || c == '"'):
			quote = c
		}
		fn(i, c, quote != 0)
	}
}

// mapOutsideQuotes applies fn to the unquoted stretches of s.
func mapOutsideQuotes(s string, fn func(string) string) string {
	var b strings.Builder
	mapOutsideQuotesTo(&b, s, fn, false)
	return b.String()
}

// mapOutsideQuotesTo writes s with fn applied to its unquoted stretches; blankQuoted writes quoted parts as
// spaces (for keyword scanning).
func mapOutsideQuotesTo(b *strings.Builder, s string, fn func(string) string, blankQuoted bool) {
	start, inQuote := 0, false
	flush := func(end int, quoted bool) {
		part := s[start:end]
		switch {
		case !quoted:
			b.WriteString(fn(part))
		case blankQuoted:
			b.WriteString(strings.Repeat(" ", len(part)))
		default:
			b.WriteString(part)
		}
		start = end
	}
	scan(s, func(i int, _ byte, quoted bool) {
		if quoted != inQuote {
			// the quote that opens a string belongs to it; the closing one too
			if quoted {
				flush(i, false)
			} else {
				flush(i, true)
			}
			inQuote = quoted
		}
	})
	flush(len(s), inQuote)
}
