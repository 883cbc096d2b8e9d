package store

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fieldline-iot/fieldline/internal/telemetry"
)

// TestCopyInIndexOrder: a batch of many series reaches COPY grouped in the series index's order (metric,
// device, sensor bytewise), oldest first within a series, readings with equal keys in arrival order, and the
// batch itself is left as it was; a batch of few series as it came.
func TestCopyInIndexOrder(t *testing.T) {
	t0 := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	batch := []telemetry.Reading{
		{Time: t0, Device: "gw1", Metric: "temp", Value: 1},
		{Time: t0, Device: "gw1", Metric: "hum", Value: 2},
		{Time: t0.Add(time.Second), Device: "gw1", Metric: "temp", Value: 3},
		{Time: t0, Device: "Gw0", Metric: "temp", Value: 4}, // 'G' < 'g' bytewise (COLLATE "C")
		{Time: t0, Device: "gw1", Metric: "temp", Sensor: "b", Value: 5},
		{Time: t0, Device: "gw1", Metric: "temp", Value: 6}, // ties value 1: after it
	}
	// Few series: as the batch came.
	if got := copied(t, batch); !slices.Equal(got, []float64{1, 2, 3, 4, 5, 6}) {
		t.Errorf("COPY order of a batch of %d series %v, want the batch's", 4, got)
	}
	// Many series: grouped in index order.
	for i := range fewSeries {
		batch = append(batch, telemetry.Reading{Time: t0, Device: "gw9", Metric: fmt.Sprintf("z%02d", i), Value: float64(100 + i)})
	}
	before := slices.Clone(batch)
	want := []float64{2, 4, 1, 6, 3, 5}
	for i := range fewSeries {
		want = append(want, float64(100+i))
	}
	if got := copied(t, batch); !slices.Equal(got, want) {
		t.Errorf("COPY order %v, want %v", got, want)
	}
	if !slices.EqualFunc(batch, before, func(a, b telemetry.Reading) bool { return a == b }) {
		t.Error("the batch was reordered")
	}
}

// copied returns the values in the order COPY gets them.
func copied(t *testing.T, batch []telemetry.Reading) []float64 {
	t.Helper()
	order := copyOrder(batch)
	var got []float64
	for i := range batch {
		if order != nil {
			got = append(got, batch[order[i]].Value)
		} else {
			got = append(got, batch[i].Value)
		}
	}
	return got
}

// TestIndexOrderMatchesAStableSort: on random batches (few or many series, times in and out of order, ties),
// indexOrder is exactly a stable sort by (metric, device, sensor, time).
func TestIndexOrderMatchesAStableSort(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	t0 := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	for trial := range 200 {
		n, labels := rnd.IntN(300), 1+rnd.IntN(12)
		rows := make([]telemetry.Reading, n)
		for i := range rows {
			rows[i] = telemetry.Reading{Time: t0.Add(time.Duration(i) * time.Second), Metric: fmt.Sprint("m", rnd.IntN(labels)),
				Device: fmt.Sprint("D", rnd.IntN(labels)), Sensor: []string{"", "a", "B"}[rnd.IntN(3)], Value: float64(i)}
			if trial%2 == 1 { // out of order, with ties
				rows[i].Time = t0.Add(time.Duration(rnd.IntN(20)) * time.Second)
			}
		}
		want := make([]int32, n)
		for i := range want {
			want[i] = int32(i)
		}
		slices.SortStableFunc(want, func(a, b int32) int {
			x, y := &rows[a], &rows[b]
			return cmp.Or(strings.Compare(x.Metric, y.Metric), strings.Compare(x.Device, y.Device),
				strings.Compare(x.Sensor, y.Sensor), x.Time.Compare(y.Time))
		})
		if got := indexOrder(rows); !slices.Equal(got, want) {
			t.Fatalf("trial %d (%d rows, %d labels): order %v, want %v", trial, n, labels, got, want)
		}
	}
}
