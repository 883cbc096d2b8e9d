package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/fieldline-iot/fieldline/internal/store"
	"github.com/fieldline-iot/fieldline/internal/telemetry"
)

// BenchmarkWriter measures committed rows per second for one writer: COPY + rollup merge + NOTIFY per batch,
// 20 series, on the real PostgreSQL (go test -bench Writer ./internal/store).
func BenchmarkWriter(b *testing.B) {
	for _, size := range []int{1000, 5000} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			pool := newPool(b)
			ctx := context.Background()
			info, err := store.Migrate(ctx, pool, store.TimescaleOff)
			if err != nil {
				b.Fatal(err)
			}
			w := store.NewWriter(pool, info, true)
			batch := make([]telemetry.Reading, size)
			t0 := time.Now()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				for j := range batch {
					k := i*size + j
					batch[j] = telemetry.Reading{Time: t0.Add(time.Duration(k) * time.Millisecond), Device: fmt.Sprintf("node%d", k%20),
						Metric: "temperature", Sensor: "dht22", Value: float64(k % 1000)}
				}
				if err := w.Write(ctx, batch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(size*b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}
