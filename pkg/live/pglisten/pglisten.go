// Package pglisten holds ONE PostgreSQL connection that LISTENs on a channel and fans every notification out
// to any number of subscribers, reconnecting with backoff when the connection drops.
//
// Notifications sent while the connection is down are lost (PostgreSQL queues them only for sessions that
// are listening), so every subscriber is told when the LISTEN is (re)established — Connected — and is
// expected to read back from its source what it may have missed. A subscriber registered while the listener
// is connected gets Connected at once (after registration), so "subscribe, then read back" never misses a
// row: a notification delivered before the registration belongs to a transaction committed before it, hence
// visible to the read-back that follows.
//
// Under load the listener reads in rounds: after a notification it waits until ReadInterval has passed (with
// the socket's receive low-water mark raised: internal/readpace), then collects everything that arrived meanwhile
// with one round trip (a Ping, whose reply comes after every notification sent before it) and hands it to
// each subscriber as one batch. The first notification after a quiet spell is delivered at once. At 1 000
// rows/s this costs a wake-up per interval instead of one per notification.
//
// Handlers run on the listener's goroutine and must not block (push into a buffer and return).
package pglisten

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/fieldline-iot/fieldline/internal/readpace"
	"github.com/fieldline-iot/fieldline/internal/retry"
)

// Handler receives a listener's events. Both methods must return quickly.
type Handler[T any] interface {
	// Connected reports that the LISTEN is active; reconnect is false the first time the handler hears it.
	// Anything notified while the listener was disconnected is lost: read back.
	Connected(reconnect bool)
	// Notify delivers the decoded notifications of one read, in order (the slice is not the handler's to keep).
	Notify([]T)
}

// Config configures a Listener.
type Config[T any] struct {
	Channel string // LISTEN channel (a plain identifier)
	// Connect opens the dedicated connection with onNotification installed as its pgconn.Config.OnNotification
	// (set it on the config before connecting: pgx then leaves notifications to it).
	Connect func(ctx context.Context, onNotification pgconn.NotificationHandler) (*pgx.Conn, error)
	Decode  func(payload string) (T, error) // parses a payload once for all subscribers
	Logger  *slog.Logger                    // nil: slog.Default()
	// Backoff bounds (defaults 100 ms and 5 s): the delay doubles after each failed attempt.
	MinBackoff, MaxBackoff time.Duration
	// ReadInterval spaces reads under load (0: deliver each notification as it is read).
	ReadInterval time.Duration
}

// Listener is the one listening connection. Start it with Run (typically lazily, on the first Subscribe).
type Listener[T any] struct {
	cfg Config[T]

	mu        sync.Mutex
	subs      map[*sub[T]]struct{}
	snapshot  []*sub[T] // copy-on-write list read by the dispatch loop
	connected bool
	conns     int // successful LISTENs so far
	decodeErr int
}

type sub[T any] struct {
	h         Handler[T]
	connected bool // has heard Connected at least once
}

// New returns a listener that is not running yet.
func New[T any](cfg Config[T]) *Listener[T] {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = 100 * time.Millisecond
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 5 * time.Second
	}
	return &Listener[T]{cfg: cfg, subs: map[*sub[T]]struct{}{}}
}

// Subscribe registers h. When the listener is connected h gets Connected(false) before Subscribe returns;
// otherwise it gets it when the connection is established. The returned function unregisters h.
func (l *Listener[T]) Subscribe(h Handler[T]) (unsubscribe func()) {
	s := &sub[T]{h: h}
	l.mu.Lock()
	l.subs[s] = struct{}{}
	l.rebuild()
	if l.connected {
		s.connected = true
		h.Connected(false)
	}
	l.mu.Unlock()
	return func() {
		l.mu.Lock()
		delete(l.subs, s)
		l.rebuild()
		l.mu.Unlock()
	}
}

func (l *Listener[T]) rebuild() {
	snap := make([]*sub[T], 0, len(l.subs))
	for s := range l.subs {
		snap = append(snap, s)
	}
	l.snapshot = snap
}

// Subscribers is the number of registered handlers.
func (l *Listener[T]) Subscribers() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.subs)
}

// Connections is the number of times the LISTEN was established (1 + reconnects).
func (l *Listener[T]) Connections() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.conns
}

// Run connects, LISTENs and dispatches until ctx ends, reconnecting with backoff. It returns ctx.Err().
func (l *Listener[T]) Run(ctx context.Context) error {
	delay := retry.New(l.cfg.MinBackoff, l.cfg.MaxBackoff)
	for {
		err := l.session(ctx)
		l.setConnected(false)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(err, errListening) {
			delay.Reset() // it was up: start over quickly
		}
		backoff := delay.Next()
		l.cfg.Logger.Warn("PostgreSQL listener disconnected; reconnecting", "channel", l.cfg.Channel, "error", err, "backoff", backoff)
		if !retry.Wait(ctx, backoff) {
			return ctx.Err()
		}
	}
}

// errListening wraps errors that ended a session that had been listening.
var errListening = errors.New("connection lost while listening")

func (l *Listener[T]) session(ctx context.Context) error {
	var payloads []string // notifications read and not yet delivered (filled by the connection's callback)
	conn, err := l.cfg.Connect(ctx, func(_ *pgconn.PgConn, n *pgconn.Notification) {
		if n.Channel == l.cfg.Channel {
			payloads = append(payloads, n.Payload)
		}
	})
	if err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		_ = conn.Close(cctx)
		cancel()
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{l.cfg.Channel}.Sanitize()); err != nil {
		return err
	}
	l.setConnected(true)
	pc := conn.PgConn()
	pace := readpace.New(pc.Conn(), l.cfg.ReadInterval)
	var batch []T
	for {
		// Quiet: block until a notification arrives.
		if err := pc.WaitForNotification(ctx); err != nil {
			return errors.Join(errListening, err)
		}
		pace.Done()
		batch = l.deliver(payloads, batch)
		payloads = payloads[:0]
		// Under load: one round per interval, until a round brings nothing.
		for l.cfg.ReadInterval > 0 {
			pace.Wait()
			if err := pc.Ping(ctx); err != nil {
				return errors.Join(errListening, err)
			}
			pace.Done()
			if len(payloads) == 0 {
				break
			}
			batch = l.deliver(payloads, batch)
			payloads = payloads[:0]
		}
	}
}

// deliver decodes payloads and hands them to every subscriber as one batch; it returns batch for reuse.
func (l *Listener[T]) deliver(payloads []string, batch []T) []T {
	batch = batch[:0]
	for _, p := range payloads {
		v, err := l.cfg.Decode(p)
		if err != nil {
			l.mu.Lock()
			l.decodeErr++
			count := l.decodeErr
			l.mu.Unlock()
			if count <= 10 || count%1000 == 0 {
				l.cfg.Logger.Warn("Ignoring an undecodable notification", "channel", l.cfg.Channel, "error", err, "count", count)
			}
			continue
		}
		batch = append(batch, v)
	}
	if len(batch) == 0 {
		return batch
	}
	l.mu.Lock()
	snap := l.snapshot
	l.mu.Unlock()
	for _, s := range snap {
		s.h.Notify(batch)
	}
	clear(batch)
	return batch
}

func (l *Listener[T]) setConnected(up bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.connected = up
	if !up {
		return
	}
	l.conns++
	for s := range l.subs {
		s.h.Connected(s.connected)
		s.connected = true
	}
}
