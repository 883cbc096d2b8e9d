package store

import (
	"slices"
	"testing"
	"time"

	"github.com/fieldline-iot/fieldline/internal/telemetry"
)

// TestCopyInIndexOrder: COPY gets the batch's rows grouped in the series index's order (metric, device, sensor
// bytewise), oldest first within a series, readings with equal keys in arrival order, and the batch itself is
// left as it was.
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
	before := slices.Clone(batch)
	s := newCopySource(batch)
	var got []float64
	for s.Next() {
		v, err := s.Values()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, v[4].(float64))
	}
	if want := []float64{2, 4, 1, 6, 3, 5}; !slices.Equal(got, want) {
		t.Errorf("COPY order %v, want %v", got, want)
	}
	if !slices.EqualFunc(batch, before, func(a, b telemetry.Reading) bool { return a == b }) {
		t.Error("the batch was reordered")
	}
}
