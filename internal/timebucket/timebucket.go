// Package timebucket aligns times and ranges to the bucket grid every Fieldline backend shares: buckets of a
// fixed width counted from 2000-01-03T00:00:00Z, which is TimescaleDB's time_bucket origin and the origin the
// plain-PostgreSQL queries pass to date_bin. Flux windows (epoch origin) are shifted onto the same grid with an
// offset (see Offset), so SQL and Flux put a reading in the same bucket.
package timebucket

import (
	"fmt"
	"time"
)

// Origin is the bucket origin: a Monday, so weekly buckets start on Mondays.
var Origin = time.Date(2000, 1, 3, 0, 0, 0, 0, time.UTC)

// OriginSQL is Origin as a PostgreSQL timestamptz literal.
const OriginSQL = "2000-01-03 00:00:00+00"

// Floor returns the start of the bucket of width d holding t.
func Floor(t time.Time, d time.Duration) time.Time {
	if d <= 0 {
		return t
	}
	off := t.Sub(Origin) % d
	if off < 0 {
		off += d
	}
	return t.Add(-off).UTC()
}

// Ceil returns the first bucket boundary at or after t.
func Ceil(t time.Time, d time.Duration) time.Time {
	f := Floor(t, d)
	if f.Equal(t) {
		return f
	}
	return f.Add(d)
}

// Range widens [from, to) to whole buckets: every bucket that intersects the range is covered completely, so
// an aggregate never mixes a partial first or last bucket, and the rollups and the raw table give the
// same numbers.
func Range(from, to time.Time, d time.Duration) (time.Time, time.Time) {
	return Floor(from, d), Ceil(to, d)
}

// Offset is the shift that moves epoch-aligned windows of width d (Flux's window()) onto the Origin grid.
func Offset(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return Origin.Sub(time.Unix(0, 0)) % d
}

// Count returns how many buckets of width d lie in [from, to) once widened by Range.
func Count(from, to time.Time, d time.Duration) int64 {
	if d <= 0 || !to.After(from) {
		return 0
	}
	f, t := Range(from, to, d)
	return int64(t.Sub(f) / d)
}

// Validate rejects widths the grid cannot express.
func Validate(d time.Duration) error {
	switch {
	case d <= 0:
		return fmt.Errorf("bucket width %v: must be positive", d)
	case d < time.Millisecond:
		return fmt.Errorf("bucket width %v: must be at least 1ms", d)
	case d%time.Microsecond != 0:
		return fmt.Errorf("bucket width %v: must be a whole number of microseconds (PostgreSQL's resolution)", d)
	}
	return nil
}
