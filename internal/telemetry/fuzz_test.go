package telemetry

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// checkDecodeResult asserts Decode's contract for any input: either a *Rejection and dst untouched, or only
// appended readings that are finite, labelled and timed within bounds.
func checkDecodeResult(t *testing.T, d *Decoder, topic string, payload []byte, received time.Time) {
	t.Helper()
	prefix := Reading{Device: "prefix", Metric: "prefix"}
	dst := make([]Reading, 1, 4)
	dst[0] = prefix
	got, err := d.Decode(topic, payload, received, dst)
	if err != nil {
		var rej *Rejection
		if !errors.As(err, &rej) {
			t.Fatalf("Decode error %T %v is not a *Rejection", err, err)
		}
		if !isKnownReason(rej.Reason) {
			t.Fatalf("unknown reason %q", rej.Reason)
		}
		if len(got) != 1 || got[0] != prefix {
			t.Fatalf("dst changed on rejection: %+v", got)
		}
		if len(rej.Detail) > maxDetail+3 || !utf8.ValidString(rej.Detail) {
			t.Fatalf("bad Detail (%d bytes): %q", len(rej.Detail), rej.Detail)
		}
		return
	}
	if len(got) < 2 || got[0] != prefix {
		t.Fatalf("success without readings or prefix lost: %+v", got)
	}
	for _, r := range got[1:] {
		if math.IsNaN(r.Value) || math.IsInf(r.Value, 0) {
			t.Fatalf("non-finite value %v from %q", r.Value, payload)
		}
		if r.Device == "" || r.Metric == "" {
			t.Fatalf("empty device or metric: %+v", r)
		}
		for _, l := range []string{r.Device, r.Metric, r.Sensor, r.Unit} {
			if len(l) > MaxLabelBytes || !utf8.ValidString(l) || strings.ContainsFunc(l, func(c rune) bool { return c < 0x20 || (c >= 0x7f && c < 0xa0) }) {
				t.Fatalf("bad label %q in %+v", l, r)
			}
		}
		switch r.Kind {
		case KindNumber:
			if r.Text != "" {
				t.Fatalf("number with text: %+v", r)
			}
		case KindBool:
			if r.Text != "true" && r.Text != "false" {
				t.Fatalf("bool state %q", r.Text)
			}
		case KindText:
			if reason, msg := CheckText(r.Text); reason != "" {
				t.Fatalf("stored text %q fails its own check: %s", r.Text, msg)
			}
		default:
			t.Fatalf("unknown kind %d", r.Kind)
		}
		if r.IsState() && d.valueType == ValueNumber {
			t.Fatalf("state from a number-only decoder: %+v", r)
		}
		if r.Time.Before(MinTime) || r.Time.After(received.Add(d.maxFuture)) {
			t.Fatalf("time %v out of bounds (received %v)", r.Time, received)
		}
	}
}

func isKnownReason(r Reason) bool {
	for _, k := range Reasons() {
		if k == r {
			return true
		}
	}
	return false
}

func FuzzParseTemplate(f *testing.F) {
	for _, s := range []string{
		"{device}/{metric}/{sensor}", "iiot/{device}/{metric}", "+/{device}/#", "#", "/", "dev{device}",
		"{device}/{device}", "a/#/b", "{x}", "{", "}", "a+b", "", "{unit}/+/{metric}/{sensor}/{device}/#",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tpl, err := ParseTemplate(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidTemplate) {
				t.Fatalf("error %v does not wrap ErrInvalidTemplate", err)
			}
			return
		}
		if tpl.String() != s {
			t.Fatalf("String() = %q, want %q", tpl.String(), s)
		}
		// The MQTT filter is itself a valid template (placeholders become '+') with the same shape.
		ft, err := ParseTemplate(tpl.Filter())
		if err != nil {
			t.Fatalf("Filter() %q of %q does not parse: %v", tpl.Filter(), s, err)
		}
		if ft.Filter() != tpl.Filter() || ft.provides != 0 {
			t.Fatalf("Filter() not idempotent: %q -> %q", tpl.Filter(), ft.Filter())
		}
		// Each placeholder at most once.
		for _, p := range []string{"{device}", "{metric}", "{sensor}", "{unit}"} {
			if strings.Count(s, p) > 1 {
				t.Fatalf("accepted repeated %s in %q", p, s)
			}
		}
	})
}

func FuzzTemplateMatch(f *testing.F) {
	f.Add("{device}/{metric}/{sensor}", "pico/temperature/dht22")
	f.Add("{device}/{metric}/{sensor}", "pico//dht22")
	f.Add("iiot/{device}/{metric}", "iiot/node1/temperature")
	f.Add("iiot/{device}/{metric}", "iiot/signal/rssi/x")
	f.Add("+/{device}/#", "a/b")
	f.Add("{device}/#", "a")
	f.Add("#", "")
	f.Add("a/+", "a")
	f.Fuzz(func(t *testing.T, template, topic string) {
		tpl, err := ParseTemplate(template)
		if err != nil {
			return
		}
		l, ok := tpl.Match(topic)
		if want := mqttMatch(tpl.Filter(), topic); ok != want {
			t.Fatalf("Match(%q) with %q = %v, MQTT filter %q says %v", topic, template, ok, tpl.Filter(), want)
		}
		if !ok {
			if l != (Labels{}) {
				t.Fatalf("labels %+v on mismatch", l)
			}
			return
		}
		segs := strings.Split(topic, "/")
		for _, v := range []string{l.Device, l.Metric, l.Sensor, l.Unit} {
			if strings.Contains(v, "/") {
				t.Fatalf("label %q spans segments of %q", v, topic)
			}
		}
		// Each captured label is the topic segment at its placeholder's position.
		for i, p := range strings.Split(template, "/") {
			var got string
			switch p {
			case "{device}":
				got = l.Device
			case "{metric}":
				got = l.Metric
			case "{sensor}":
				got = l.Sensor
			case "{unit}":
				got = l.Unit
			default:
				continue
			}
			if got != segs[i] {
				t.Fatalf("%s = %q, want segment %d %q of %q", p, got, i, segs[i], topic)
			}
		}
	})
}

func FuzzDecodeValue(f *testing.F) {
	for _, s := range []string{
		"22.4", "39.7", "30.6", "27.6", "-33", " 27.6\n", "\"22.4\"", "NaN", "Inf", "-inf", "1e999", "1e-999", "",
		"   ", "\xff", "0x1p-2", "1_000", "+.5", "\"\"", "\"", "22.4\x00", "١٢", "9007199254740993",
	} {
		f.Add("pico/temperature/dht22", []byte(s), int64(1700000000))
	}
	f.Add("pico//dht22", []byte("1"), int64(1700000000))
	f.Add("pico/temp\x7f/dht22", []byte("1"), int64(1700000000))
	f.Add("pico/temperature/dht22", []byte("1"), int64(0))
	f.Add("pico/status/x", []byte("offline"), int64(1700000000))
	f.Add("pico/relay/x", []byte("ON"), int64(1700000000))
	d, err := NewDecoder("{device}/{metric}/{sensor}", Options{MaxPayloadBytes: 64})
	if err != nil {
		f.Fatal(err)
	}
	var states []*Decoder
	for _, vt := range []ValueType{ValueText, ValueBool, ValueAuto} {
		sd, err := NewDecoder("{device}/{metric}/{sensor}", Options{MaxPayloadBytes: 2048, ValueType: vt})
		if err != nil {
			f.Fatal(err)
		}
		states = append(states, sd)
	}
	f.Fuzz(func(t *testing.T, topic string, payload []byte, recvSec int64) {
		checkDecodeResult(t, d, topic, payload, time.Unix(recvSec, 0))
		for _, sd := range states {
			checkDecodeResult(t, sd, topic, payload, time.Unix(recvSec, 0))
		}
	})
}

func FuzzDecodeJSON(f *testing.F) {
	for _, s := range []string{
		secondReportJSON,
		`{"ts":1700000000,"value":22.4}`, `{"ts":"2023-11-14T22:13:20Z","t":1}`, `{"ts":1700000000000,"a":[1,2,{"b":3}]}`,
		`{"t":1e999}`, `{"t":"x"}`, `{"ts":null,"t":1}`, `{"ts":-1e300,"t":1}`, `22.4`, `[1,2]`, `{"a\u0000b":1}`,
		`{"t":1} x`, `{`, `{"n1":{"t":27.6}}`, `{"ts":9223372036854775807,"t":1}`, `{"ts":"1700000000","t":2}`,
	} {
		f.Add("iiot/node1/json", []byte(s), int64(1700000000))
	}
	auto, err := NewDecoder("iiot/{device}/{metric}", Options{Format: FormatJSON, JSON: JSONOptions{TimeField: "ts"}})
	if err != nil {
		f.Fatal(err)
	}
	autoStates, err := NewDecoder("iiot/{device}/{metric}", Options{Format: FormatJSON, ValueType: ValueAuto, JSON: JSONOptions{TimeField: "ts"}})
	if err != nil {
		f.Fatal(err)
	}
	fields := map[string]Labels{"ts2": {}}
	for k, v := range secondReportFields {
		fields[k] = v
	}
	mapped, err := NewDecoder("iiot/{device}/{metric}", Options{Format: FormatJSON,
		JSON: JSONOptions{TimeField: "ts", TimeFormat: "unix_ms", Fields: fields}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, topic string, payload []byte, recvSec int64) {
		received := time.Unix(recvSec, 0)
		checkDecodeResult(t, auto, topic, payload, received)
		checkDecodeResult(t, autoStates, topic, payload, received)
		checkDecodeResult(t, mapped, topic, payload, received)
	})
}

func FuzzDecodeInflux(f *testing.F) {
	for _, s := range []string{
		"humidity,node=node1,unit=percent value=54.1",
		"node1_data temperature=27.6,humidity=54.1 1700000000000000000",
		"a value=1\nb,device=x value=2i 1700000000000000000\n# c\n",
		"t value=-inf", "t value=1e999", "t value=", "t,sensor=a", "t value=1 1-2", "t value=1u,s=\"x\",b=true",
		"t value=1 99999999999999999999", `a\ b,c\,d=e\=f g\ h=1`, "t,device=\u0085 value=1", "\r", "t value=1\r",
	} {
		f.Add("iiot/node1/lp", []byte(s), int64(1700000000))
	}
	ns, err := NewDecoder("iiot/{device}/+", Options{Format: FormatInflux})
	if err != nil {
		f.Fatal(err)
	}
	sec, err := NewDecoder("iiot/#", Options{Format: FormatInflux, ValueType: ValueText, Influx: InfluxOptions{Precision: "s"}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, topic string, payload []byte, recvSec int64) {
		received := time.Unix(recvSec, 0)
		checkDecodeResult(t, ns, topic, payload, received)
		checkDecodeResult(t, sec, topic, payload, received)
	})
}
