package frames

import (
	"fmt"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/data"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func at(s int) time.Time { return t0.Add(time.Duration(s) * time.Minute) }

func TestCollectorSortsSeriesAndTimes(t *testing.T) {
	c := NewCollector()
	c.Add(at(2), "node2", "", 3)
	c.Add(at(1), "node1", "b", 2)
	c.Add(at(0), "node1", "b", 1)
	c.Add(at(0), "node1", "a", 9)
	all := c.Sorted()
	if c.Rows != 4 || len(all) != 3 {
		t.Fatalf("rows %d, series %d", c.Rows, len(all))
	}
	if all[0].Sensor != "a" || all[1].Sensor != "b" || all[2].Device != "node2" {
		t.Fatalf("series order: %+v %+v %+v", all[0], all[1], all[2])
	}
	if b := all[1]; !b.Times[0].Equal(at(0)) || b.Values[0] != 1 || b.Values[1] != 2 {
		t.Fatalf("points not in time order: %+v", b)
	}
}

func TestTimeSeriesDataplane(t *testing.T) {
	if fs := TimeSeries("A", "temperature", nil, nil, "SELECT 1"); len(fs) != 1 || len(fs[0].Fields) != 0 ||
		fs[0].Meta.Type != data.FrameTypeTimeSeriesMulti || fs[0].Meta.ExecutedQueryString != "SELECT 1" {
		t.Fatalf("no series must give one empty typed frame: %+v", fs)
	}
	s := &Series{Device: "node1", Sensor: "dht22", Times: []time.Time{at(0), at(2)}, Values: []float64{1, 3}}
	fs := TimeSeries("A", "temperature", []*Series{s}, nil, "")
	f := fs[0]
	if f.RefID != "A" || f.Fields[0].Name != data.TimeSeriesTimeFieldName || f.Fields[1].Name != "temperature" ||
		f.Fields[1].Labels["device"] != "node1" || f.Fields[1].Labels["sensor"] != "dht22" ||
		f.Fields[1].Config.DisplayNameFromDS != "node1/dht22 temperature" {
		t.Fatalf("frame: %+v %+v", f.Fields[1].Labels, f.Fields[1].Config)
	}
	if l := SeriesLabels("node1", ""); len(l) != 1 {
		t.Fatalf("an empty sensor is no label: %v", l)
	}
}

func TestFillGrid(t *testing.T) {
	s := &Series{Times: []time.Time{at(1), at(3)}, Values: []float64{10, 30}}
	for _, c := range []struct {
		mode string
		want []any
	}{
		{FillNull, []any{nil, 10.0, nil, 30.0}},
		{FillPrevious, []any{nil, 10.0, 10.0, 30.0}},
		{FillZero, []any{-1.0, 10.0, -1.0, 30.0}}, // Value: the fill value
	} {
		tf, vf := FillGrid("m", s, &GridFill{Mode: c.mode, Value: -1, From: at(0), To: at(4), Interval: time.Minute})
		if tf.Len() != 4 || vf.Len() != 4 {
			t.Fatalf("%s: %d points, want 4", c.mode, vf.Len())
		}
		for i, w := range c.want {
			got, _ := vf.NullableFloatAt(i)
			switch {
			case w == nil && got != nil, w != nil && (got == nil || *got != w.(float64)):
				t.Errorf("%s: point %d = %v, want %v", c.mode, i, got, w)
			}
		}
	}
}

func TestWideToMulti(t *testing.T) {
	wide := data.NewFrame("w",
		data.NewField("time", nil, []time.Time{at(0), at(1)}),
		data.NewField("a", data.Labels{"device": "n1", "empty": ""}, []float64{1, 2}),
		data.NewField("b", nil, []int64{3, 4}))
	fs, err := WideToMulti("A", wide, "q")
	if err != nil || len(fs) != 2 {
		t.Fatalf("%v, %d frames", err, len(fs))
	}
	if _, ok := fs[0].Fields[1].Labels["empty"]; ok || fs[0].Fields[1].Labels["device"] != "n1" {
		t.Fatalf("labels: %v", fs[0].Fields[1].Labels)
	}
	if _, err := WideToMulti("A", data.NewFrame("t", data.NewField("name", nil, []string{"x"})), ""); err == nil {
		t.Fatal("a frame without time must be refused")
	}
}

func TestPromLabels(t *testing.T) {
	got := PromLabels("device", `no"de`+"\n1", "sensor", "", "metric", `a\b`)
	if want := `{device="no'de 1", metric="a/b"}`; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
	f := LabelsPush[float64]("A", "v", nil, nil, nil)
	if len(f.Fields) != 3 || f.Fields[0].Name != "labels" || f.Rows() != 0 {
		t.Fatalf("empty labels frame: %+v", f)
	}
}

func TestTableAndStrings(t *testing.T) {
	s := []*Series{{Device: "n1", Sensor: "s", Times: []time.Time{at(0)}, Values: []float64{1}}}
	f := Table("A", "temperature", s, "")
	if f.Rows() != 1 || f.Fields[3].Name != "temperature" || f.Meta.Type != data.FrameTypeTable {
		t.Fatalf("table: %+v", f)
	}
	if f := Strings("A", "device", nil); f.Rows() != 0 || f.Fields[0].Name != "device" {
		t.Fatalf("strings: %+v", f)
	}
}

func TestWide(t *testing.T) {
	if _, ok := Wide("A", "m", nil, nil, ""); ok {
		t.Fatal("no series: no wide frame (the caller answers the empty typed frame)")
	}
	a := &Series{Device: "n1", Sensor: "s", Times: []time.Time{at(0), at(1), at(2)}, Values: []float64{1, 2, 3}}
	b := &Series{Device: "n2", Extra: data.Labels{"site": "x"}, Times: []time.Time{at(0), at(1), at(2)}, Values: []float64{4, 5, 6}}
	f, ok := Wide("A", "temperature", []*Series{a, b}, nil, "SELECT 2")
	if !ok || f.RefID != "A" || f.Name != "temperature" || len(f.Fields) != 3 || f.Rows() != 3 ||
		f.Meta.Type != data.FrameTypeTimeSeriesWide || f.Meta.ExecutedQueryString != "SELECT 2" {
		t.Fatalf("wide frame: ok %v %+v", ok, f)
	}
	multi := TimeSeries("A", "temperature", []*Series{a, b}, nil, "SELECT 2")
	for i, mf := range multi {
		wf := f.Fields[i+1]
		if wf.Name != mf.Fields[1].Name || wf.Labels.String() != mf.Fields[1].Labels.String() ||
			wf.Config.DisplayNameFromDS != mf.Fields[1].Config.DisplayNameFromDS {
			t.Fatalf("field %d: %s %v %q, multi %s %v %q", i, wf.Name, wf.Labels, wf.Config.DisplayNameFromDS,
				mf.Fields[1].Name, mf.Fields[1].Labels, mf.Fields[1].Config.DisplayNameFromDS)
		}
		for r := 0; r < f.Rows(); r++ {
			if f.Fields[0].At(r) != mf.Fields[0].At(r) || wf.At(r) != mf.Fields[1].At(r) {
				t.Fatalf("series %d row %d differs", i, r)
			}
		}
	}
	if b := f.Fields[2]; b.Labels["site"] != "x" || b.Config.DisplayNameFromDS != "n2 temperature site=x" {
		t.Fatalf("extra labels: %v %q", b.Labels, b.Config.DisplayNameFromDS)
	}
	// Without fill, a series lacking a bucket the others have means no wide frame: a null is not an absent point.
	c := &Series{Device: "n3", Times: []time.Time{at(0), at(2)}, Values: []float64{7, 9}}
	if _, ok := Wide("A", "temperature", []*Series{a, c}, nil, ""); ok {
		t.Fatal("series with different timestamps must not share a time field without fill")
	}
	d := &Series{Device: "n4", Times: []time.Time{at(0), at(1), at(3)}, Values: []float64{7, 8, 9}} // same length
	if _, ok := Wide("A", "temperature", []*Series{a, d}, nil, ""); ok {
		t.Fatal("same length, different timestamps")
	}
	// With fill, every series goes on the grid, as FillGrid puts it in its own frame.
	for _, mode := range []string{FillNull, FillPrevious, FillZero} {
		g := &GridFill{Mode: mode, Value: -1, From: at(0), To: at(4), Interval: time.Minute}
		f, ok := Wide("A", "m", []*Series{a, c}, g, "")
		if !ok || f.Rows() != 4 || len(f.Fields) != 3 {
			t.Fatalf("%s: ok %v, %d rows", mode, ok, f.Rows())
		}
		for i, s := range []*Series{a, c} {
			tf, vf := FillGrid("m", s, g)
			if got, want := f.Fields[i+1].Type(), vf.Type(); got != want {
				t.Fatalf("%s: series %d type %s, want %s", mode, i, got, want)
			}
			for r := 0; r < 4; r++ {
				wv, _ := f.Fields[i+1].NullableFloatAt(r)
				mv, _ := vf.NullableFloatAt(r)
				if f.Fields[0].At(r) != tf.At(r) || (wv == nil) != (mv == nil) || (wv != nil && *wv != *mv) {
					t.Fatalf("%s: series %d row %d: %v, FillGrid %v", mode, i, r, wv, mv)
				}
			}
		}
	}
}

// Rows of aggregated reads come bucket by bucket, the series mostly in one order (the collector guesses the
// next series from the previous bucket); changes of order, missing and new series must not mix series up.
func TestCollectorInterleaved(t *testing.T) {
	c := NewCollector()
	buckets := [][]string{{"a", "b", "c"}, {"a", "b", "c"}, {"b", "a", "c"}, {"a", "c"}, {"c", "d", "a", "b"}, {"a", "b", "c", "d"}}
	want := map[string][]int{}
	for i, order := range buckets {
		for _, dev := range order {
			c.Add(at(i), dev, "s", float64(i*10+int(dev[0]-'a')))
			want[dev] = append(want[dev], i)
		}
	}
	c.AddExtra(at(9), "a", "s", data.Labels{"site": "x"}, 99) // another series with the same device and sensor
	c.Add(at(10), "a", "s", 100)
	want["a"] = append(want["a"], 10)
	all := c.Sorted()
	if len(all) != 5 || c.Rows != 21 {
		t.Fatalf("%d series, %d rows", len(all), c.Rows)
	}
	for _, s := range all {
		if s.Extra != nil {
			if len(s.Times) != 1 || s.Values[0] != 99 {
				t.Fatalf("extra series: %+v", s)
			}
			continue
		}
		if len(s.Times) != len(want[s.Device]) {
			t.Fatalf("series %s: %d points, want %d", s.Device, len(s.Times), len(want[s.Device]))
		}
		for j, b := range want[s.Device] {
			if b == 10 {
				if s.Values[j] != 100 {
					t.Fatalf("series %s: last value %v", s.Device, s.Values[j])
				}
				continue
			}
			if !s.Times[j].Equal(at(b)) || s.Values[j] != float64(b*10+int(s.Device[0]-'a')) {
				t.Fatalf("series %s point %d: %v %v", s.Device, j, s.Times[j], s.Values[j])
			}
		}
	}
}

func TestCollectorExpectPoints(t *testing.T) {
	c := NewCollector()
	c.ExpectPoints(60)
	c.Add(at(0), "n1", "", 1)
	c.AddExtra(at(0), "n1", "", data.Labels{"site": "x"}, 2)
	for _, s := range c.Sorted() {
		if cap(s.Times) != 60 || cap(s.Values) != 60 || len(s.Times) != 1 {
			t.Fatalf("series %s %v: len %d, cap %d/%d", s.Device, s.Extra, len(s.Times), cap(s.Times), cap(s.Values))
		}
	}
	c = NewCollector()
	c.ExpectPoints(1 << 30) // bounded per series, and in all
	n := maxReservedPoints/maxExpectPoints + 2
	for i := range n {
		c.Add(at(0), fmt.Sprintf("n%04d", i), "", 1)
	}
	reserved := 0
	for i, s := range c.Sorted() {
		switch {
		case i < n-2 && cap(s.Times) != maxExpectPoints:
			t.Fatalf("series %d: cap %d, want %d", i, cap(s.Times), maxExpectPoints)
		case i >= n-2 && cap(s.Times) > 1:
			t.Fatalf("series %d beyond the budget: cap %d", i, cap(s.Times))
		}
		reserved += cap(s.Times)
	}
	if reserved > maxReservedPoints+2 {
		t.Fatalf("reserved %d points in all", reserved)
	}
}
