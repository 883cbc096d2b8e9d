// Package sink holds fieldline-ingester's storage sinks (PostgreSQL, InfluxDB) and Buffered, which puts an
// on-disk spool in front of a sink so that one sink being down neither loses data nor stops the others.
package sink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fieldline-iot/fieldline/ingester/metrics"
	"github.com/fieldline-iot/fieldline/ingester/spool"
	"github.com/fieldline-iot/fieldline/internal/retry"
	"github.com/fieldline-iot/fieldline/internal/telemetry"
)

// Sink stores batches. Write returns nil only when the whole batch is committed.
type Sink interface {
	Name() string
	Write(ctx context.Context, batch []telemetry.Reading) error
	Close()
}

// PermanentError is a write the sink will never accept (retrying cannot help); the batch is counted as refused.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return "refused for good: " + e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// Buffered delivers batches to a sink in order: directly while the sink is healthy and nothing is spooled,
// otherwise through the spool, which a background loop replays oldest first with backoff.
type Buffered struct {
	sink    Sink
	spool   *spool.Spool
	timeout time.Duration
	log     *slog.Logger

	written, errs, refused, spooled, replayed, storeFailures interface{ Add(float64) }
	writeSeconds                                             interface{ Observe(float64) }
	up, spoolBytes, spoolBatches                             interface{ Set(float64) }
	setAside                                                 func(reason string) interface{ Add(float64) }

	// mu: direct writes share it (batches commit concurrently), replay takes it alone, so nothing is written
	// directly while the spool is being replayed ahead of it.
	mu      sync.RWMutex
	healthy atomic.Bool
	lastErr atomic.Pointer[string]
	// storeErr is set while a batch can be neither committed nor spooled (disk full, I/O error): Accept retries
	// it and readiness reports it.
	storeErr atomic.Pointer[string]
}

// NewBuffered wires a sink to its spool and metrics. Call Run to replay the spool.
func NewBuffered(s Sink, sp *spool.Spool, timeout time.Duration, m *metrics.Metrics, log *slog.Logger) *Buffered {
	n := s.Name()
	b := &Buffered{
		sink: s, spool: sp, timeout: timeout, log: log.With("sink", n),
		written: m.Written.WithLabelValues(n), errs: m.WriteErrors.WithLabelValues(n),
		refused: m.SinkDropped.WithLabelValues(n), spooled: m.Spooled.WithLabelValues(n),
		replayed: m.Replayed.WithLabelValues(n), writeSeconds: m.WriteSeconds.WithLabelValues(n),
		up: m.SinkUp.WithLabelValues(n), spoolBytes: m.SpoolBytes.WithLabelValues(n),
		spoolBatches: m.SpoolBatches.WithLabelValues(n), storeFailures: m.StoreFailures.WithLabelValues(n),
		setAside: func(reason string) interface{ Add(float64) } { return m.SetAside.WithLabelValues(n, reason) },
	}
	b.healthy.Store(sp.Len() == 0)
	b.gauges()
	return b
}

// Name is the sink's name.
func (b *Buffered) Name() string { return b.sink.Name() }

// Accept returns once the batch is committed to the sink or durably spooled. While the spool is full it
// waits (backpressure: the caller stops acknowledging, so the broker keeps the messages). When the batch can be
// neither written nor spooled (disk full, I/O error, a file in the way) it retries both with backoff, logging
// the failure once and its end, counting each try in store_failures_total, and reporting it through
// StoreError (readiness 503) meanwhile: intake waits, nothing is acknowledged that is not stored. It fails only
// when ctx ends.
func (b *Buffered) Accept(ctx context.Context, batch []telemetry.Reading) error {
	if len(batch) == 0 {
		return nil
	}
	delay := retry.New(100*time.Millisecond, 5*time.Second)
	for {
		err := b.accept(ctx, batch)
		if err == nil {
			if b.storeErr.Swap(nil) != nil {
				b.log.Info("batches are stored again")
			}
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w", b.Name(), err)
		}
		b.storeFailures.Add(1)
		msg := err.Error()
		if b.storeErr.Swap(&msg) == nil {
			b.log.Error("cannot store a batch in the sink or the spool: retrying; its messages stay unacknowledged and intake waits",
				"err", err, "spool", b.spool.Dir())
		}
		retry.Wait(ctx, delay.Next())
	}
}

// Ready is nil when the sink can take batches as far as the ingester knows: its own readiness (the PostgreSQL
// schema migrated), batches storable, spool not full.
func (b *Buffered) Ready() error {
	if r, ok := b.sink.(interface{ Ready() error }); ok {
		if err := r.Ready(); err != nil {
			return fmt.Errorf("sink %s: %w", b.Name(), err)
		}
	}
	if e := b.StoreError(); e != "" {
		return fmt.Errorf("sink %s: cannot store batches (retrying, messages held at the broker): %s", b.Name(), e)
	}
	if b.Blocked() {
		return fmt.Errorf("sink %s down and its spool is full (holding messages at the broker): %s", b.Name(), b.LastError())
	}
	return nil
}

// StoreError is why batches can be neither committed nor spooled right now, or "".
func (b *Buffered) StoreError() string {
	if p := b.storeErr.Load(); p != nil {
		return *p
	}
	return ""
}

func (b *Buffered) accept(ctx context.Context, batch []telemetry.Reading) error {
	b.mu.RLock()
	if b.spool.Len() == 0 {
		err := b.write(ctx, batch)
		if err == nil {
			b.mu.RUnlock()
			return nil
		}
		if b.refusedForGood(err, len(batch)) {
			b.mu.RUnlock()
			return nil
		}
		if ctx.Err() != nil {
			b.mu.RUnlock()
			return ctx.Err()
		}
		b.markDown(err)
	}
	b.mu.RUnlock()
	if err := b.spool.Append(ctx, batch); err != nil {
		return fmt.Errorf("%s: %w", b.Name(), err)
	}
	b.spooled.Add(float64(len(batch)))
	b.gauges()
	return nil
}

func (b *Buffered) write(ctx context.Context, batch []telemetry.Reading) error {
	wctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	start := time.Now()
	err := b.sink.Write(wctx, batch)
	if err != nil {
		b.errs.Add(1)
		return err
	}
	b.writeSeconds.Observe(time.Since(start).Seconds())
	b.written.Add(float64(len(batch)))
	return nil
}

func (b *Buffered) refusedForGood(err error, n int) bool {
	var pe *PermanentError
	if !errors.As(err, &pe) {
		return false
	}
	b.refused.Add(float64(n))
	b.log.Error("sink refused a batch for good; counted in readings_refused_total", "rows", n, "err", err)
	return true
}

func (b *Buffered) markDown(err error) {
	msg := err.Error()
	b.lastErr.Store(&msg)
	if b.healthy.Swap(false) {
		b.log.Warn("sink down: spooling batches to disk until it returns", "err", err, "spool", b.spool.Dir())
	}
	b.up.Set(0)
}

// Healthy reports whether the sink took its last write and nothing is spooled.
func (b *Buffered) Healthy() bool { return b.healthy.Load() }

// Blocked reports whether the spool is full (intake is held back).
func (b *Buffered) Blocked() bool { return b.spool.Full() }

// LastError is the most recent write error, or "".
func (b *Buffered) LastError() string {
	if p := b.lastErr.Load(); p != nil {
		return *p
	}
	return ""
}

// SpoolLen is the number of batches waiting.
func (b *Buffered) SpoolLen() int { return b.spool.Len() }

func (b *Buffered) gauges() {
	b.spoolBytes.Set(float64(b.spool.Bytes()))
	b.spoolBatches.Set(float64(b.spool.Len()))
	if b.healthy.Load() {
		b.up.Set(1)
	} else {
		b.up.Set(0)
	}
}

// Run replays the spool until ctx ends.
func (b *Buffered) Run(ctx context.Context) {
	delay := retry.New(100*time.Millisecond, 5*time.Second)
	for ctx.Err() == nil {
		added := b.spool.Added()
		seq, batch, ok, err := b.spool.Peek()
		if err != nil {
			if reason := spool.SetAside(err); reason != "" {
				b.setAside(reason).Add(1)
				b.log.Error("spool file set aside; replay goes on with the next batch", "reason", reason, "seq", seq, "err", err)
				b.gauges()
				continue
			}
			b.log.Error("spool", "err", err)
			retry.Wait(ctx, delay.Next())
			continue
		}
		if !ok {
			if !b.healthy.Swap(true) {
				b.log.Info("sink back: spool drained")
			}
			b.gauges()
			select {
			case <-added:
			case <-ctx.Done():
			}
			continue
		}
		b.mu.Lock()
		err = b.write(ctx, batch)
		if err == nil || b.refusedForGood(err, len(batch)) {
			if err == nil {
				b.replayed.Add(float64(len(batch)))
			}
			if rerr := b.spool.Remove(seq); rerr != nil {
				b.log.Error("spool", "err", rerr)
			}
			b.mu.Unlock()
			b.gauges()
			delay.Reset()
			continue
		}
		b.mu.Unlock()
		if ctx.Err() != nil {
			return
		}
		b.markDown(err)
		backoff := delay.Next()
		b.log.Debug("replay failed; retrying", "err", err, "backoff", backoff, "spooled_batches", b.spool.Len())
		retry.Wait(ctx, backoff)
	}
}
