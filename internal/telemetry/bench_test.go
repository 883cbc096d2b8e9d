package telemetry

import (
	"testing"
)

func BenchmarkDecodeValue(b *testing.B) {
	d := mustDecoder(b, "{device}/{metric}/{sensor}", Options{})
	payload := []byte("22.4")
	dst := make([]Reading, 0, 1)
	b.ReportAllocs()
	b.SetBytes(int64(len(payload)))
	for b.Loop() {
		var err error
		if dst, err = d.Decode("pico/temperature/dht22", payload, recv, dst[:0]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeJSON(b *testing.B) {
	d := mustDecoder(b, "iiot/data", Options{Format: FormatJSON, JSON: JSONOptions{Fields: secondReportFields}})
	payload := []byte(secondReportJSON)
	dst := make([]Reading, 0, 4)
	b.ReportAllocs()
	b.SetBytes(int64(len(payload)))
	for b.Loop() {
		var err error
		if dst, err = d.Decode("iiot/data", payload, recv, dst[:0]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeInflux(b *testing.B) {
	d := mustDecoder(b, "iiot/{device}/lp", Options{Format: FormatInflux})
	payload := []byte("node1_data temperature=27.6,humidity=54.1 1700000000000000000")
	dst := make([]Reading, 0, 2)
	b.ReportAllocs()
	b.SetBytes(int64(len(payload)))
	for b.Loop() {
		var err error
		if dst, err = d.Decode("iiot/node1/lp", payload, recv, dst[:0]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkTemplateMatch(b *testing.B) {
	tpl := MustParseTemplate("iiot/{device}/{metric}")
	b.ReportAllocs()
	var l Labels
	for b.Loop() {
		var ok bool
		if l, ok = tpl.Match("iiot/node1/temperature"); !ok {
			b.Fatal("no match")
		}
	}
	_ = l
}
