package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fieldline-iot/fieldline/internal/telemetry"
	"github.com/fieldline-iot/fieldline/internal/testsvc"
)

// TestBinaryCopyMatchesPgx: the same readings copied by binaryReadings and by pgx's own CopyFrom into two
// tables shaped like readings come back identical from PostgreSQL, for edge values: times before 2000 and before
// 1970, sub-microsecond digits (truncated as pgx truncates them), far future; ±0, tiny and huge floats; empty,
// long and non-ASCII labels; units NULL and set. In a chosen order too, and read in pieces of every size.
func TestBinaryCopyMatchesPgx(t *testing.T) {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, testsvc.NewPostgresDB(t))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	const cols = "time timestamptz NOT NULL, device text NOT NULL, metric text NOT NULL, sensor text NOT NULL, value double precision NOT NULL, unit text"
	if _, err := pool.Exec(ctx, "CREATE TABLE ours ("+cols+"); CREATE TABLE theirs ("+cols+")"); err != nil {
		t.Fatal(err)
	}
	base := time.Date(2026, 12, 4, 10, 0, 0, 123456789, time.UTC)
	rows := []telemetry.Reading{
		{Time: base, Device: "pico", Metric: "temperature", Sensor: "dht22", Value: 22.4},
		{Time: time.Date(1999, 12, 31, 23, 59, 59, 999999999, time.UTC), Device: "d", Metric: "m", Value: math.Copysign(0, -1), Unit: "°C"},
		{Time: time.Date(1969, 7, 20, 20, 17, 40, 500, time.FixedZone("x", -5*3600)), Device: "Gerät-ü", Metric: "湿度", Value: math.SmallestNonzeroFloat64},
		{Time: time.Date(2262, 4, 11, 0, 0, 0, 0, time.UTC), Device: strings.Repeat("d", 200), Metric: "m", Sensor: "s", Value: math.MaxFloat64, Unit: "%"},
		{Time: base.Add(-time.Nanosecond), Device: "n", Metric: "m", Value: -1e-300},
	}
	for i := range 3000 { // more than one 64 KiB piece
		rows = append(rows, telemetry.Reading{Time: base.Add(time.Duration(i) * time.Millisecond), Device: fmt.Sprint("dev", i%7), Metric: "m", Value: float64(i) / 3})
	}
	order := make([]int32, len(rows))
	for i := range order {
		order[i] = int32(len(rows) - 1 - i)
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	tag, err := conn.Conn().PgConn().CopyFrom(ctx, newBinaryReadings(rows, order),
		"COPY ours (time, device, metric, sensor, value, unit) FROM STDIN (FORMAT binary)")
	if err != nil || tag.RowsAffected() != int64(len(rows)) {
		t.Fatalf("binary COPY: %v, %d rows", err, tag.RowsAffected())
	}
	n, err := conn.Conn().CopyFrom(ctx, pgx.Identifier{"theirs"}, []string{"time", "device", "metric", "sensor", "value", "unit"},
		pgx.CopyFromSlice(len(rows), func(i int) ([]any, error) {
			r := rows[i]
			var unit any
			if r.Unit != "" {
				unit = r.Unit
			}
			return []any{r.Time, r.Device, r.Metric, r.Sensor, r.Value, unit}, nil
		}))
	if err != nil || n != int64(len(rows)) {
		t.Fatalf("pgx COPY: %v, %d rows", err, n)
	}
	var diff int
	q := "SELECT count(*) FROM ((TABLE ours EXCEPT ALL TABLE theirs) UNION ALL (TABLE theirs EXCEPT ALL TABLE ours)) d"
	if err := pool.QueryRow(ctx, q).Scan(&diff); err != nil || diff != 0 {
		t.Fatalf("%d rows differ between the two encodings (err %v)", diff, err)
	}
	var signs int // -0.0 and 0.0 compare equal in SQL: check the sign bit came through
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM ours WHERE value::text = '-0'").Scan(&signs); err != nil || signs != 1 {
		t.Errorf("-0.0 stored %d times as -0 (err %v)", signs, err)
	}

	// Read in pieces of every size from 1 byte: the stream is the same.
	var whole strings.Builder
	if _, err := io.Copy(&whole, newBinaryReadings(rows[:5], nil)); err != nil {
		t.Fatal(err)
	}
	for size := 1; size <= 64; size++ {
		r, got := newBinaryReadings(rows[:5], nil), []byte{}
		buf := make([]byte, size)
		for {
			k, err := r.Read(buf)
			got = append(got, buf[:k]...)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil || k == 0 {
				t.Fatalf("piece size %d: %d bytes, %v", size, k, err)
			}
		}
		if !slices.Equal(got, []byte(whole.String())) {
			t.Fatalf("piece size %d: a different stream", size)
		}
	}
}
