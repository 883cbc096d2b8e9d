package sink

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/fieldline-iot/fieldline/ingester/metrics"
	"github.com/fieldline-iot/fieldline/ingester/spool"
	"github.com/fieldline-iot/fieldline/internal/telemetry"
)

// fakeSink fails while down and records what it committed.
type fakeSink struct {
	down atomic.Bool
	mu   sync.Mutex
	rows []telemetry.Reading
}

func (f *fakeSink) Name() string { return "fake" }
func (f *fakeSink) Close()       {}
func (f *fakeSink) Write(_ context.Context, b []telemetry.Reading) error {
	if f.down.Load() {
		return errors.New("fake sink down")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rows = append(f.rows, b...)
	return nil
}
func (f *fakeSink) count() int { f.mu.Lock(); defer f.mu.Unlock(); return len(f.rows) }

func readings(n int, device string) []telemetry.Reading {
	out := make([]telemetry.Reading, n)
	for i := range out {
		out[i] = telemetry.Reading{Time: time.Unix(int64(i), 0), Device: device, Metric: "temperature", Value: float64(i)}
	}
	return out
}

// TestAcceptRetriesWhenNothingCanStore: with the sink down and the spool unwritable (here its directory replaced
// by a file; ENOSPC or EIO in the field), Accept neither returns success nor gives up: it retries, counts each
// try, and Ready names the reason. Once the spool is writable again the batch is spooled, Accept returns, Ready
// clears, and replay delivers everything to the sink when it returns.
func TestAcceptRetriesWhenNothingCanStore(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "fake")
	sp, err := spool.Open(dir, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	m := metrics.New()
	sink := &fakeSink{}
	b := NewBuffered(sink, sp, time.Second, m, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	sink.down.Store(true)
	if err := b.Accept(ctx, readings(5, "a")); err != nil { // spooled
		t.Fatal(err)
	}
	// Break the spool: its directory becomes a file.
	if err := os.Rename(dir, dir+".away"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- b.Accept(ctx, readings(7, "b")) }()
	deadline := time.Now().Add(10 * time.Second)
	for b.Ready() == nil || testutil.ToFloat64(m.StoreFailures.WithLabelValues("fake")) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("no retry reported: Ready %v, failures %v", b.Ready(), testutil.ToFloat64(m.StoreFailures.WithLabelValues("fake")))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := b.Ready(); !strings.Contains(err.Error(), "cannot store batches") {
		t.Errorf("Ready: %v", err)
	}
	select {
	case err := <-done:
		t.Fatalf("Accept returned while nothing could store the batch: %v (its messages would be acknowledged, or intake wedged)", err)
	default:
	}
	// Repair.
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(dir+".away", dir); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Accept after repair: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Accept did not recover after the spool was repaired")
	}
	if err := b.Ready(); err != nil {
		t.Errorf("Ready after repair: %v", err)
	}
	sink.down.Store(false)
	go b.Run(ctx)
	for deadline := time.Now().Add(10 * time.Second); sink.count() < 12; {
		if time.Now().After(deadline) {
			t.Fatalf("replay delivered %d of 12 readings", sink.count())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
