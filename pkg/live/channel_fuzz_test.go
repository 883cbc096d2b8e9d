package live

import (
	"reflect"
	"testing"
	"time"
)

// FuzzUnmarshalSelector: any bytes decode to a selector or an error, never a panic or a huge allocation; what
// decodes encodes and decodes again to the same selector.
func FuzzUnmarshalSelector(f *testing.F) {
	seam := time.UnixMilli(1700000000123).UTC()
	for _, s := range []*Selector{
		{Kind: KindPostgres, Seam: seam, Nonce: 1, Metric: "temperature", Series: true, Devices: []string{"pico"}, Sensors: []string{""}},
		{Kind: KindPostgres, Seam: seam, Metric: "t", Devices: []string{"a", "b"}, Agg: "avg", Interval: 2 * time.Second},
		{Kind: KindPostgres, Seam: seam, Metric: "t", ExcludeDevices: []string{"a", "b"}, ExcludeSensors: []string{"x", ""}},
		{Kind: KindMQTT, Seam: seam, Topic: "pico/+/+", Template: "{device}/{metric}/{sensor}", PayloadFormat: "value"},
	} {
		f.Add(s.marshal())
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := unmarshalSelector(b)
		if err != nil {
			return
		}
		again, err := unmarshalSelector(s.marshal())
		if err != nil {
			t.Fatalf("re-encoded selector does not decode: %v (%+v)", err, s)
		}
		if !reflect.DeepEqual(s, again) {
			t.Fatalf("round trip changed the selector:\n%+v\n%+v", s, again)
		}
	})
}
