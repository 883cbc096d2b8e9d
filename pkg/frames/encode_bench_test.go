package frames

import (
	"bytes"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/data"
	jsoniter "github.com/json-iterator/go"
)

// benchWide is the answer of bench:query's 24 h @ 1 m panel: one wide frame of 1 440 buckets and 20 series of
// full-precision averages.
func benchWide(b *testing.B) *data.Frame {
	b.Helper()
	c := NewCollector()
	c.ExpectPoints(1440)
	start := time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC)
	for i := range 1440 {
		for d := range 10 {
			for s, sensor := range []string{"a", "b"} {
				v := 20 + float64(d) + 5*math.Sin(float64(i)/360+float64(s)) + math.Mod(float64(i)*0.37, 1)/7
				c.Add(start.Add(time.Duration(i)*time.Minute), fmt.Sprintf("dev%02d", d), sensor, v)
			}
		}
	}
	f, ok := Wide("A", "temperature", c.Sorted(), nil, "SELECT …")
	if !ok {
		b.Fatal("series do not share their buckets")
	}
	return f
}

// The three encodings an aggregated answer goes through on its way to the browser, for docs/benchmarks.md
// ("Queries: where the end-to-end time goes"): the plugin's Arrow encoding, then Grafana's Arrow decoding and
// its JSON for /api/ds/query (response.JSONStreaming: jsoniter with the SDK's registered encoders).
//
//	go test -run '^$' -bench 'Wide(Arrow|JSON)' -benchmem ./pkg/frames

func BenchmarkWideArrowEncode(b *testing.B) {
	f := benchWide(b)
	var n int
	for b.Loop() {
		raw, err := f.MarshalArrow()
		if err != nil {
			b.Fatal(err)
		}
		n = len(raw)
	}
	b.ReportMetric(float64(n), "bytes/answer")
}

func BenchmarkWideArrowDecode(b *testing.B) {
	raw, err := benchWide(b).MarshalArrow()
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := data.UnmarshalArrowFrame(raw); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkWideJSON(b *testing.B) {
	raw, err := benchWide(b).MarshalArrow()
	if err != nil {
		b.Fatal(err)
	}
	decoded, err := data.UnmarshalArrowFrame(raw)
	if err != nil {
		b.Fatal(err)
	}
	resp := backend.NewQueryDataResponse()
	resp.Responses["A"] = backend.DataResponse{Frames: data.Frames{decoded}}
	var out bytes.Buffer
	for b.Loop() {
		out.Reset()
		if err := jsoniter.ConfigCompatibleWithStandardLibrary.NewEncoder(&out).Encode(resp); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(out.Len()), "bytes/answer")
}
