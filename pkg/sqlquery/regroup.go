package sqlquery

import (
	"errors"
	"fmt"
	"time"

	"github.com/fieldline-iot/fieldline/internal/timebucket"
)

// Regrouping rollup rows into wider buckets happens here, in Go, not in PostgreSQL. PostgreSQL cannot know that
// date_bin is monotonic, so a GROUP BY date_bin(...) over rollup rows is a hash aggregate followed by a sort of
// its output (7 days at 10 minutes over 20 series: 40 320 five-minute rows into 20 160 buckets, 38 ms of the
// statement's 41 ms). Read in the rollup's (metric, bucket) index order instead, the rows of one output bucket
// arrive together, and merging them as they stream in costs a few hundred nanoseconds a row (figures in
// docs/benchmarks.md, `go tool mage bench:query`).

// Rows is what ReadRows needs of a result set (pgx.Rows has these methods).
type Rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
}

// Emit receives one output row: a bucket (or raw reading) of one series.
type Emit func(t time.Time, device, sensor string, v float64)

// ReadRows reads the statement's result and emits one row per (time, device, sensor) with its value, in the
// order documented on Statement. It returns truncated when the statement stopped at its row limit before the
// last output bucket was complete (that bucket is not emitted).
func (st Statement) ReadRows(rows Rows, emit Emit) (truncated bool, err error) {
	if st.regroup == nil {
		var t time.Time
		labels := newLabels()
		device, sensor := labels.column(), labels.column()
		var v float64
		// One destination slice for every row: Scan(&t, …) would allocate its argument slice per row (it escapes
		// through the Rows interface), 64 bytes a row.
		dest := []any{&t, device, sensor, &v}
		for rows.Next() {
			if err := rows.Scan(dest...); err != nil {
				return false, fmt.Errorf("read row: %w", err)
			}
			emit(t, device.s, sensor.s, v)
		}
		if err := rows.Err(); err != nil {
			return false, fmt.Errorf("read rows: %w", err)
		}
		return false, nil
	}
	return st.regroup.read(rows, emit)
}

// labels interns the label values of a result: every row repeats one of a few devices and sensors, and
// scanning each into a new string cost two allocations a row (and as many strings for the collector to keep).
type labels map[string]string

func newLabels() labels { return labels{} }

// column is a scan destination for a text column of label values.
func (l labels) column() *label { return &label{seen: l} }

// label is a text column scanned into an interned string (pgx's BytesScanner: no copy of the value).
type label struct {
	s, prev string // this row's value and the one before it (a sensor column often alternates)
	seen    labels
}

func (l *label) ScanBytes(b []byte) error {
	switch {
	case b == nil:
		return errors.New("label is NULL")
	case string(b) == l.s:
		return nil
	case string(b) == l.prev:
		l.s, l.prev = l.prev, l.s
		return nil
	}
	s, ok := l.seen[string(b)]
	if !ok {
		s = string(b)
		l.seen[s] = s
	}
	l.s, l.prev = s, l.s
	return nil
}

// regroup merges rollup rows (read in bucket order) into buckets of width.
type regroup struct {
	width    time.Duration
	agg      Aggregation
	maxInput int64 // the statement's LIMIT
}

// partial is one series' aggregate within the open output bucket.
type partial struct {
	device, sensor string
	acc            Acc
	open           bool // has rows in the open output bucket
	next           int  // the series (index in parts) of the row that came after this series' last row, or -1
}

// regroupColumns are the rollup columns each aggregation reads, after bucket, device, sensor.
func regroupColumns(a Aggregation) string {
	switch a {
	case Avg:
		return "sum, count"
	case Last:
		return "last, last_time"
	case Count:
		return "count"
	default: // Min, Max, Sum: the column of the same name
		return string(a)
	}
}

func (r *regroup) read(rows Rows, emit Emit) (bool, error) {
	labels := newLabels()
	var (
		bucket         time.Time
		device, sensor = labels.column(), labels.column()
		row            Acc // the columns of one rollup row that the aggregation reads
		dest           []any
		open           time.Time // the output bucket being merged
		have           bool
		input          int64
		series         = map[[2]string]int{} // index in parts
		parts          []partial             // every series seen, in order of appearance
		order          []int                 // the series of the open bucket, in order of appearance there
		last           = -1                  // the series of the previous row
	)
	switch r.agg {
	case Avg:
		dest = []any{&bucket, device, sensor, &row.Sum, &row.Count}
	case Last:
		dest = []any{&bucket, device, sensor, &row.Last, &row.LastTime}
	case Count:
		dest = []any{&bucket, device, sensor, &row.Count}
	case Min:
		dest = []any{&bucket, device, sensor, &row.Min}
	case Max:
		dest = []any{&bucket, device, sensor, &row.Max}
	default: // Sum
		dest = []any{&bucket, device, sensor, &row.Sum}
	}
	flush := func() {
		for _, i := range order {
			p := &parts[i]
			emit(open, p.device, p.sensor, p.acc.Value(r.agg))
			p.acc, p.open = Acc{}, false
		}
		order = order[:0]
	}
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return false, fmt.Errorf("read rollup row: %w", err)
		}
		input++
		b := timebucket.Floor(bucket, r.width)
		if !have || !b.Equal(open) {
			if have {
				if b.Before(open) {
					return false, fmt.Errorf("rollup rows out of bucket order: %s after %s", b, open)
				}
				flush()
			}
			open, have = b, true
		}
		// Rollup rows come bucket by bucket with the series in the same order in each: the series that followed
		// the previous row's series last time is the likely one, checked before the map.
		i := -1
		if last >= 0 {
			if n := parts[last].next; n >= 0 && parts[n].device == device.s && parts[n].sensor == sensor.s {
				i = n
			}
		}
		if i < 0 {
			k := [2]string{device.s, sensor.s}
			var ok bool
			if i, ok = series[k]; !ok {
				i = len(parts)
				series[k] = i
				parts = append(parts, partial{device: device.s, sensor: sensor.s, next: -1})
			}
			if last >= 0 {
				parts[last].next = i
			}
		}
		last = i
		p := &parts[i]
		if !p.open {
			p.open = true
			order = append(order, i)
		}
		p.acc.Merge(row)
	}
	if err := rows.Err(); err != nil {
		return false, fmt.Errorf("read rollup rows: %w", err)
	}
	if input >= r.maxInput {
		// Stopped at the LIMIT: the open bucket may lack rows.
		return true, nil
	}
	if have {
		flush()
	}
	return false, nil
}
