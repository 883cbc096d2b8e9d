// Package retry is the one retry delay of Fieldline's loops that wait for a service to come back (the
// ingester's first MQTT connection, schema preparation, spool writes and replays; the live client's
// reconnects; the live read-back). It wraps cenkalti/backoff's ExponentialBackOff with doubling and no jitter,
// the delays those loops always used, and adds the context-aware wait each loop needs.
package retry

import (
	"context"
	"time"

	"github.com/cenkalti/backoff/v5"
)

// Backoff yields delays that start at Min and double up to Max. It is not safe for concurrent use.
type Backoff struct{ b backoff.ExponentialBackOff }

// New returns a Backoff from initial up to max.
func New(initial, maxDelay time.Duration) *Backoff {
	return &Backoff{b: backoff.ExponentialBackOff{InitialInterval: initial, Multiplier: 2, MaxInterval: maxDelay}}
}

// Next returns the delay to wait before the next attempt.
func (b *Backoff) Next() time.Duration { return b.b.NextBackOff() }

// Reset starts over at the initial delay (after a success).
func (b *Backoff) Reset() { b.b.Reset() }

// Wait sleeps d, or less when ctx ends first; it reports whether the full delay passed.
func Wait(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
