package live

import (
	"hash/maphash"
	"testing"
	"time"

	"github.com/fieldline-iot/fieldline/internal/telemetry"
)

// The dedupe set forgets keys older than the keep window (oldest first), keeps recent ones, still catches a
// duplicate of a recent row, and never grows past 4 × MaxBufferedRows.
func TestPruneDedupeSet(t *testing.T) {
	e := New(Config{UID: "u"})
	e.settings = Settings{SeamDelay: 5 * time.Second, MaxBufferedRows: 100}
	s := &pgStream{e: e, seed: maphash.MakeSeed(), sent: map[rowKey]struct{}{}}
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	row := func(sec int) telemetry.Reading {
		return telemetry.Reading{Time: t0.Add(time.Duration(sec) * time.Second), Device: "d", Metric: "m", Value: float64(sec)}
	}
	for sec := 0; sec < 120; sec++ { // two minutes of one row per second
		r := row(sec)
		s.add(&r)
	}
	s.lastSeen = t0.Add(119 * time.Second)
	s.prune()
	if len(s.sent) != 61 { // rows 59…119 are within a minute of the newest (row 59 exactly at the cut)
		t.Fatalf("kept %d keys, want 61", len(s.sent))
	}
	s.rows = s.rows[:0]
	old, recent := row(10), row(100)
	s.add(&old)
	s.add(&recent)
	if len(s.rows) != 1 || s.rows[0].Value != 10 {
		t.Fatalf("after pruning: rows %v, want the old row again and the recent one dropped as a duplicate", s.rows)
	}
	// A flood: far more keys than the bound, all recent.
	for i := 0; i < 2000; i++ {
		r := telemetry.Reading{Time: s.lastSeen, Device: "flood", Metric: "m", Value: float64(i)}
		s.add(&r)
	}
	s.prune()
	if len(s.sent) != 400 || len(s.sentOrder)-s.sentHead != 400 {
		t.Fatalf("after a flood: %d keys (%d in order), want 4 × MaxBufferedRows = 400", len(s.sent), len(s.sentOrder)-s.sentHead)
	}
	if _, ok := s.sent[keyOf(s.seed, &telemetry.Reading{Time: s.lastSeen, Device: "flood", Metric: "m", Value: 1999})]; !ok {
		t.Fatal("the newest key was pruned instead of the oldest")
	}
}
