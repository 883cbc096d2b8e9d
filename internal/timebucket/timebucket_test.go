package timebucket

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fieldline-iot/fieldline/internal/testsvc"
)

var widths = []time.Duration{time.Millisecond, time.Second, 7 * time.Second, time.Minute, 5 * time.Minute, 7 * time.Minute,
	time.Hour, 24 * time.Hour, 7 * 24 * time.Hour}

// TestFloorCeilProperties: for random times (before and after the origin) and widths that divide a day and
// widths that do not, Floor is the grid point at or before t, Ceil the one at or after, both on the Origin grid.
func TestFloorCeilProperties(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		d := widths[r.IntN(len(widths))]
		ts := Origin.Add(time.Duration(r.Int64N(int64(60*365*24*time.Hour))) - 30*365*24*time.Hour).Truncate(time.Microsecond)
		f, c := Floor(ts, d), Ceil(ts, d)
		if f.After(ts) || !ts.Before(f.Add(d)) {
			t.Fatalf("Floor(%v, %v) = %v does not hold t", ts, d, f)
		}
		if c.Before(ts) || !c.Add(-d).Before(ts) && !c.Equal(ts) {
			t.Fatalf("Ceil(%v, %v) = %v", ts, d, c)
		}
		if f.Sub(Origin)%d != 0 || c.Sub(Origin)%d != 0 {
			t.Fatalf("Floor/Ceil(%v, %v) = %v/%v are off the origin grid", ts, d, f, c)
		}
		if f.Location() != time.UTC {
			t.Fatalf("Floor returns %v, want UTC", f.Location())
		}
	}
}

// TestKnownBuckets pins a few values (checked with psql: date_bin(width, t, '2000-01-03')).
func TestKnownBuckets(t *testing.T) {
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, c := range []struct {
		t    string
		d    time.Duration
		want string
	}{
		{"2026-12-03T10:07:31Z", 5 * time.Minute, "2026-12-03T10:05:00Z"},
		{"2026-12-03T10:07:31Z", 7 * time.Minute, "2026-12-03T10:01:00Z"},    // 7 min does not divide a day
		{"2026-12-03T10:07:31Z", 7 * 24 * time.Hour, "2026-11-30T00:00:00Z"}, // weeks start on Monday
		{"1999-12-31T23:59:59.5Z", time.Hour, "1999-12-31T23:00:00Z"},        // before the origin
		{"2026-12-03T00:00:00Z", 24 * time.Hour, "2026-12-03T00:00:00Z"},     // on a boundary
	} {
		if got := Floor(at(c.t), c.d); !got.Equal(at(c.want)) {
			t.Errorf("Floor(%s, %v) = %v, want %s", c.t, c.d, got, c.want)
		}
	}
}

// TestRangeAndCount: Range widens to whole buckets covering [from, to); Count is the number of them.
func TestRangeAndCount(t *testing.T) {
	from := time.Date(2026, 12, 3, 10, 7, 31, 0, time.UTC)
	to := from.Add(90 * time.Minute)
	f, tt := Range(from, to, time.Hour)
	if !f.Equal(time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)) || !tt.Equal(time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)) {
		t.Errorf("Range = %v..%v", f, tt)
	}
	if n := Count(from, to, time.Hour); n != 2 {
		t.Errorf("Count = %d, want 2", n)
	}
	if n := Count(to, from, time.Hour); n != 0 {
		t.Errorf("Count of an empty range = %d", n)
	}
}

// TestOffsetAlignsEpochWindows: a window grid counted from the Unix epoch and shifted by Offset(d) is the
// Origin grid (what Flux's window(every: d, offset: Offset(d)) relies on).
func TestOffsetAlignsEpochWindows(t *testing.T) {
	epoch := time.Unix(0, 0).UTC()
	for _, d := range widths {
		shifted := epoch.Add(Offset(d))
		if shifted.Sub(Origin)%d != 0 {
			t.Errorf("Offset(%v) = %v: epoch+offset is off the origin grid", d, Offset(d))
		}
		if Offset(d) < 0 || Offset(d) >= d {
			t.Errorf("Offset(%v) = %v: want 0 <= offset < width", d, Offset(d))
		}
	}
}

func TestValidate(t *testing.T) {
	for _, d := range []time.Duration{0, -time.Second, time.Microsecond, 1500*time.Nanosecond + time.Millisecond} {
		if Validate(d) == nil {
			t.Errorf("Validate(%v) accepted", d)
		}
	}
	for _, d := range widths {
		if err := Validate(d); err != nil {
			t.Errorf("Validate(%v): %v", d, err)
		}
	}
}

// TestFloorMatchesDateBin: Floor agrees with the real PostgreSQL's date_bin(width, t, origin) for random times
// and widths, including widths that do not divide a day (the SQL builders and the live aggregator must bucket
// alike).
func TestFloorMatchesDateBin(t *testing.T) {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, testsvc.PostgresURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	r := rand.New(rand.NewPCG(3, 4))
	for range 300 {
		d := widths[r.IntN(len(widths))]
		ts := Origin.Add(time.Duration(r.Int64N(int64(60*365*24*time.Hour))) - 30*365*24*time.Hour).Truncate(time.Microsecond)
		var got time.Time
		if err := conn.QueryRow(ctx, "SELECT date_bin($1::interval, $2::timestamptz, $3::timestamptz)", d.String(), ts, Origin).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if want := Floor(ts, d); !got.Equal(want) {
			t.Fatalf("date_bin(%v, %v) = %v, Floor = %v", d, ts, got, want)
		}
	}
}
