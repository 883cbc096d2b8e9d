package sqlquery

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/fieldline-iot/fieldline/internal/store"
	"github.com/fieldline-iot/fieldline/internal/timebucket"
)

// rollupRow is one row of a rollup table.
type rollupRow struct {
	bucket         time.Time
	device, sensor string
	count          int64
	sum, min, max  float64
	last           float64
	lastTime       time.Time
}

// fakeRows serves rollup rows with the columns a regroup statement selects, checked against its SQL.
type fakeRows struct {
	cols []string // after bucket, device, sensor
	rows []rollupRow
	i    int
	err  error
}

func newFakeRows(t *testing.T, st Statement, rows []rollupRow) *fakeRows {
	t.Helper()
	sel := strings.TrimPrefix(st.SQL[:strings.Index(st.SQL, " FROM ")], "SELECT bucket, device, sensor, ")
	return &fakeRows{cols: strings.Split(sel, ", "), rows: rows, i: -1}
}

func (f *fakeRows) Next() bool { f.i++; return f.i < len(f.rows) }
func (f *fakeRows) Err() error { return f.err }
func (f *fakeRows) Scan(dest ...any) error {
	if len(dest) != 3+len(f.cols) {
		return fmt.Errorf("scan: %d destinations for %d columns", len(dest), 3+len(f.cols))
	}
	r := f.rows[f.i]
	*dest[0].(*time.Time) = r.bucket
	for i, v := range []string{r.device, r.sensor} {
		switch d := dest[1+i].(type) {
		case *string:
			*d = v
		case interface{ ScanBytes([]byte) error }: // what pgx does for a BytesScanner
			if err := d.ScanBytes([]byte(v)); err != nil {
				return err
			}
		default:
			return fmt.Errorf("scan: label into %T", d)
		}
	}
	for i, c := range f.cols {
		var ok bool
		switch c {
		case "count":
			var p *int64
			if p, ok = dest[3+i].(*int64); ok {
				*p = r.count
			}
		case "last_time":
			var p *time.Time
			if p, ok = dest[3+i].(*time.Time); ok {
				*p = r.lastTime
			}
		default:
			v := map[string]float64{"sum": r.sum, "min": r.min, "max": r.max, "last": r.last}[c]
			var p *float64
			if p, ok = dest[3+i].(*float64); ok {
				*p = v
			}
		}
		if !ok {
			return fmt.Errorf("scan: column %s into %T", c, dest[3+i])
		}
	}
	return nil
}

type out struct {
	t              time.Time
	device, sensor string
	v              float64
}

// rollupRows aggregates readings (one per second-ish, random) into rows of width, in (bucket) order with the
// series of each bucket shuffled, as an index scan on (metric, bucket) returns them.
func rollupRows(rng *rand.Rand, start time.Time, span, width time.Duration, n int) ([]rollupRow, [][4]any) {
	var raw [][4]any // time, device, sensor, value
	acc := map[string]*rollupRow{}
	for range n {
		at := start.Add(time.Duration(rng.Int64N(int64(span))))
		dev := []string{"pico", "node1", "esp"}[rng.IntN(3)]
		sen := []string{"", "dht22"}[rng.IntN(2)]
		v := math.Round(rng.NormFloat64()*1e4) / 100
		raw = append(raw, [4]any{at, dev, sen, v})
		b := timebucket.Floor(at, width)
		k := b.String() + "|" + dev + "|" + sen
		r := acc[k]
		if r == nil {
			r = &rollupRow{bucket: b, device: dev, sensor: sen, min: v, max: v, last: v, lastTime: at}
			acc[k] = r
		}
		r.count++
		r.sum += v
		r.min, r.max = min(r.min, v), max(r.max, v)
		if !at.Before(r.lastTime) {
			r.last, r.lastTime = v, at
		}
	}
	rows := make([]rollupRow, 0, len(acc))
	for _, r := range acc {
		rows = append(rows, *r)
	}
	rng.Shuffle(len(rows), func(i, j int) { rows[i], rows[j] = rows[j], rows[i] })
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].bucket.Before(rows[j].bucket) })
	return rows, raw
}

// fromRaw is the aggregate of the raw readings per (bucket of interval, device, sensor), sorted.
func fromRaw(raw [][4]any, interval time.Duration, agg Aggregation) []out {
	type acc struct {
		n              int64
		sum, min, max  float64
		last           float64
		lastT          time.Time
		t              time.Time
		device, sensor string
	}
	m := map[string]*acc{}
	for _, r := range raw {
		at, dev, sen, v := r[0].(time.Time), r[1].(string), r[2].(string), r[3].(float64)
		b := timebucket.Floor(at, interval)
		k := b.String() + "|" + dev + "|" + sen
		a := m[k]
		if a == nil {
			a = &acc{min: v, max: v, last: v, lastT: at, t: b, device: dev, sensor: sen}
			m[k] = a
		}
		a.n++
		a.sum += v
		a.min, a.max = min(a.min, v), max(a.max, v)
		if !at.Before(a.lastT) {
			a.last, a.lastT = v, at
		}
	}
	var o []out
	for _, a := range m {
		v := map[Aggregation]float64{Avg: a.sum / float64(a.n), Sum: a.sum, Min: a.min, Max: a.max, Count: float64(a.n), Last: a.last}[agg]
		o = append(o, out{a.t, a.device, a.sensor, v})
	}
	sortOut(o)
	return o
}

func sortOut(o []out) {
	sort.Slice(o, func(i, j int) bool {
		if !o[i].t.Equal(o[j].t) {
			return o[i].t.Before(o[j].t)
		}
		if o[i].device != o[j].device {
			return o[i].device < o[j].device
		}
		return o[i].sensor < o[j].sensor
	})
}

// Regrouping rollup rows in Go gives what aggregating the raw readings gives, for every aggregation and for
// intervals that are several rollup widths (including ones that do not divide a day).
func TestRegroupEqualsRawAggregate(t *testing.T) {
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	for _, interval := range []time.Duration{10 * time.Minute, 7 * time.Minute, 2 * time.Hour, 24 * time.Hour, 7 * time.Hour} {
		level := store.RollupFor(interval)
		for _, agg := range []Aggregation{Avg, Sum, Min, Max, Count, Last} {
			rng := rand.New(rand.NewPCG(uint64(interval), 7))
			rows, raw := rollupRows(rng, start, 3*24*time.Hour, level.Width, 5000)
			st, err := Build(Request{Metric: "temperature", Aggregation: agg, Interval: interval,
				From: start, To: start.Add(3 * 24 * time.Hour), Limit: 1_000_000}, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if st.regroup == nil || !strings.Contains(st.SQL, "FROM "+level.Table+" ") || !strings.Contains(st.SQL, "ORDER BY bucket") {
				t.Fatalf("%v at %v: not a regroup of %s in bucket order: %s", agg, interval, level.Table, st.SQL)
			}
			var got []out
			truncated, err := st.ReadRows(newFakeRows(t, st, rows), func(tm time.Time, d, s string, v float64) {
				got = append(got, out{tm, d, s, v})
			})
			if err != nil || truncated {
				t.Fatalf("%v at %v: truncated %v, %v", agg, interval, truncated, err)
			}
			// Buckets come in time order; within one bucket, series in any order.
			if !sort.SliceIsSorted(got, func(i, j int) bool { return got[i].t.Before(got[j].t) }) {
				t.Fatalf("%v at %v: buckets out of time order", agg, interval)
			}
			sortOut(got)
			want := fromRaw(raw, interval, agg)
			if len(got) != len(want) {
				t.Fatalf("%v at %v: %d rows, want %d", agg, interval, len(got), len(want))
			}
			for i := range got {
				g, w := got[i], want[i]
				if !g.t.Equal(w.t) || g.device != w.device || g.sensor != w.sensor || math.Abs(g.v-w.v) > 1e-9*math.Max(1, math.Abs(w.v)) {
					t.Fatalf("%v at %v: row %d = %+v, want %+v", agg, interval, i, g, w)
				}
			}
		}
	}
}

// The LIMIT counts rollup rows: a result stopped there reports truncation and never emits the bucket it cut.
func TestRegroupTruncatedAtLimit(t *testing.T) {
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	rows, _ := rollupRows(rand.New(rand.NewPCG(1, 2)), start, 24*time.Hour, 5*time.Minute, 3000)
	st, err := Build(Request{Metric: "m", Aggregation: Count, Interval: 10 * time.Minute, From: start,
		To: start.Add(24 * time.Hour), Limit: 99}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if lim := st.Args[len(st.Args)-1]; !reflect.DeepEqual(lim, int64(200)) {
		t.Fatalf("LIMIT %v, want (99+1)*2 rollup rows", lim)
	}
	served := rows[:200] // what PostgreSQL returns under that LIMIT
	var got []out
	truncated, err := st.ReadRows(newFakeRows(t, st, served), func(tm time.Time, d, s string, v float64) {
		got = append(got, out{tm, d, s, v})
	})
	if err != nil || !truncated {
		t.Fatalf("truncated %v, err %v; want truncated", truncated, err)
	}
	cut := timebucket.Floor(served[len(served)-1].bucket, 10*time.Minute)
	for _, o := range got {
		if !o.t.Before(cut) {
			t.Fatalf("emitted %+v from the bucket the LIMIT cut (%s)", o, cut)
		}
	}
	// Fewer rows than the LIMIT: complete, every bucket emitted.
	got = got[:0]
	truncated, err = st.ReadRows(newFakeRows(t, st, served[:150]), func(tm time.Time, d, s string, v float64) {
		got = append(got, out{tm, d, s, v})
	})
	if err != nil || truncated || len(got) == 0 || !got[len(got)-1].t.Equal(timebucket.Floor(served[149].bucket, 10*time.Minute)) {
		t.Fatalf("150 rows: truncated %v, err %v, last %+v", truncated, err, got[len(got)-1])
	}
}

// Rows out of bucket order (a plan that does not follow the index) are an error, not wrong numbers; a result
// set's error is returned.
func TestRegroupErrors(t *testing.T) {
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	st, err := Build(Request{Metric: "m", Aggregation: Avg, Interval: 10 * time.Minute, From: start,
		To: start.Add(time.Hour), Limit: 10}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	rows := []rollupRow{
		{bucket: start.Add(20 * time.Minute), device: "a", count: 1, sum: 1},
		{bucket: start, device: "a", count: 1, sum: 1},
	}
	if _, err := st.ReadRows(newFakeRows(t, st, rows), func(time.Time, string, string, float64) {}); err == nil || !strings.Contains(err.Error(), "out of bucket order") {
		t.Fatalf("out of order: %v", err)
	}
	f := newFakeRows(t, st, nil)
	f.err = errors.New("connection reset")
	if _, err := st.ReadRows(f, func(time.Time, string, string, float64) {}); err == nil || !strings.Contains(err.Error(), "connection reset") {
		t.Fatalf("rows error: %v", err)
	}
}

// rawRows serves rows of a plain statement (time, device, sensor, value); a nil label is SQL NULL.
type rawRows struct {
	rows [][4]any
	i    int
}

func (f *rawRows) Next() bool { f.i++; return f.i < len(f.rows) }
func (f *rawRows) Err() error { return nil }
func (f *rawRows) Scan(dest ...any) error {
	r := f.rows[f.i]
	*dest[0].(*time.Time), *dest[3].(*float64) = r[0].(time.Time), r[3].(float64)
	for i := 1; i <= 2; i++ {
		var b []byte
		if s, ok := r[i].(string); ok {
			b = []byte(s) // a fresh buffer per row, as the driver's
		}
		if err := dest[i].(interface{ ScanBytes([]byte) error }).ScanBytes(b); err != nil {
			return err
		}
	}
	return nil
}

// ReadRows hands out one string per distinct label value (interned, not a new string per row) and refuses
// NULL labels.
func TestReadRowsLabels(t *testing.T) {
	st, err := Build(Request{Metric: "m", From: time.Unix(0, 0), To: time.Unix(60, 0), Limit: 10}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Unix(1, 0)
	rows := &rawRows{i: -1, rows: [][4]any{{t0, "pico", "a", 1.0}, {t0, "pico", "b", 2.0}, {t0, "node", "a", 3.0}, {t0, "pico", "", 4.0}, {t0, "pico", "a", 5.0}}}
	var got []out
	if _, err := st.ReadRows(rows, func(tm time.Time, d, s string, v float64) { got = append(got, out{tm, d, s, v}) }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 5 || got[0].device != "pico" || got[1].sensor != "b" || got[2].device != "node" || got[3].sensor != "" || got[4].sensor != "a" || got[4].v != 5 {
		t.Fatalf("rows: %+v", got)
	}
	if unsafe.StringData(got[0].device) != unsafe.StringData(got[4].device) || unsafe.StringData(got[0].sensor) != unsafe.StringData(got[4].sensor) {
		t.Fatal("equal label values should share one string")
	}
	rows = &rawRows{i: -1, rows: [][4]any{{t0, "pico", nil, 1.0}}}
	if _, err := st.ReadRows(rows, func(time.Time, string, string, float64) {}); err == nil || !strings.Contains(err.Error(), "NULL") {
		t.Fatalf("a NULL label: %v", err)
	}
}

// BenchmarkReadRows: what reading one aggregated answer costs in Go (1 440 buckets × 20 series, the fake driver's
// own copies excluded as far as it can be), per row.
func BenchmarkReadRows(b *testing.B) {
	st, err := Build(Request{Metric: "m", From: time.Unix(0, 0), To: time.Unix(86_400, 0), Limit: 1 << 20}, Options{})
	if err != nil {
		b.Fatal(err)
	}
	t0 := time.Unix(0, 0)
	var data [][4]any
	for i := range 1440 {
		for s := range 20 {
			data = append(data, [4]any{t0.Add(time.Duration(i) * time.Minute), fmt.Sprintf("dev%02d", s/2), []string{"a", "b"}[s%2], float64(i)})
		}
	}
	rows := &bytesRows{rows: data}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		rows.i = -1
		n := 0
		if _, err := st.ReadRows(rows, func(time.Time, string, string, float64) { n++ }); err != nil || n != len(data) {
			b.Fatal(err, n)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(data)), "ns/row")
}

// bytesRows is rawRows with the label bytes made once (a driver hands out its buffer, not a new one per row).
type bytesRows struct {
	rows [][4]any
	i    int
	buf  [2][]byte
}

func (f *bytesRows) Next() bool { f.i++; return f.i < len(f.rows) }
func (f *bytesRows) Err() error { return nil }
func (f *bytesRows) Scan(dest ...any) error {
	r := f.rows[f.i]
	*dest[0].(*time.Time), *dest[3].(*float64) = r[0].(time.Time), r[3].(float64)
	for i := 1; i <= 2; i++ {
		f.buf[i-1] = append(f.buf[i-1][:0], r[i].(string)...)
		if err := dest[i].(interface{ ScanBytes([]byte) error }).ScanBytes(f.buf[i-1]); err != nil {
			return err
		}
	}
	return nil
}
