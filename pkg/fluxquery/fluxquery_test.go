package fluxquery

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fieldline-iot/fieldline/internal/golden"
)

// The test range starts and ends off every bucket grid, so the goldens show raw reads keeping it and
// aggregated reads widening it to whole buckets.
var (
	testFrom = time.Date(2026, 3, 2, 10, 7, 31, 250_000_000, time.UTC)
	testTo   = time.Date(2026, 3, 2, 16, 52, 10, 0, time.UTC)
)

// hostile tries to close the string literal and append a pipeline stage, and to interpolate.
const hostile = `x") |> drop() |> to(bucket: "other") //${v.bucket}` + "\n"

func testRequest(agg Aggregation, interval time.Duration) Request {
	return Request{Bucket: "fieldline", Metric: "temperature", Aggregation: agg, Interval: interval, From: testFrom, To: testTo}
}

func TestBuildGolden(t *testing.T) {
	with := func(req Request, f func(*Request)) Request { f(&req); return req }
	cases := []struct {
		name string
		req  Request
	}{
		{"raw", testRequest("", 0)},
		{"raw_limit", with(testRequest("", 0), func(r *Request) { r.Limit = 100 })},
		{"raw_one_device_one_sensor", with(testRequest("", 0), func(r *Request) {
			r.Devices, r.Sensors = []string{"pico"}, []string{"dht22"}
		})},
		// The empty sensor is a missing tag in InfluxDB.
		{"raw_devices_sensors", with(testRequest("", 0), func(r *Request) {
			r.Devices, r.Sensors = []string{"pico", "node1"}, []string{"dht22", ""}
		})},
		{"raw_v1_bucket", with(testRequest("", 0), func(r *Request) { r.Bucket = "fieldline/autogen" })},
		{"count7m_limit", with(testRequest("count", 7*time.Minute), func(r *Request) { r.Limit = 10 })},
		{"mean1w_devices", with(testRequest("avg", 7*24*time.Hour), func(r *Request) { r.Devices = []string{"pico", "node1"} })},
		{"last1500ms", testRequest("last", 1500*time.Millisecond)},
		{"sum1500us", testRequest("sum", 1500*time.Microsecond)},
		// Values shaped like Flux injection stay inside their string literals.
		{"hostile", Request{Bucket: hostile, Metric: `temperature" or r._measurement != "`, Devices: []string{hostile, `a\"b`},
			Sensors: []string{"tab\there", "bell\x07"}, From: testFrom, To: testTo}},
	}
	for _, a := range []Aggregation{"avg", "min", "max", "last", "count", "sum"} {
		cases = append(cases, struct {
			name string
			req  Request
		}{string(a) + "5m", testRequest(a, 5*time.Minute)})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			q, err := Build(c.req)
			if err != nil {
				t.Fatal(err)
			}
			got := fmt.Sprintf("-- flux --\n%s-- range --\n%s .. %s\n", q.Flux, Time(q.From), Time(q.To))
			golden.Check(t, "build_"+c.name, got)
			checkLiterals(t, q.Flux)
		})
	}
}

func TestBuildErrors(t *testing.T) {
	ok := testRequest("avg", 5*time.Minute)
	with := func(f func(*Request)) Request { r := ok; f(&r); return r }
	for _, c := range []struct {
		name string
		req  Request
		want string
	}{
		{"no bucket", with(func(r *Request) { r.Bucket = "" }), "flux builder: bucket is not configured"},
		{"no metric", with(func(r *Request) { r.Metric = "" }), "flux builder: metric is required"},
		{"empty range", with(func(r *Request) { r.To = r.From }), "flux builder: empty time range"},
		{"reversed range", with(func(r *Request) { r.From, r.To = testTo, testFrom }), "flux builder: empty time range"},
		{"unknown aggregation", with(func(r *Request) { r.Aggregation = "median" }), `flux builder: unknown aggregation "median"`},
		{"the SQL name for mean", with(func(r *Request) { r.Aggregation = "mean" }), `flux builder: unknown aggregation "mean"`},
		{"injected aggregation", with(func(r *Request) { r.Aggregation = "mean() |> drop" }), `flux builder: unknown aggregation "mean() |> drop"`},
		{"no interval", with(func(r *Request) { r.Interval = 0 }), "flux builder: bucket width 0s: must be positive"},
		{"interval under 1ms", with(func(r *Request) { r.Interval = 999 * time.Microsecond }), "flux builder: bucket width 999µs: must be at least 1ms"},
		{"interval in nanoseconds", with(func(r *Request) { r.Interval = 2*time.Millisecond + 1 }),
			"flux builder: bucket width 2.000001ms: must be a whole number of microseconds (PostgreSQL's resolution)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			q, err := Build(c.req)
			if err == nil {
				t.Fatalf("accepted:\n%s", q.Flux)
			}
			if err.Error() != c.want {
				t.Errorf("error %q\n want %q", err, c.want)
			}
		})
	}
}

func TestExpandGolden(t *testing.T) {
	vars := Vars{From: testFrom, To: testTo, Window: 30 * time.Second, Bucket: "fieldline", Org: "acme", MaxDataPts: 1340}
	for _, c := range []struct {
		name string
		flux string
		vars Vars
	}{
		{"dashboard", `from(bucket: v.bucket)
  |> range(start: v.timeRangeStart, stop: v.timeRangeStop)
  |> filter(fn: (r) => r._measurement == "temperature")
  |> aggregateWindow(every: v.windowPeriod, fn: mean)`, vars},
		{"every_variable", "v.timeRangeStart v.timeRangeStop v.windowPeriod v.bucket v.defaultBucket v.organization v.intervalMs v.maxDataPoints", vars},
		// Only whole variable names: longer identifiers and other records' fields stay.
		{"not_variables", "v.bucketName nv.bucket v.timeRangeStartX v.unknown v.bucket2 v .bucket", vars},
		{"no_window", "v.windowPeriod v.intervalMs", Vars{From: testFrom, To: testTo}},
		{"sub_millisecond_window", "v.windowPeriod v.intervalMs", Vars{Window: 1500 * time.Microsecond}},
		{"hostile_names", "from(bucket: v.bucket) // org v.organization", Vars{Bucket: hostile, Org: `"${r}`}},
	} {
		t.Run(c.name, func(t *testing.T) {
			out := Expand(c.flux, c.vars)
			golden.Check(t, "expand_"+c.name, fmt.Sprintf("-- flux --\n%s\n-- expanded --\n%s\n", c.flux, out))
			checkLiterals(t, out)
		})
	}
}

func TestString(t *testing.T) {
	for in, want := range map[string]string{
		"":                `""`,
		"temperature":     `"temperature"`,
		"°C µs 温度":        `"°C µs 温度"`,
		`a"b`:             `"a\"b"`,
		`a\b`:             `"a\\b"`,
		`\"`:              `"\\\""`,
		"${x}":            `"\${x}"`,
		"$x $ {} $":       `"$x $ {} $"`,
		"$${":             `"$\${"`,
		"a\nb\rc\td":      `"a\nb\rc\td"`,
		"\x00\x01\x1f":    `"\x00\x01\x1f"`,
		"del\x7f":         `"del\x7f"`,
		"not utf8 \xff":   "\"not utf8 \xff\"",
		`") |> drop() //`: `"\") |> drop() //"`,
	} {
		if got := String(in); got != want {
			t.Errorf("String(%q) = %s, want %s", in, got, want)
		}
	}
}

// TestStringRoundTrip: for any input, String's output is one Flux string literal that reads back as the
// input (every byte value, and the shapes that end a literal or interpolate).
func TestStringRoundTrip(t *testing.T) {
	inputs := []string{hostile, `\`, `"`, `$`, `${`, `\${`, `$\{`, `"${"`, "\\\n"}
	var all []byte
	for c := range 256 {
		all = append(all, byte(c))
		inputs = append(inputs, string([]byte{byte(c)}), string([]byte{'$', byte(c)}), string([]byte{byte(c), '{'}))
	}
	inputs = append(inputs, string(all))
	for _, in := range inputs {
		lit := String(in)
		got, err := unquote(lit)
		if err != nil || got != in {
			t.Errorf("String(%q) = %s reads back as %q, %v", in, lit, got, err)
		}
		toks, err := fluxTokens("x = " + lit)
		if err != nil || len(toks) != 3 || toks[2].kind != tokString {
			t.Errorf("String(%q) = %s is not one string token: %v %v", in, lit, toks, err)
		}
	}
}

// unquote reads a Flux string literal as the Flux spec defines it: escapes \n \r \t \\ \" \${ and \xNN; a bare
// double quote ends the literal and a bare ${ starts an interpolation (both refused here). Raw control
// characters are refused too: String never leaves one.
func unquote(lit string) (string, error) {
	if len(lit) < 2 || lit[0] != '"' || lit[len(lit)-1] != '"' {
		return "", errors.New("not quoted")
	}
	body := lit[1 : len(lit)-1]
	var b strings.Builder
	for i := 0; i < len(body); i++ {
		c := body[i]
		switch {
		case c == '"':
			return "", fmt.Errorf("bare quote at %d", i)
		case c == '$' && i+1 < len(body) && body[i+1] == '{':
			return "", fmt.Errorf("interpolation at %d", i)
		case c < 0x20 || c == 0x7f:
			return "", fmt.Errorf("raw control character %#x at %d", c, i)
		case c != '\\':
			b.WriteByte(c)
			continue
		}
		i++
		if i >= len(body) {
			return "", errors.New("dangling backslash")
		}
		switch body[i] {
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case '\\', '"':
			b.WriteByte(body[i])
		case '$':
			if i+1 >= len(body) || body[i+1] != '{' {
				return "", fmt.Errorf(`\$ without { at %d`, i)
			}
			b.WriteString("${")
			i++
		case 'x':
			if i+2 >= len(body) {
				return "", fmt.Errorf(`short \x at %d`, i)
			}
			v, err := strconv.ParseUint(body[i+1:i+3], 16, 8)
			if err != nil {
				return "", fmt.Errorf(`\x at %d: %w`, i, err)
			}
			b.WriteByte(byte(v))
			i += 2
		default:
			return "", fmt.Errorf(`unknown escape \%c at %d`, body[i], i)
		}
	}
	return b.String(), nil
}

// checkLiterals: every string literal in the generated Flux reads back, and no value became code.
func checkLiterals(t *testing.T, flux string) {
	t.Helper()
	toks, err := fluxTokens(flux)
	if err != nil {
		t.Fatalf("generated Flux does not tokenize: %v\n%s", err, flux)
	}
	for _, tok := range toks {
		switch {
		case tok.kind == tokString:
			if _, err := unquote(`"` + tok.text + `"`); err != nil {
				t.Errorf("string literal %q: %v", tok.text, err)
			}
		case tok.is(tokIdent, "drop"): // only the hostile values contain it
			t.Errorf("a value escaped its string literal:\n%s", flux)
		}
	}
}

func TestTime(t *testing.T) {
	paris := time.FixedZone("CET", 3600)
	for _, c := range []struct {
		in   time.Time
		want string
	}{
		{time.Date(2026, 3, 2, 10, 7, 31, 0, time.UTC), "2026-03-02T10:07:31Z"},
		{time.Date(2026, 3, 2, 11, 7, 31, 0, paris), "2026-03-02T10:07:31Z"},
		{time.Date(2026, 3, 2, 10, 7, 31, 250_000_000, time.UTC), "2026-03-02T10:07:31.25Z"},
		{time.Date(2026, 3, 2, 10, 7, 31, 1, time.UTC), "2026-03-02T10:07:31.000000001Z"},
		{time.Date(1999, 12, 31, 23, 59, 59, 0, time.UTC), "1999-12-31T23:59:59Z"},
	} {
		if got := Time(c.in); got != c.want {
			t.Errorf("Time(%v) = %s, want %s", c.in, got, c.want)
		}
	}
}

func TestDuration(t *testing.T) {
	for in, want := range map[time.Duration]string{
		0:                       "0ms",
		time.Millisecond:        "1ms",
		time.Minute:             "60000ms",
		7 * 24 * time.Hour:      "604800000ms",
		1500 * time.Microsecond: "1500us",
		time.Microsecond:        "1us",
		7:                       "7ns",
		time.Millisecond + 1:    "1000001ns",
		-time.Second:            "-1000ms",
	} {
		if got := Duration(in); got != want {
			t.Errorf("Duration(%v) = %s, want %s", in, got, want)
		}
	}
}

// TestVariablesExpand: every name in Variables (the editor's completion list is checked against it) is
// replaced by Expand.
func TestVariablesExpand(t *testing.T) {
	vars := Vars{From: testFrom, To: testTo, Window: time.Minute, Bucket: "b", Org: "o", MaxDataPts: 100}
	for _, name := range Variables {
		if out := Expand("x = v."+name, vars); strings.Contains(out, "v.") {
			t.Errorf("v.%s is not expanded: %s", name, out)
		}
	}
}
