package store

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fieldline-iot/fieldline/internal/telemetry"
)

func TestNotificationRoundTrip(t *testing.T) {
	t0 := time.Date(2026, 11, 22, 10, 0, 0, 123456000, time.UTC)
	batch := []telemetry.Reading{
		{Time: t0, Device: "pico", Metric: "temperature", Sensor: "dht22", Value: 22.4},
		{Time: t0.Add(-time.Second), Device: `we"ird\dev`, Metric: "rssi", Value: -33},
	}
	p := EncodeNotification(batch)
	if len(p) > MaxNotifyPayload {
		t.Fatalf("payload %d bytes", len(p))
	}
	n, err := DecodeNotification(p)
	if err != nil {
		t.Fatal(err)
	}
	if !n.HasRows() || len(n.Rows) != 2 || n.N != 2 {
		t.Fatalf("decoded %+v", n)
	}
	if !n.From.Equal(t0.Add(-time.Second)) || !n.To.Equal(t0) {
		t.Errorf("watermark %s..%s", n.From, n.To)
	}
	for i := range batch {
		if n.Rows[i] != (telemetry.Reading{Time: batch[i].Time, Device: batch[i].Device, Metric: batch[i].Metric, Sensor: batch[i].Sensor, Value: batch[i].Value}) {
			t.Errorf("row %d: got %+v want %+v", i, n.Rows[i], batch[i])
		}
	}
}

func TestNotificationWatermarkWhenTooBig(t *testing.T) {
	var batch []telemetry.Reading
	for i := 0; i < 400; i++ {
		batch = append(batch, telemetry.Reading{Time: time.Unix(1_800_000_000+int64(i), 0), Device: "device-" + strings.Repeat("x", 10), Metric: "temperature", Value: float64(i)})
	}
	p := EncodeNotification(batch)
	if len(p) > MaxNotifyPayload {
		t.Fatalf("payload %d bytes over the limit", len(p))
	}
	n, err := DecodeNotification(p)
	if err != nil {
		t.Fatal(err)
	}
	if n.HasRows() || n.N != 400 || n.From.Unix() != 1_800_000_000 || n.To.Unix() != 1_800_000_399 {
		t.Errorf("want watermark only, got %+v", n)
	}
	// Every size up to the limit stays under it (the estimate and the exact check agree).
	for k := 1; k < 200; k++ {
		if p := EncodeNotification(batch[:k]); len(p) > MaxNotifyPayload {
			t.Fatalf("%d rows: %d bytes", k, len(p))
		}
	}
	if EncodeNotification(nil) != "" {
		t.Error("empty batch should encode to empty string")
	}
}

func TestDecodeNotificationErrors(t *testing.T) {
	for _, p := range []string{"", "{", `{"v":2,"from":1,"to":2,"n":1}`, `{"v":1,"n":1}`, `{"v":1,"from":1,"to":1,"n":1,"rows":[[1,"a"]]}`,
		`{"v":1,"from":1,"to":1,"n":1,"rows":[["x","a","b","c",1]]}`} {
		if _, err := DecodeNotification(p); err == nil {
			t.Errorf("DecodeNotification(%q) succeeded", p)
		}
	}
}

// pgPayloads are payloads as the trigger's json_build_object/json_agg/json_build_array print them (PostgreSQL 15;
// older versions separate json_agg's elements with ", \n "). PostgreSQL prints a NaN or infinite double as a
// JSON string, which is not a number: such a notification does not decode, on either path.
var pgPayloads = []string{
	`{"v" : 1, "from" : 1795000000123456, "to" : 1795000000123456, "n" : 1, "rows" : [[1795000000123456, "pico", "temperature", "dht22", 22.4]]}`,
	`{"v" : 1, "from" : 1, "to" : 2, "n" : 3, "rows" : [[1, "pi\"co", "tem\\p", "", 22.4], [4, "a", "b", "c", -1e+21], [5, "a", "b", "c", 5e-324], [6, "a", "b", "c", 1e-05], [7, "a", "b", "c", -0], [9, "a", "b", "c", 1.2345678901234568e+17], [10, "a", "b", "c", -33]]}`,
	"{\"v\" : 1, \"from\" : 1, \"to\" : 2, \"n\" : 2, \"rows\" : [[1, \"a<&>\u2028\\u0001\\t\", \"é\", \"x\", 1], \n [2, \"a\", \"b\", \"c\", 2]]}",
	`{"v" : 1, "from" : -1, "to" : 0, "n" : 150}`,
	`{"v" : 1, "from" : 1, "to" : 2, "n" : 3, "rows" : [[2, "a", "é", "x", "NaN"], [3, "a", "b", "c", "Infinity"]]}`,
}

// notifySeeds are payloads for the fast-path tests and the fuzz corpus: both writers' forms and malformed ones.
func notifySeeds() []string {
	t0 := time.Date(2026, 11, 22, 10, 0, 0, 123456000, time.UTC)
	seeds := []string{
		EncodeNotification([]telemetry.Reading{{Time: t0, Device: "pico", Metric: "temperature", Sensor: "dht22", Value: 22.4}}),
		EncodeNotification([]telemetry.Reading{
			{Time: t0, Device: `we"ird\dev`, Metric: "<&>", Sensor: "\u2028é\x01\t", Value: -33},
			{Time: t0.Add(-time.Hour), Device: "bad\xffutf8", Metric: "m", Value: 1e21},
			{Time: time.UnixMicro(-1), Device: "d", Metric: "m", Value: 5e-324},
			{Time: time.UnixMicro(0), Device: "d", Metric: "m", Value: math.Copysign(0, -1)},
			{Time: time.UnixMicro(math.MaxInt64), Device: "d", Metric: "m", Value: -math.MaxFloat64},
			{Time: time.UnixMicro(math.MinInt64), Device: "d", Metric: "m", Value: 1.2345e-7},
		}),
		canonicalPayload(realisticBatch(5)),
		EncodeNotification(realisticBatch(400)), // watermark only
		`{"v":1,"from":1,"to":2,"n":0,"rows":[]}`,
		` { "rows" : [ ] , "n" : 0 , "to" : 2 , "from" : 1 , "v" : 1 } `,
		"{\"v\":1,\r\n\t\"from\":1,\"to\":2,\"n\":1,\"rows\":[\n[1,\"a\",\"b\",\"c\",1E+2]\n]}\n",
		`{"from":1,"to":2,"rows":[[1,"a","b","c",1.5e-3]],"v":1}`,
		// Valid JSON the fast path leaves to encoding/json: other keys, other spellings, null, a duplicate.
		`{"v":1,"from":1,"to":2,"n":1,"extra":{"a":[1,"]"]}}`,
		`{"V":1,"FROM":1,"To":2,"n":1}`,
		`{"\u0076":1,"from":1,"to":2}`,
		`{"v":1,"from":1,"to":2,"rows":null}`,
		`{"v":1,"from":1,"to":2,"rows":[[null,"a",null,"c",null]]}`,
		`{"v":1,"from":1,"to":2,"from":null}`,
		`{"v":1,"from":1,"to":2,"rows":[[1,"a","b","c",1]],"rows":[]}`,
		// Invalid.
		"", "{", "}", "null", "[]", `{}`, `{"v":1}`, `{"v":2,"from":1,"to":2,"n":1}`, `{"v":1,"n":1}`,
		`{"v":1.0,"from":1,"to":2}`, `{"v":1,"from":1.5,"to":2}`, `{"v":1,"from":1e3,"to":2}`, `{"v":1,"from":01,"to":2}`,
		`{"v":1,"from":1,"to":99999999999999999999}`, `{"v":1,"from":1,"to":2,"n":1.5}`, `{"v":1,"from":1,"to":2}x`,
		`{"v":1,"from":1,"to":2,}`, `{"v":1,"from":-,"to":2}`, `{"v":1,"from":+1,"to":2}`, "\ufeff{\"v\":1,\"from\":1,\"to\":2}",
		`{"v":1,"from":1,"to":1,"n":1,"rows":[[1,"a"]]}`,
		`{"v":1,"from":1,"to":1,"n":1,"rows":[[1,"a","b","c",1,2]]}`,
		`{"v":1,"from":1,"to":1,"n":1,"rows":[["x","a","b","c",1]]}`,
		`{"v":1,"from":1,"to":1,"n":1,"rows":[[1.5,"a","b","c",1]]}`,
		`{"v":1,"from":1,"to":1,"n":1,"rows":[[1,"a","b","c",0x10]]}`,
		`{"v":1,"from":1,"to":1,"n":1,"rows":[[1,"a","b","c",Inf]]}`,
		`{"v":1,"from":1,"to":1,"n":1,"rows":[[1,"a","b","c",1_000]]}`,
		`{"v":1,"from":1,"to":1,"n":1,"rows":[[1,"a","b","c",.5]]}`,
		`{"v":1,"from":1,"to":1,"n":1,"rows":[[1,"a","b","c",1.]]}`,
		`{"v":1,"from":1,"to":1,"n":1,"rows":[[1,"a","b","c",1e]]}`,
		`{"v":1,"from":1,"to":1,"n":1,"rows":[[1,"a","b","c",1e400]]}`,
		`{"v":1,"from":1,"to":1,"n":1,"rows":[[1,"a","b","c",1],]}`,
		`{"v":1,"from":1,"to":1,"n":1,"rows":[[1,"a","b","c",1]`,
		`{"v":1,"from":1,"to":1,"n":1,"rows":[[1,"a\q","b","c",1]]}`,
		`{"v":1,"from":1,"to":1,"n":1,"rows":[[1,"a\ud800","b","c",1]]}`,
		"{\"v\":1,\"from\":1,\"to\":1,\"n\":1,\"rows\":[[1,\"a\x01\",\"b\",\"c\",1]]}",
		`{"v":1,"from":1,"to":1,"n":1000000000,"rows":[[1,"a","b","c",1]]}`,
	}
	return append(seeds, pgPayloads...)
}

// realisticBatch is what the ingester commits from a few devices, each reporting two DHT22 metrics and its RSSI.
func realisticBatch(rows int) []telemetry.Reading {
	t0 := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	metrics := []struct{ metric, sensor string }{{"temperature", "dht22"}, {"humidity", "dht22"}, {"rssi", ""}}
	batch := make([]telemetry.Reading, rows)
	for i := range batch {
		m := metrics[i%len(metrics)]
		batch[i] = telemetry.Reading{Time: t0.Add(time.Duration(i) * 7919 * time.Microsecond), Device: fmt.Sprintf("pico-%02d", i/len(metrics)%4),
			Metric: m.metric, Sensor: m.sensor, Value: math.Round((20+math.Sin(float64(i))*15)*100) / 100}
	}
	return batch
}

// canonicalPayload is EncodeNotification's rows form for a batch in time order, without its size limit (the
// benchmark's 150 realistic rows are a little over it).
func canonicalPayload(batch []telemetry.Reading) string {
	buf := []byte(`{"v":1,"from":`)
	buf = strconv.AppendInt(buf, batch[0].Time.UnixMicro(), 10)
	buf = append(buf, `,"to":`...)
	buf = strconv.AppendInt(buf, batch[len(batch)-1].Time.UnixMicro(), 10)
	buf = append(buf, `,"n":`...)
	buf = strconv.AppendInt(buf, int64(len(batch)), 10)
	buf = append(buf, `,"rows":[`...)
	for i := range batch {
		one := EncodeNotification(batch[i : i+1])
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, one[strings.Index(one, `"rows":[`)+len(`"rows":[`):len(one)-2]...)
	}
	return string(append(buf, "]}"...))
}

// sameNotification compares exactly: times with == (instant and location), values bit for bit (-0 is not 0),
// and nil rows apart from empty ones.
func sameNotification(a, b Notification) bool {
	if a.From != b.From || a.To != b.To || a.N != b.N || (a.Rows == nil) != (b.Rows == nil) || len(a.Rows) != len(b.Rows) {
		return false
	}
	for i := range a.Rows {
		x, y := a.Rows[i], b.Rows[i]
		if x.Time != y.Time || x.Device != y.Device || x.Metric != y.Metric || x.Sensor != y.Sensor || x.Unit != y.Unit ||
			math.Float64bits(x.Value) != math.Float64bits(y.Value) {
			return false
		}
	}
	return true
}

// Both writers' payloads take the fast path, and it decodes them as encoding/json does.
func TestDecodeNotificationFastPath(t *testing.T) {
	payloads := []string{
		EncodeNotification(realisticBatch(1)),
		EncodeNotification(realisticBatch(100)),
		EncodeNotification(realisticBatch(400)), // watermark only
		canonicalPayload(realisticBatch(150)),
		EncodeNotification([]telemetry.Reading{{Time: time.UnixMicro(-5), Device: `we"ird\dev`, Metric: "<&>\u2028", Sensor: "bad\xff", Value: -1e-300}}),
		`{"v":1,"from":1,"to":2,"n":0,"rows":[]}`,
		` { "rows" : [ ] , "n" : 0 , "to" : 2 , "from" : 1 , "v" : 1 } `,
	}
	payloads = append(payloads, pgPayloads[:4]...)
	for _, p := range payloads {
		got, ok := decodeNotificationFast(p)
		want, err := decodeNotificationJSON(p)
		if err != nil {
			t.Fatalf("encoding/json: %v for %q", err, p)
		}
		if !ok {
			t.Errorf("fast path gave up on %q", p)
		} else if !sameNotification(got, want) {
			t.Errorf("fast path decoded %q\n to %+v\nwant %+v", p, got, want)
		}
	}
	if n, _ := decodeNotificationFast(pgPayloads[1]); n.Rows[0].Device != `pi"co` || n.Rows[0].Metric != `tem\p` || n.Rows[1].Value != -1e21 {
		t.Errorf("PostgreSQL payload decoded to %+v", n.Rows[:2])
	}
}

// Rows repeating labels share their strings: a payload costs one allocation for its rows and one per distinct label.
func TestDecodeNotificationAllocs(t *testing.T) {
	p := canonicalPayload(realisticBatch(150)) // 4 devices, 3 metrics, 1 non-empty sensor
	allocs := testing.AllocsPerRun(20, func() {
		if _, err := DecodeNotification(p); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 1+4+3+1 {
		t.Errorf("%v allocations per 150-row payload, want at most 9", allocs)
	}
}

// FuzzDecodeNotification checks that the fast path agrees with encoding/json on every input: when it succeeds
// encoding/json succeeds with the same Notification, and DecodeNotification always returns what encoding/json does.
func FuzzDecodeNotification(f *testing.F) {
	for _, s := range notifySeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		want, wantErr := decodeNotificationJSON(p)
		if fast, ok := decodeNotificationFast(p); ok {
			if wantErr != nil {
				t.Fatalf("fast path accepted %q, encoding/json: %v", p, wantErr)
			}
			if !sameNotification(fast, want) {
				t.Fatalf("fast path decoded %q\n to %+v\nwant %+v", p, fast, want)
			}
		}
		got, err := DecodeNotification(p)
		if (err == nil) != (wantErr == nil) || err != nil && err.Error() != wantErr.Error() || !sameNotification(got, want) {
			t.Fatalf("DecodeNotification(%q) = %+v, %v; encoding/json: %+v, %v", p, got, err, want, wantErr)
		}
	})
}

// FuzzNotificationRoundTrip checks that every payload EncodeNotification writes takes the fast path.
func FuzzNotificationRoundTrip(f *testing.F) {
	f.Add(int64(1795000000123456), "pico", "temperature", "dht22", 22.4)
	f.Add(int64(-1), `we"ird\dev`, "\u2028<&>", "bad\xff", -1e21)
	f.Fuzz(func(t *testing.T, us int64, device, metric, sensor string, value float64) {
		if math.IsNaN(value) || math.IsInf(value, 0) {
			t.Skip("not representable in JSON")
		}
		r := telemetry.Reading{Time: time.UnixMicro(us), Device: device, Metric: metric, Sensor: sensor, Value: value}
		p := EncodeNotification([]telemetry.Reading{r, r})
		want, err := decodeNotificationJSON(p)
		if err != nil {
			t.Fatalf("encoding/json: %v for %q", err, p)
		}
		got, ok := decodeNotificationFast(p)
		if !ok || !sameNotification(got, want) {
			t.Fatalf("fast path (ok=%v) decoded %q\n to %+v\nwant %+v", ok, p, got, want)
		}
	})
}

// BenchmarkDecodeNotification decodes realistic canonical payloads with DecodeNotification (fast) and with
// encoding/json alone (json, the decoder before the fast path).
func BenchmarkDecodeNotification(b *testing.B) {
	for _, rows := range []int{5, 150} {
		p := canonicalPayload(realisticBatch(rows))
		for _, dec := range []struct {
			name   string
			decode func(string) (Notification, error)
		}{{"fast", DecodeNotification}, {"json", decodeNotificationJSON}} {
			b.Run(fmt.Sprintf("rows=%d/%s", rows, dec.name), func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(p)))
				for b.Loop() {
					if _, err := dec.decode(p); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*rows), "ns/row")
			})
		}
	}
}
