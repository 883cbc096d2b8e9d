// Package pacer coalesces items pushed by fast producers into batches sent by one consumer goroutine at a
// bounded rate: the first item after a quiet spell goes out at once, and under load at most one batch per
// interval leaves, carrying every item pushed since the previous batch.
//
// Push never blocks and never waits for the consumer: the buffer is bounded, and when it is full the oldest
// items are dropped and counted (the count is handed to the next batch). The buffer is swapped under the
// same lock Push takes, so no item is lost between a swap and a concurrent Push.
package pacer

import (
	"context"
	"sync"
	"time"
)

// Pacer buffers items of type T for one consumer.
type Pacer[T any] struct {
	interval time.Duration
	max      int

	mu      sync.Mutex
	buf     []T // pending items, oldest first, starting at head
	head    int
	spare   []T // the slice the consumer handed back, reused by the next swap
	dropped int
	poked   bool          // Poke: the next batch goes out even if empty
	wake    chan struct{} // capacity 1: "something was pushed"
}

// New returns a pacer sending at most one batch per interval (interval <= 0: no pacing) and holding at most
// max items (max <= 0: 100 000).
func New[T any](interval time.Duration, max int) *Pacer[T] {
	if max <= 0 {
		max = 100_000
	}
	return &Pacer[T]{interval: interval, max: max, wake: make(chan struct{}, 1)}
}

// Push appends items; when the buffer would exceed its bound the oldest items are dropped and counted.
// It never blocks. Safe for concurrent use.
func (p *Pacer[T]) Push(items ...T) {
	if len(items) == 0 {
		return
	}
	p.mu.Lock()
	if len(items) >= p.max {
		p.dropped += len(p.buf) - p.head + len(items) - p.max
		items = items[len(items)-p.max:]
		p.buf, p.head = p.buf[:0], 0
	} else if over := len(p.buf) - p.head + len(items) - p.max; over > 0 {
		p.dropped += over
		p.head += over
	}
	if p.head > 0 && p.head >= len(p.buf)/2 {
		// Compact: keeps the backing array bounded by about 2*max.
		n := copy(p.buf, p.buf[p.head:])
		clear(p.buf[n:])
		p.buf, p.head = p.buf[:n], 0
	}
	if p.buf == nil && p.spare != nil {
		p.buf, p.spare = p.spare[:0], nil
	}
	p.buf = append(p.buf, items...)
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Poke makes the consumer run send once more even when nothing is pushed (the caller has news for it that is
// not an item), paced like a push. Safe for concurrent use.
func (p *Pacer[T]) Poke() {
	p.mu.Lock()
	p.poked = true
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Len is the number of items waiting.
func (p *Pacer[T]) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.buf) - p.head
}

// take swaps the buffer out.
func (p *Pacer[T]) take() ([]T, int, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	items := p.buf[p.head:]
	dropped, poked := p.dropped, p.poked
	p.buf, p.head, p.dropped, p.poked = nil, 0, 0, false
	return items, dropped, poked
}

// recycle hands a sent batch's slice back for reuse (the consumer must not keep it).
func (p *Pacer[T]) recycle(items []T) {
	clear(items)
	p.mu.Lock()
	if p.spare == nil && cap(items) <= 2*p.max {
		p.spare = items[:0]
	}
	p.mu.Unlock()
}

// Run is the consumer loop: it calls send with every batch (never empty unless dropped > 0 or Poke was called) until ctx ends or
// send returns an error, which Run returns. send runs on Run's goroutine and must not keep the slice.
func (p *Pacer[T]) Run(ctx context.Context, send func(batch []T, dropped int) error) error {
	var last time.Time
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-p.wake:
		}
		if p.interval > 0 && !last.IsZero() {
			if wait := p.interval - time.Since(last); wait > 0 {
				// Under load: collect everything pushed until the interval has passed, then send it in one go.
				if timer == nil {
					timer = time.NewTimer(wait)
				} else {
					timer.Reset(wait)
				}
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-timer.C:
				}
			}
		}
		// Everything pushed so far goes into this batch: drop the wake-up those pushes left, so that the next
		// batch waits for a push that comes after it. A stale wake-up would make the loop start its next
		// interval at once, on its own clock, instead of at the next push — out of step with a producer
		// that delivers in rounds (readpace), adding up to an interval of latency.
		select {
		case <-p.wake:
		default:
		}
		items, dropped, poked := p.take()
		if len(items) == 0 && dropped == 0 && !poked {
			continue
		}
		last = time.Now()
		if err := send(items, dropped); err != nil {
			return err
		}
		p.recycle(items)
	}
}
