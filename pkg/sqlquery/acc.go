package sqlquery

import "time"

// Acc accumulates one bucket of one series: count, sum, min, max and the last value by time, the five a
// rollup row holds (the rollup trigger keeps the same five in SQL). It is the one accumulator of the Go side:
// the regrouping of rollup rows into wider buckets merges with it (Merge), and the live stream's aggregated
// buckets add raw readings to it (Add). The zero value is an empty bucket.
type Acc struct {
	Count         int64
	Sum, Min, Max float64
	Last          float64
	LastTime      time.Time // the time of Last
	parts         int       // readings added plus partials merged
}

// Add adds one reading. Of readings with equal times the one added last is Last.
func (a *Acc) Add(t time.Time, v float64) {
	if a.parts == 0 {
		a.Min, a.Max = v, v
	}
	a.parts++
	a.Count++
	a.Sum += v
	a.Min, a.Max = min(a.Min, v), max(a.Max, v)
	if !t.Before(a.LastTime) {
		a.Last, a.LastTime = v, t
	}
}

// Merge adds a partial aggregate (a finer rollup row). Fields a reader did not fill (regrouping reads only the
// columns its aggregation needs) merge harmlessly: zero counts and sums add nothing, and Value reads only the
// fields of its aggregation.
func (a *Acc) Merge(b Acc) {
	if a.parts == 0 {
		parts := max(b.parts, 1)
		*a = b
		a.parts = parts
		return
	}
	a.parts += max(b.parts, 1)
	a.Count += b.Count
	a.Sum += b.Sum
	a.Min, a.Max = min(a.Min, b.Min), max(a.Max, b.Max)
	if !b.LastTime.Before(a.LastTime) {
		a.Last, a.LastTime = b.Last, b.LastTime
	}
}

// Empty reports whether nothing was added or merged.
func (a *Acc) Empty() bool { return a.parts == 0 }

// Value is the bucket's value for agg (avg: sum/count).
func (a *Acc) Value(agg Aggregation) float64 {
	switch agg {
	case Min:
		return a.Min
	case Max:
		return a.Max
	case Last:
		return a.Last
	case Count:
		return float64(a.Count)
	case Sum:
		return a.Sum
	default:
		return a.Sum / float64(a.Count)
	}
}
