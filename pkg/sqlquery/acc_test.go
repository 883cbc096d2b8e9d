package sqlquery

import (
	"math"
	"testing"
	"time"
)

// TestAccMergeEqualsAdd: merging partial accumulators (finer buckets) gives what adding every reading to one
// accumulator gives, for every aggregation; Last is the value with the latest time, not the last added.
func TestAccMergeEqualsAdd(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	values := []float64{3, -1, 7.5, 2, 2, 9, -4, 0.5}
	times := []int{5, 1, 7, 3, 0, 6, 2, 4} // out of order: Last must follow time
	var whole Acc
	parts := make([]Acc, 3)
	for i, v := range values {
		tm := t0.Add(time.Duration(times[i]) * time.Second)
		whole.Add(tm, v)
		parts[i%3].Add(tm, v)
	}
	var merged Acc
	for _, p := range parts {
		merged.Merge(p)
	}
	want := map[Aggregation]float64{Avg: 19.0 / 8, Min: -4, Max: 9, Last: 7.5, Count: 8, Sum: 19}
	for agg, w := range want {
		if got := whole.Value(agg); math.Abs(got-w) > 1e-12 {
			t.Errorf("Add: %s = %v, want %v", agg, got, w)
		}
		if got := merged.Value(agg); math.Abs(got-w) > 1e-12 {
			t.Errorf("Merge: %s = %v, want %v", agg, got, w)
		}
	}
	if (&Acc{}).Empty() != true || whole.Empty() {
		t.Error("Empty")
	}
}

// TestAccMergeSingleColumn: regrouping reads one column per aggregation; an accumulator filled only with Min
// (or Max) rows merges to the right value although Count stays zero.
func TestAccMergeSingleColumn(t *testing.T) {
	var lo, hi Acc
	for _, v := range []float64{5, 3, 8} {
		lo.Merge(Acc{Min: v})
		hi.Merge(Acc{Max: -v})
	}
	if lo.Value(Min) != 3 || hi.Value(Max) != -3 {
		t.Fatalf("min %v, max %v; want 3, -3", lo.Value(Min), hi.Value(Max))
	}
}
