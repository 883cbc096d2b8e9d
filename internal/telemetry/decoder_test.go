package telemetry

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
	"time"
)

// recv is the receive time used by the tests: 2023-11-14T22:13:20Z, the second of the line-protocol
// timestamp 1700000000000000000 in the field report.
var recv = time.Unix(1700000000, 0).UTC()

// secondReportFields maps the second field report's JSON payload to labels.
var secondReportFields = map[string]Labels{
	"n1.t":     {Device: "node1", Metric: "temperature", Unit: "celsius"},
	"n1.h":     {Device: "node1", Metric: "humidity", Unit: "percent"},
	"n1.g":     {Device: "node1", Metric: "pressure", Unit: "Pa"},
	"sig.rssi": {Device: "signal", Metric: "rssi", Unit: "dBm"},
}

const secondReportJSON = `{"n1":{"t":27.6,"h":54.1,"g":101169},"sig":{"rssi":-33}}`

func mustDecoder(t testing.TB, template string, opts Options) *Decoder {
	t.Helper()
	d, err := NewDecoder(template, opts)
	if err != nil {
		t.Fatalf("NewDecoder(%q): %v", template, err)
	}
	return d
}

func TestDecodeFieldReports(t *testing.T) {
	const picoTpl, iiotTpl = "{device}/{metric}/{sensor}", "iiot/{device}/{metric}"
	r := func(device, metric, sensor, unit string, v float64, tm time.Time) Reading {
		return Reading{Time: tm, Device: device, Metric: metric, Sensor: sensor, Unit: unit, Value: v}
	}
	tests := []struct {
		name     string
		template string
		opts     Options
		topic    string
		payload  string
		want     []Reading
	}{
		// First field report: Pico W with a DHT22, value format.
		{"pico temperature", picoTpl, Options{}, "pico/temperature/dht22", "22.4",
			[]Reading{r("pico", "temperature", "dht22", "", 22.4, recv)}},
		{"pico humidity", picoTpl, Options{}, "pico/humidity/dht22", "39.7",
			[]Reading{r("pico", "humidity", "dht22", "", 39.7, recv)}},
		{"pico internal", picoTpl, Options{}, "pico/temperature/internal", "30.6",
			[]Reading{r("pico", "temperature", "internal", "", 30.6, recv)}},
		// Second field report: STM32 LoRa gateway.
		{"iiot temperature", iiotTpl, Options{Format: FormatValue}, "iiot/node1/temperature", "27.6",
			[]Reading{r("node1", "temperature", "", "", 27.6, recv)}},
		{"iiot rssi", iiotTpl, Options{Format: FormatValue}, "iiot/signal/rssi", "-33",
			[]Reading{r("signal", "rssi", "", "", -33, recv)}},
		// Value format variants.
		{"whitespace", iiotTpl, Options{}, "iiot/node1/temperature", " 27.6\n",
			[]Reading{r("node1", "temperature", "", "", 27.6, recv)}},
		{"quoted", picoTpl, Options{}, "pico/temperature/dht22", "\"22.4\"",
			[]Reading{r("pico", "temperature", "dht22", "", 22.4, recv)}},
		{"quoted with whitespace outside", picoTpl, Options{}, "pico/temperature/dht22", " \"22.4\"\r\n",
			[]Reading{r("pico", "temperature", "dht22", "", 22.4, recv)}},
		{"exponent", picoTpl, Options{}, "pico/pressure/bme280", "1.01325e5",
			[]Reading{r("pico", "pressure", "bme280", "", 101325, recv)}},
		{"underflow is zero", picoTpl, Options{}, "pico/x/y", "1e-400",
			[]Reading{r("pico", "x", "y", "", 0, recv)}},
		{"static labels fill in", "iiot/{metric}", Options{Static: Labels{Device: "gw", Sensor: "s", Unit: "C", Metric: "ignored"}},
			"iiot/temperature", "1", []Reading{r("gw", "temperature", "s", "C", 1, recv)}},
		{"unit placeholder", "{device}/{metric}/{unit}", Options{}, "pico/temperature/celsius", "22.4",
			[]Reading{r("pico", "temperature", "", "celsius", 22.4, recv)}},

		// JSON, second report, explicit mapping; the template provides no device: every mapping does.
		{"json mapped", "iiot/data", Options{Format: FormatJSON, JSON: JSONOptions{Fields: secondReportFields}},
			"iiot/data", secondReportJSON,
			[]Reading{ // sorted by path
				r("node1", "pressure", "", "Pa", 101169, recv),
				r("node1", "humidity", "", "percent", 54.1, recv),
				r("node1", "temperature", "", "celsius", 27.6, recv),
				r("signal", "rssi", "", "dBm", -33, recv),
			}},
		{"json auto paths", "iiot/{device}/json", Options{Format: FormatJSON}, "iiot/gw1/json", secondReportJSON,
			[]Reading{
				r("gw1", "n1.g", "", "", 101169, recv),
				r("gw1", "n1.h", "", "", 54.1, recv),
				r("gw1", "n1.t", "", "", 27.6, recv),
				r("gw1", "sig.rssi", "", "", -33, recv),
			}},
		{"json top-level value takes the topic metric", "{device}/{metric}", Options{Format: FormatJSON},
			"pico/temperature", `{"value": 22.4, "battery": 3.1, "ok": true, "fw": "1.2", "x": null}`,
			[]Reading{r("pico", "battery", "", "", 3.1, recv), r("pico", "temperature", "", "", 22.4, recv)}},
		{"json bare number", "{device}/{metric}", Options{Format: FormatJSON}, "pico/temperature", `22.4`,
			[]Reading{r("pico", "temperature", "", "", 22.4, recv)}},
		{"json value without topic metric", "{device}", Options{Format: FormatJSON}, "pico", `{"value":1}`,
			[]Reading{r("pico", "value", "", "", 1, recv)}},
		{"json arrays by index", "{device}", Options{Format: FormatJSON}, "pico", `{"a":[1,{"b":2}]}`,
			[]Reading{r("pico", "a.0", "", "", 1, recv), r("pico", "a.1.b", "", "", 2, recv)}},
		{"json time rfc3339", "{device}", Options{Format: FormatJSON, JSON: JSONOptions{TimeField: "ts"}}, "pico",
			`{"ts":"2023-11-14T23:13:20+01:00","t":1}`,
			[]Reading{r("pico", "t", "", "", 1, recv)}},
		{"json time auto ms", "{device}", Options{Format: FormatJSON, JSON: JSONOptions{TimeField: "meta.ts"}}, "pico",
			`{"meta":{"ts":1699999999500},"t":1}`,
			[]Reading{r("pico", "t", "", "", 1, recv.Add(-500*time.Millisecond))}},
		{"json time auto s fractional", "{device}", Options{Format: FormatJSON, JSON: JSONOptions{TimeField: "ts"}}, "pico",
			`{"ts":1699999999.25,"t":1}`,
			[]Reading{r("pico", "t", "", "", 1, recv.Add(-750*time.Millisecond))}},
		{"json time auto us", "{device}", Options{Format: FormatJSON, JSON: JSONOptions{TimeField: "ts"}}, "pico",
			`{"ts":1699999999000001,"t":1}`,
			[]Reading{r("pico", "t", "", "", 1, recv.Add(-time.Second+time.Microsecond))}},
		{"json time auto ns", "{device}", Options{Format: FormatJSON, JSON: JSONOptions{TimeField: "ts"}}, "pico",
			`{"ts":1699999999000000001,"t":1}`,
			[]Reading{r("pico", "t", "", "", 1, recv.Add(-time.Second+1))}},
		{"json time unix_ms string", "{device}", Options{Format: FormatJSON, JSON: JSONOptions{TimeField: "ts", TimeFormat: "unix_ms"}}, "pico",
			`{"ts":"1700000000000","t":1}`,
			[]Reading{r("pico", "t", "", "", 1, recv)}},
		{"json time field absent uses receive time", "{device}", Options{Format: FormatJSON, JSON: JSONOptions{TimeField: "ts"}}, "pico",
			`{"t":1}`,
			[]Reading{r("pico", "t", "", "", 1, recv)}},
		{"json mapping without metric uses the topic metric", "{device}/{metric}",
			Options{Format: FormatJSON, JSON: JSONOptions{Fields: map[string]Labels{"v": {Sensor: "dht22"}}}},
			"pico/temperature", `{"v":22.4,"other":1}`,
			[]Reading{r("pico", "temperature", "dht22", "", 22.4, recv)}},

		// Influx line protocol.
		{"influx tags", "iiot/#", Options{Format: FormatInflux}, "iiot/lp", "humidity,node=node1,unit=percent value=54.1",
			[]Reading{r("node1", "humidity", "", "percent", 54.1, recv)}},
		{"influx fields and timestamp", "iiot/{device}/lp", Options{Format: FormatInflux}, "iiot/node1/lp",
			"node1_data temperature=27.6,humidity=54.1 1700000000000000000",
			[]Reading{r("node1", "node1_data_temperature", "", "", 27.6, recv), r("node1", "node1_data_humidity", "", "", 54.1, recv)}},
		{"influx several lines, tags override topic", "iiot/{device}/lp", Options{Format: FormatInflux}, "iiot/gw/lp",
			"# comment\ntemp,device=a,host=h,sensor=dht22 value=1i,on=true,fw=\"x\" 1699999999000000000\n\nrssi,node=b value=33u\r\nrssi value=2\n",
			[]Reading{
				r("a", "temp", "dht22", "", 1, recv.Add(-time.Second)),
				r("b", "rssi", "", "", 33, recv),
				r("gw", "rssi", "", "", 2, recv),
			}},
		{"influx precision s", "{device}", Options{Format: FormatInflux, Influx: InfluxOptions{Precision: "s"}}, "pico",
			"t value=1 1700000000", []Reading{r("pico", "t", "", "", 1, recv)}},
		{"influx custom tags", "x", Options{Format: FormatInflux, Influx: InfluxOptions{DeviceTags: []string{"id"}, SensorTag: "probe", UnitTag: "u"}},
			"x", "t,id=d1,probe=p,u=C,device=ignored value=1", []Reading{r("d1", "t", "p", "C", 1, recv)}},
		{"influx escapes", "{device}", Options{Format: FormatInflux}, "pico",
			`air\ temp,sensor=a\ b my\ field=1`, []Reading{r("pico", "air temp_my field", "a b", "", 1, recv)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := mustDecoder(t, tc.template, tc.opts)
			prefix := []Reading{{Device: "keep", Metric: "me", Value: 1}}
			got, err := d.Decode(tc.topic, []byte(tc.payload), recv, slices.Clone(prefix))
			if err != nil {
				t.Fatalf("Decode(%q, %q): %v", tc.topic, tc.payload, err)
			}
			if len(got) < 1 || got[0] != prefix[0] {
				t.Fatalf("Decode did not append to dst: %+v", got)
			}
			got = got[1:]
			if len(got) != len(tc.want) {
				t.Fatalf("got %d readings %+v, want %d %+v", len(got), got, len(tc.want), tc.want)
			}
			for i := range got {
				g, w := got[i], tc.want[i]
				if !g.Time.Equal(w.Time) || g.Device != w.Device || g.Metric != w.Metric || g.Sensor != w.Sensor || g.Unit != w.Unit || g.Value != w.Value {
					t.Errorf("reading %d = %+v, want %+v", i, g, w)
				}
			}
		})
	}
}

func TestDecodeRejections(t *testing.T) {
	value := Options{}
	jsonOpts := Options{Format: FormatJSON, JSON: JSONOptions{TimeField: "ts"}}
	jsonMS := Options{Format: FormatJSON, JSON: JSONOptions{TimeField: "ts", TimeFormat: "unix_ms"}}
	jsonRFC := Options{Format: FormatJSON, JSON: JSONOptions{TimeField: "ts", TimeFormat: "rfc3339"}}
	influx := Options{Format: FormatInflux}
	const tpl = "{device}/{metric}/{sensor}"
	big := strings.Repeat("1", 70*1024)
	future := recv.Add(2 * time.Hour)
	tests := []struct {
		name     string
		opts     Options
		topic    string
		payload  string
		received time.Time // zero: recv
		want     Reason
	}{
		{"topic mismatch: too short", value, "pico/temperature", "22.4", time.Time{}, ReasonTopicMismatch},
		{"topic mismatch: too long", value, "pico/temperature/dht22/x", "22.4", time.Time{}, ReasonTopicMismatch},
		{"topic mismatch before empty payload", value, "pico", "", time.Time{}, ReasonTopicMismatch},
		{"empty", value, "pico/temperature/dht22", "", time.Time{}, ReasonEmpty},
		{"whitespace only", value, "pico/temperature/dht22", " \t\r\n ", time.Time{}, ReasonEmpty},
		{"70 KB", value, "pico/temperature/dht22", big, time.Time{}, ReasonOversized},
		{"70 KB json", jsonOpts, "pico/temperature/dht22", `{"a":"` + big + `"}`, time.Time{}, ReasonOversized},
		{"invalid UTF-8", value, "pico/temperature/dht22", "22.4\xff", time.Time{}, ReasonNotUTF8},
		{"invalid UTF-8 json", jsonOpts, "pico/temperature/dht22", "{\"a\xc3\":1}", time.Time{}, ReasonNotUTF8},
		{"not a number", value, "pico/temperature/dht22", "warm", time.Time{}, ReasonNotANumber},
		{"two numbers", value, "pico/temperature/dht22", "22.4 22.5", time.Time{}, ReasonNotANumber},
		{"empty quotes", value, "pico/temperature/dht22", `""`, time.Time{}, ReasonNotANumber},
		{"lone quote", value, "pico/temperature/dht22", `"22.4`, time.Time{}, ReasonNotANumber},
		{"NUL terminated", value, "pico/temperature/dht22", "22.4\x00", time.Time{}, ReasonNotANumber},
		{"NaN", value, "pico/temperature/dht22", "NaN", time.Time{}, ReasonNaN},
		{"quoted nan", value, "pico/temperature/dht22", `"nan"`, time.Time{}, ReasonNaN},
		{"Inf", value, "pico/temperature/dht22", "Inf", time.Time{}, ReasonInf},
		{"-Infinity", value, "pico/temperature/dht22", "-Infinity", time.Time{}, ReasonInf},
		{"overflow 1e999", value, "pico/temperature/dht22", "1e999", time.Time{}, ReasonInf},
		{"empty device", value, "/temperature/dht22", "22.4", time.Time{}, ReasonBadLabel},
		{"empty metric", value, "pico//dht22", "22.4", time.Time{}, ReasonBadLabel},
		{"long label", value, "pico/" + strings.Repeat("m", 257) + "/dht22", "22.4", time.Time{}, ReasonBadLabel},
		{"control char in label", value, "pico/temp\x01/dht22", "22.4", time.Time{}, ReasonBadLabel},
		{"C1 control char in label", value, "pico/temp\u0085/dht22", "22.4", time.Time{}, ReasonBadLabel},
		{"invalid UTF-8 label", value, "pico/temp\xff/dht22", "22.4", time.Time{}, ReasonBadLabel},
		{"receive time before 2000", value, "pico/temperature/dht22", "22.4", time.Unix(0, 0), ReasonTimeRange},

		{"bad json", jsonOpts, "pico/temperature/dht22", `{"t":`, time.Time{}, ReasonBadJSON},
		{"json trailing data", jsonOpts, "pico/temperature/dht22", `{"t":1} {"t":2}`, time.Time{}, ReasonBadJSON},
		{"json trailing garbage", jsonOpts, "pico/temperature/dht22", `{"t":1}x`, time.Time{}, ReasonBadJSON},
		{"json NaN literal", jsonOpts, "pico/temperature/dht22", `{"t":NaN}`, time.Time{}, ReasonBadJSON},
		{"json only strings", jsonOpts, "pico/temperature/dht22", `{"t":"22.4","h":"39.7"}`, time.Time{}, ReasonNoFields},
		{"json only time", jsonOpts, "pico/temperature/dht22", `{"ts":1700000000}`, time.Time{}, ReasonNoFields},
		{"json empty object", jsonOpts, "pico/temperature/dht22", `{}`, time.Time{}, ReasonNoFields},
		{"json overflow", jsonOpts, "pico/temperature/dht22", `{"t":1,"u":1e999}`, time.Time{}, ReasonInf},
		{"json bad label key", jsonOpts, "pico/temperature/dht22", `{"t\u0001":1}`, time.Time{}, ReasonBadLabel},
		{"json bad time string", jsonOpts, "pico/temperature/dht22", `{"ts":"yesterday","t":1}`, time.Time{}, ReasonBadTime},
		{"json bad time type", jsonOpts, "pico/temperature/dht22", `{"ts":true,"t":1}`, time.Time{}, ReasonBadTime},
		{"json null time", jsonOpts, "pico/temperature/dht22", `{"ts":null,"t":1}`, time.Time{}, ReasonBadTime},
		{"json number for rfc3339", jsonRFC, "pico/temperature/dht22", `{"ts":1700000000,"t":1}`, time.Time{}, ReasonBadTime},
		{"json bad unix_ms string", jsonMS, "pico/temperature/dht22", `{"ts":"soon","t":1}`, time.Time{}, ReasonBadTime},
		{"json far future", jsonOpts, "pico/temperature/dht22", `{"ts":"2099-01-01T00:00:00Z","t":1}`, time.Time{}, ReasonTimeRange},
		{"json future beyond MaxFuture", jsonOpts, "pico/temperature/dht22", `{"ts":"` + future.Format(time.RFC3339) + `","t":1}`, time.Time{}, ReasonTimeRange},
		{"json before 2000", jsonOpts, "pico/temperature/dht22", `{"ts":946684799,"t":1}`, time.Time{}, ReasonTimeRange},
		{"json uptime seconds as time", jsonOpts, "pico/temperature/dht22", `{"ts":5,"t":1}`, time.Time{}, ReasonTimeRange},
		{"json huge time", jsonOpts, "pico/temperature/dht22", `{"ts":1e300,"t":1}`, time.Time{}, ReasonTimeRange},
		{"json overflowing time", jsonOpts, "pico/temperature/dht22", `{"ts":1e999,"t":1}`, time.Time{}, ReasonTimeRange},
		{"json huge integer time", jsonMS, "pico/temperature/dht22", `{"ts":9223372036854775807,"t":1}`, time.Time{}, ReasonTimeRange},

		{"bad line protocol", influx, "pico/temperature/dht22", "temperature value=", time.Time{}, ReasonBadLine},
		{"line protocol without fields", influx, "pico/temperature/dht22", "temperature,sensor=a", time.Time{}, ReasonBadLine},
		{"line protocol bad second line", influx, "pico/temperature/dht22", "t value=1\nt value=1 x", time.Time{}, ReasonBadLine},
		{"line protocol bad int", influx, "pico/temperature/dht22", "t value=99999999999999999999i", time.Time{}, ReasonBadLine},
		{"line protocol bad bool", influx, "pico/temperature/dht22", "t value=1,on=tru", time.Time{}, ReasonBadLine},
		{"line protocol only strings and bools", influx, "pico/temperature/dht22", `t fw="1.2",on=true`, time.Time{}, ReasonNoFields},
		{"line protocol -inf", influx, "pico/temperature/dht22", "t value=-inf", time.Time{}, ReasonInf},
		{"line protocol overflow", influx, "pico/temperature/dht22", "t value=1,x=1e999", time.Time{}, ReasonInf},
		{"line protocol bad time", influx, "pico/temperature/dht22", "t value=1 1-2", time.Time{}, ReasonBadTime},
		{"line protocol far future", influx, "pico/temperature/dht22", "t value=1 4102444800000000000", time.Time{}, ReasonTimeRange},
		{"line protocol before 2000", influx, "pico/temperature/dht22", "t value=1 1", time.Time{}, ReasonTimeRange},
		{"line protocol overflowing time", influx, "pico/temperature/dht22", "t value=1 99999999999999999999", time.Time{}, ReasonTimeRange},
		{"line protocol bad label from tag", influx, "pico/temperature/dht22", "t,unit=" + strings.Repeat("u", 300) + " value=1", time.Time{}, ReasonBadLabel},
		{"line protocol empty device", influx, "/temperature/dht22", "t value=1", time.Time{}, ReasonBadLabel},

		{"bool: not a boolean word", Options{ValueType: ValueBool}, "pico/relay/r1", "open", time.Time{}, ReasonNotABool},
		{"text: too long", Options{ValueType: ValueText}, "pico/fw/main", strings.Repeat("v", MaxTextBytes+1), time.Time{}, ReasonTextTooLong},
		{"text: NUL", Options{ValueType: ValueText}, "pico/fw/main", "1.2\x00", time.Time{}, ReasonBadText},
		{"text: bad label", Options{ValueType: ValueText}, "pico//main", "online", time.Time{}, ReasonBadLabel},
		{"json text: escaped NUL", Options{Format: FormatJSON, ValueType: ValueAuto}, "pico/temperature/dht22", `{"fw":"1\u0000"}`, time.Time{}, ReasonBadText},
		{"line protocol text: newline", Options{Format: FormatInflux, ValueType: ValueText}, "pico/temperature/dht22", `t fw="a\nb"`, time.Time{}, ReasonBadText},
	}
	seen := map[Reason]bool{}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := mustDecoder(t, tpl, tc.opts)
			received := tc.received
			if received.IsZero() {
				received = recv
			}
			prefix := []Reading{{Device: "keep", Metric: "me", Value: 1}}
			dst := make([]Reading, 1, 8)
			copy(dst, prefix)
			got, err := d.Decode(tc.topic, []byte(tc.payload), received, dst)
			var rej *Rejection
			if !errors.As(err, &rej) {
				t.Fatalf("Decode(%q, %.80q) = %+v, %v; want a *Rejection", tc.topic, tc.payload, got, err)
			}
			if rej.Reason != tc.want {
				t.Errorf("reason = %q (%v), want %q", rej.Reason, err, tc.want)
			}
			if r, d := ReasonOf(err); r != rej.Reason || d != rej.Detail {
				t.Errorf("ReasonOf = %q, %q", r, d)
			}
			if len(got) != 1 || got[0] != prefix[0] {
				t.Errorf("dst changed on rejection: %+v", got)
			}
			if extra := dst[1:cap(dst)]; slices.ContainsFunc(extra, func(r Reading) bool { return r != Reading{} }) {
				t.Errorf("rejected readings left behind dst: %+v", extra)
			}
			if len(rej.Detail) > maxDetail+3 {
				t.Errorf("Detail is %d bytes, want <= %d", len(rej.Detail), maxDetail+3)
			}
			if len(tc.payload) > 200 && strings.Contains(rej.Detail, tc.payload[:200]) {
				t.Errorf("Detail quotes the payload: %q", rej.Detail)
			}
			seen[rej.Reason] = true
		})
	}
	for _, r := range Reasons() {
		if !seen[r] {
			t.Errorf("no test input produces reason %q", r)
		}
	}
}

func TestDecodeAllOrNothing(t *testing.T) {
	d := mustDecoder(t, "{device}", Options{Format: FormatInflux})
	// Two good lines, then one with an infinite value: nothing may be returned.
	got, err := d.Decode("pico", []byte("a value=1\nb value=2\nc value=-inf\n"), recv, nil)
	if r, _ := ReasonOf(err); r != ReasonInf || len(got) != 0 {
		t.Fatalf("got %+v, %v; want no readings and inf", got, err)
	}
	// A good message after that still decodes into the same slice.
	got, err = d.Decode("pico", []byte("a value=1\nb value=2\n"), recv, got)
	if err != nil || len(got) != 2 {
		t.Fatalf("got %+v, %v", got, err)
	}
}

func TestReasons(t *testing.T) {
	rs := Reasons()
	if len(rs) != 16 {
		t.Fatalf("Reasons() has %d entries, want 16", len(rs))
	}
	seen := map[Reason]bool{}
	for _, r := range rs {
		if seen[r] {
			t.Errorf("duplicate reason %q", r)
		}
		seen[r] = true
		for _, c := range r {
			if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' {
				t.Errorf("reason %q is not snake_case", r)
				break
			}
		}
	}
	rs[0] = "mutated"
	if Reasons()[0] != ReasonEmpty {
		t.Error("Reasons() returns shared state")
	}
	e := (&Rejection{Reason: ReasonNaN, Detail: "value \"NaN\" is NaN"}).Error()
	if !strings.Contains(e, "nan") || !strings.Contains(e, "is NaN") {
		t.Errorf("Error() = %q", e)
	}
}

func TestDetailTruncation(t *testing.T) {
	d := mustDecoder(t, "{device}/{metric}", Options{})
	payload := strings.Repeat("x", 10000)
	_, err := d.Decode("pico/t", []byte(payload), recv, nil)
	var rej *Rejection
	if !errors.As(err, &rej) || rej.Reason != ReasonNotANumber {
		t.Fatalf("got %v", err)
	}
	if n := strings.Count(rej.Detail, "x"); n > maxQuoted {
		t.Errorf("Detail quotes %d bytes of input, want <= %d: %q", n, maxQuoted, rej.Detail)
	}
	_, err = d.Decode(strings.Repeat("y", 5000), []byte("1"), recv, nil)
	if !errors.As(err, &rej) || strings.Count(rej.Detail, "y") > maxQuoted {
		t.Errorf("topic mismatch detail too long: %v", err)
	}
	di := mustDecoder(t, "{device}", Options{Format: FormatInflux})
	_, err = di.Decode("pico", []byte("m value=1 "+strings.Repeat("9", 3000)+"z"), recv, nil)
	if !errors.As(err, &rej) || len(rej.Detail) > maxDetail+3 {
		t.Errorf("line protocol detail too long: %v", err)
	}
}

func TestNewDecoderErrors(t *testing.T) {
	tests := []struct {
		name, template string
		opts           Options
		wantErr        error
		wantMsg        string
	}{
		{"bad template", "dev{device}", Options{}, ErrInvalidTemplate, "mixes"},
		{"unknown format", "{device}/{metric}", Options{Format: "xml"}, ErrInvalidOptions, "unknown Format"},
		{"negative max payload", "{device}/{metric}", Options{MaxPayloadBytes: -1}, ErrInvalidOptions, "MaxPayloadBytes"},
		{"negative max future", "{device}/{metric}", Options{MaxFuture: -time.Second}, ErrInvalidOptions, "MaxFuture"},
		{"value without metric", "{device}", Options{}, ErrInvalidOptions, "needs a metric"},
		{"value without device", "{metric}", Options{}, ErrInvalidOptions, "needs a device"},
		{"bad static label", "{device}", Options{Static: Labels{Metric: "a\nb"}}, ErrInvalidOptions, "Static.Metric"},
		{"json without device", "x/{metric}", Options{Format: FormatJSON}, ErrInvalidOptions, "no device"},
		{"json mapping without device", "x", Options{Format: FormatJSON, JSON: JSONOptions{Fields: map[string]Labels{"a": {Metric: "m"}}}}, ErrInvalidOptions, "has no Device"},
		{"json bad time format", "{device}", Options{Format: FormatJSON, JSON: JSONOptions{TimeFormat: "iso"}}, ErrInvalidOptions, "TimeFormat"},
		{"json bad time path", "{device}", Options{Format: FormatJSON, JSON: JSONOptions{TimeField: "a..b"}}, ErrInvalidOptions, "empty segment"},
		{"json bad field path", "{device}", Options{Format: FormatJSON, JSON: JSONOptions{Fields: map[string]Labels{".a": {}}}}, ErrInvalidOptions, "empty segment"},
		{"json field is time", "{device}", Options{Format: FormatJSON, JSON: JSONOptions{TimeField: "ts", Fields: map[string]Labels{"ts": {}}}}, ErrInvalidOptions, "TimeField"},
		{"json bad mapping label", "{device}", Options{Format: FormatJSON, JSON: JSONOptions{Fields: map[string]Labels{"a": {Unit: strings.Repeat("u", 300)}}}}, ErrInvalidOptions, "longer than 256"},
		{"influx bad precision", "{device}", Options{Format: FormatInflux, Influx: InfluxOptions{Precision: "h"}}, ErrInvalidOptions, "Precision"},
		{"influx empty device tag", "{device}", Options{Format: FormatInflux, Influx: InfluxOptions{DeviceTags: []string{"a", ""}}}, ErrInvalidOptions, "empty tag"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, err := NewDecoder(tc.template, tc.opts)
			if err == nil {
				t.Fatalf("NewDecoder = %v, want error", d)
			}
			if !errors.Is(err, tc.wantErr) || !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("error %q: want %v containing %q", err, tc.wantErr, tc.wantMsg)
			}
		})
	}
}

func TestParseFormat(t *testing.T) {
	for in, want := range map[string]Format{"": FormatValue, "value": FormatValue, " JSON ": FormatJSON, "influx": FormatInflux} {
		if got, err := ParseFormat(in); err != nil || got != want {
			t.Errorf("ParseFormat(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := ParseFormat("protobuf"); !errors.Is(err, ErrInvalidOptions) {
		t.Errorf("ParseFormat(protobuf) error = %v", err)
	}
}

func TestDecodeValueAllocs(t *testing.T) {
	d := mustDecoder(t, "{device}/{metric}/{sensor}", Options{})
	payloads := [][]byte{[]byte("22.4"), []byte(" \"-33\"\n"), []byte(strings.Repeat("1", 100))}
	dst := make([]Reading, 0, 1)
	for _, p := range payloads {
		var err error
		allocs := testing.AllocsPerRun(1000, func() {
			dst, err = d.Decode("pico/temperature/dht22", p, recv, dst[:0])
		})
		if err != nil {
			t.Fatal(err)
		}
		if allocs != 0 {
			t.Errorf("Decode(value %q) allocates %v times per call, want 0", p, allocs)
		}
	}
}

func TestDecodeConcurrent(t *testing.T) {
	d := mustDecoder(t, "iiot/{device}/{metric}", Options{Format: FormatJSON, JSON: JSONOptions{TimeField: "ts"}})
	done := make(chan error)
	for g := 0; g < 4; g++ {
		go func() {
			var dst []Reading
			var err error
			for i := 0; i < 200 && err == nil; i++ {
				dst, err = d.Decode("iiot/node1/x", []byte(`{"ts":1700000000,"a":1,"b":{"c":2}}`), recv, dst[:0])
				if err == nil && (len(dst) != 2 || dst[1].Metric != "b.c" || math.IsNaN(dst[0].Value)) {
					err = errors.New("wrong readings")
				}
			}
			done <- err
		}()
	}
	for g := 0; g < 4; g++ {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}

func TestReasonOfOtherError(t *testing.T) {
	if r, d := ReasonOf(errors.New("disk full")); r != ReasonUnknown || d != "disk full" {
		t.Fatalf("ReasonOf(plain error) = %q, %q", r, d)
	}
	for _, r := range Reasons() {
		if r == ReasonUnknown {
			t.Fatal("ReasonUnknown must not be one of the decoder's reasons")
		}
	}
}
