package fluxquery

import (
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// SafeImports are the Flux packages code Flux may import while restrictions are on: computation, dates,
// strings, schema reads of the same InfluxDB. Anything else — http, experimental/http, sql, csv (reads files on
// the InfluxDB host), socket, experimental/mqtt, the notification endpoints (slack, pagerduty, …),
// influxdata/influxdb/secrets — makes InfluxDB reach outside itself on a Viewer's behalf (measured: an
// `http.post` to a listener on the host, `sql.from` dialling PostgreSQL).
var SafeImports = []string{
	"array", "date", "dict", "experimental", "experimental/aggregate", "experimental/array",
	"experimental/date/boundaries", "experimental/table", "influxdata/influxdb/schema", "influxdata/influxdb/v1",
	"interpolate", "join", "math", "regexp", "sampledata", "strings", "timezone", "types", "universe",
}

// CheckRestricted refuses code Flux that reaches outside the data source's InfluxDB: an import that is not in
// SafeImports, or a from()/to() call with a host: argument (another InfluxDB, reached with a token of the
// query's choosing). Comments and string contents are not code; imports can only stand at the top of a
// script, before any statement.
func CheckRestricted(flux string) error {
	toks, err := fluxTokens(flux)
	if err != nil {
		return err
	}
	i := 0
	if i < len(toks) && toks[i].is(tokIdent, "package") {
		i += 2
	}
	for i < len(toks) && toks[i].is(tokIdent, "import") {
		i++
		if i < len(toks) && toks[i].kind == tokIdent {
			i++ // alias
		}
		if i >= len(toks) || toks[i].kind != tokString {
			return fmt.Errorf("flux: malformed import")
		}
		if pkg := toks[i].text; !slices.Contains(SafeImports, pkg) {
			return fmt.Errorf("flux: import %q is not allowed: it can reach outside InfluxDB (an administrator can lift this with influx.restrictFlux = false)", pkg)
		}
		i++
	}
	for ; i < len(toks); i++ {
		if t := toks[i]; t.is(tokIdent, "import") {
			return fmt.Errorf("flux: import must stand at the top of the script")
		}
		if (toks[i].is(tokIdent, "from") || toks[i].is(tokIdent, "to")) && i+1 < len(toks) && toks[i+1].is(tokPunct, "(") {
			depth := 0
			for j := i + 1; j < len(toks); j++ {
				switch {
				case toks[j].is(tokPunct, "(") || toks[j].is(tokPunct, "[") || toks[j].is(tokPunct, "{"):
					depth++
				case toks[j].is(tokPunct, ")") || toks[j].is(tokPunct, "]") || toks[j].is(tokPunct, "}"):
					depth--
				case depth == 1 && toks[j].is(tokIdent, "host") && j+1 < len(toks) && toks[j+1].is(tokPunct, ":"):
					return fmt.Errorf("flux: %s(host: ...) reads or writes another InfluxDB and is not allowed (an administrator can lift this with influx.restrictFlux = false)", toks[i].text)
				}
				if depth == 0 {
					break
				}
			}
		}
	}
	return nil
}

type tokKind int

const (
	tokIdent tokKind = iota
	tokString
	tokPunct
	tokOther // numbers, regex literals, durations
)

type token struct {
	kind tokKind
	text string // identifiers and punctuation as written; strings unquoted (escapes kept)
}

func (t token) is(k tokKind, s string) bool { return t.kind == k && t.text == s }

// fluxTokens splits Flux source into the tokens CheckRestricted needs. Regex literals are recognised after
// =~ and !~ (where Flux allows them), so their slashes and quotes are not taken for comments or strings.
func fluxTokens(src string) ([]token, error) {
	var out []token
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case strings.HasPrefix(src[i:], "//"):
			if j := strings.IndexByte(src[i:], '\n'); j >= 0 {
				i += j + 1
			} else {
				i = len(src)
			}
		case c == '"':
			j := i + 1
			var b strings.Builder
			for ; j < len(src) && src[j] != '"'; j++ {
				if src[j] == '\\' && j+1 < len(src) {
					b.WriteByte(src[j])
					j++
				}
				b.WriteByte(src[j])
			}
			if j >= len(src) {
				return nil, fmt.Errorf("flux: unterminated string")
			}
			out = append(out, token{tokString, b.String()})
			i = j + 1
		case c == '/' && len(out) > 0 && (out[len(out)-1].is(tokPunct, "=~") || out[len(out)-1].is(tokPunct, "!~")):
			j := i + 1
			for ; j < len(src) && src[j] != '/'; j++ {
				if src[j] == '\\' {
					j++
				}
			}
			if j >= len(src) {
				return nil, fmt.Errorf("flux: unterminated regular expression")
			}
			out = append(out, token{tokOther, src[i : j+1]})
			i = j + 1
		case c == '_' || c < utf8.RuneSelf && unicode.IsLetter(rune(c)) || c >= utf8.RuneSelf:
			j := i
			for j < len(src) {
				r, n := utf8.DecodeRuneInString(src[j:])
				if r != '_' && !unicode.IsLetter(r) && !unicode.IsDigit(r) {
					break
				}
				j += n
			}
			if j == i { // a non-letter rune: punctuation of its own
				_, n := utf8.DecodeRuneInString(src[i:])
				out = append(out, token{tokPunct, src[i : i+n]})
				i += n
				continue
			}
			out = append(out, token{tokIdent, src[i:j]})
			i = j
		case c >= '0' && c <= '9':
			j := i
			for j < len(src) && (src[j] >= '0' && src[j] <= '9' || src[j] == '.' || unicode.IsLetter(rune(src[j]))) {
				j++
			}
			out = append(out, token{tokOther, src[i:j]})
			i = j
		default:
			if i+1 < len(src) {
				if two := src[i : i+2]; two == "=~" || two == "!~" || two == "|>" || two == "=>" || two == "==" || two == "!=" || two == "<=" || two == ">=" || two == "<-" {
					out = append(out, token{tokPunct, two})
					i += 2
					continue
				}
			}
			out = append(out, token{tokPunct, src[i : i+1]})
			i++
		}
	}
	return out, nil
}
