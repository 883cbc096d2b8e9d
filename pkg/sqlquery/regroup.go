package sqlquery

import (
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
		var device, sensor string
		var v float64
		for rows.Next() {
			if err := rows.Scan(&t, &device, &sensor, &v); err != nil {
				return false, fmt.Errorf("read row: %w", err)
			}
			emit(t, device, sensor, v)
		}
		if err := rows.Err(); err != nil {
			return false, fmt.Errorf("read rows: %w", err)
		}
		return false, nil
	}
	return st.regroup.read(rows, emit)
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
	var (
		bucket         time.Time
		device, sensor string
		row            Acc // the columns of one rollup row that the aggregation reads
		dest           []any
		open           time.Time // the output bucket being merged
		have           bool
		input          int64
		series         = map[[2]string]int{} // index in parts
		parts          []partial
	)
	switch r.agg {
	case Avg:
		dest = []any{&bucket, &device, &sensor, &row.Sum, &row.Count}
	case Last:
		dest = []any{&bucket, &device, &sensor, &row.Last, &row.LastTime}
	case Count:
		dest = []any{&bucket, &device, &sensor, &row.Count}
	case Min:
		dest = []any{&bucket, &device, &sensor, &row.Min}
	case Max:
		dest = []any{&bucket, &device, &sensor, &row.Max}
	default: // Sum
		dest = []any{&bucket, &device, &sensor, &row.Sum}
	}
	flush := func() {
		for i := range parts {
			emit(open, parts[i].device, parts[i].sensor, parts[i].acc.Value(r.agg))
		}
		parts = parts[:0]
		clear(series)
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
		k := [2]string{device, sensor}
		i, ok := series[k]
		if !ok {
			i = len(parts)
			series[k] = i
			parts = append(parts, partial{device: device, sensor: sensor})
		}
		parts[i].acc.Merge(row)
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
