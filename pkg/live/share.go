package live

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/data"

	"github.com/fieldline-iot/fieldline/pkg/live/mqttlive"
	"github.com/fieldline-iot/fieldline/pkg/live/pacer"
)

// Shared streams. Every live query execution has channels of its own (its seam and nonce are in the path), so
// N panels on one query are N Grafana streams. Their work is shared: the streams whose selectors differ only in
// seam and nonce are members of one group, and the group runs one source — one subscription, one decoder, one
// dedupe set, one frame and one JSON encoding per frame interval — whose encoded frames every member sends.
//
//   - A member's RunStream only sends bytes: its queue holds encoded frames, bounded by MaxBufferedRows rows
//     (a member whose Grafana connection is slow drops its oldest frames, counted, and is told so in a notice
//     frame), so one slow viewer never holds up the others.
//   - A member joins at a point of the source's own order (a mark in its feed, see feed): what the source read
//     before that point is not the member's, what comes after is. What the member needs from before — a postgres
//     member's rows from its seam on, an MQTT member's cached last messages — it gets in a frame of its own at
//     that point (pgStream.joinMember, mqttSource.join); a postgres member then skips, in the group's frames, the
//     rows its join frame had already given it (member.joinKeys, pgStream.emit), so the seam stays exact for
//     every viewer.
//   - Aggregated postgres streams are not shared: their buckets start at their own seam (each gets a key of its
//     own).
//
// The group's source runs on a goroutine of the engine and ends when its last member leaves.

// groupSource is a group's source stream.
type groupSource interface {
	// join hands the source a member after the first (a postgres source gets its first this way too). It runs
	// under the engine's groups lock and must not block.
	join(m *member)
	// run is the source's loop, on the group's goroutine, until ctx ends.
	run(ctx context.Context) error
	// close releases what the source holds when run never started.
	close()
}

// group is one source stream and its members.
type group struct {
	key    string
	src    groupSource
	notice func(text string) *data.Frame // an empty frame of the source's schema carrying a notice
	cancel context.CancelFunc
	done   chan struct{} // closed when the source's loop returned
	err    error         // the loop's error (read after done)
	refs   int           // members attached (engine's groups lock)
}

// member is one RunStream of a group.
type member struct {
	seam time.Time // a postgres member's seam S
	wake chan struct{}

	mu      sync.Mutex
	queue   []packet
	rows    int // rows in queue
	dropped int // rows dropped for this member since its last send
	closed  bool

	// The source's goroutine only: the rows of the member's join frame that the group had not sent (a
	// postgres member skips them in the group's frames until the group's stream has moved past them).
	joinKeys   map[rowKey]struct{}
	joinNewest int64 // unix µs of the newest of them
}

// packet is one encoded frame.
type packet struct {
	data []byte
	rows int
}

// maxQueuedFrames bounds a member's queue in frames as MaxBufferedRows bounds it in rows (frames that carry
// only a notice have no rows).
const maxQueuedFrames = 1024

func newMember(seam time.Time) *member {
	return &member{seam: seam, wake: make(chan struct{}, 1)}
}

// offer queues an encoded frame for the member; false when the member has left. When the queue would pass
// max rows (or maxQueuedFrames), its oldest frames are dropped and counted.
func (m *member) offer(p packet, max int) bool {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return false
	}
	m.queue = append(m.queue, p)
	m.rows += p.rows
	for len(m.queue) > 1 && (m.rows > max || len(m.queue) > maxQueuedFrames) {
		m.rows -= m.queue[0].rows
		m.dropped += m.queue[0].rows
		m.queue[0] = packet{}
		m.queue = m.queue[1:]
	}
	m.mu.Unlock()
	select {
	case m.wake <- struct{}{}:
	default:
	}
	return true
}

// take swaps the member's queue out.
func (m *member) take() ([]packet, int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	q, d := m.queue, m.dropped
	m.queue, m.rows, m.dropped = nil, 0, 0
	return q, d
}

// leave marks the member gone: the source sends it nothing more (and drops it from its list on its next
// frame).
func (m *member) leave() {
	m.mu.Lock()
	m.closed, m.queue = true, nil
	m.mu.Unlock()
}

// send runs on the member's RunStream goroutine: it sends what the group queued for it until ctx ends or the
// group's source stops.
func (e *Engine) send(ctx context.Context, g *group, m *member, sender *backend.StreamSender) error {
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-g.done:
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if g.err != nil && !errors.Is(g.err, context.Canceled) {
				return g.err
			}
			return ErrClosed
		case <-m.wake:
		}
		q, dropped := m.take()
		if dropped > 0 {
			e.dropped.Add(int64(dropped))
			backend.Logger.Warn("Live stream too slow: rows dropped", "dropped", dropped)
			text := fmt.Sprintf("Live: %d rows were dropped because they arrived faster than this panel's stream could send them", dropped)
			if err := sender.SendFrame(g.notice(text), data.IncludeAll); err != nil {
				return err
			}
		}
		for _, p := range q {
			if err := sender.SendBytes(p.data); err != nil {
				return err
			}
			e.frames.Add(1)
			e.rows.Add(int64(p.rows))
		}
	}
}

// broadcast encodes f once and queues it for every member of list.
func (e *Engine) broadcast(list []*member, f *data.Frame, rows int) error {
	if len(list) == 0 {
		return nil
	}
	b, err := data.FrameToJSON(f, data.IncludeAll)
	if err != nil {
		return fmt.Errorf("live: encoding a frame: %w", err)
	}
	p := packet{data: b, rows: rows}
	for _, m := range list {
		m.offer(p, e.settings.MaxBufferedRows)
	}
	return nil
}

// sendTo encodes f and queues it for one member.
func (e *Engine) sendTo(m *member, f *data.Frame, rows int) error {
	return e.broadcast([]*member{m}, f, rows)
}

// gone reports whether the member has left.
func (m *member) gone() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.closed
}

// groupKey is the key of the streams that share sel's source: the selector without its seam and nonce; an
// aggregated stream's key is its own.
func (e *Engine) groupKey(sel *Selector) string {
	if sel.Kind == KindPostgres && sel.Agg != "" {
		return fmt.Sprintf("own/%d", e.ownGroups.Add(1))
	}
	k := *sel
	k.Seam, k.Nonce = time.Time{}, 0
	return string(k.marshal())
}

// attach adds a member for sel to its group, starting the group (and its source) when it is the first.
func (e *Engine) attach(sel *Selector, m *member) (*group, error) {
	key := e.groupKey(sel)
	e.groupsMu.Lock()
	defer e.groupsMu.Unlock()
	if g := e.groups[key]; g != nil {
		g.refs++
		g.src.join(m)
		return g, nil
	}
	g := &group{key: key, done: make(chan struct{}), refs: 1}
	switch sel.Kind {
	case KindPostgres:
		s := newPGStream(e, sel)
		s.join(m)
		g.src, g.notice = s, s.noticeFrame
	case KindMQTT:
		s, err := e.newMQTTSource(sel, m)
		if err != nil {
			return nil, err
		}
		g.src, g.notice = s, s.noticeFrame
	default:
		return nil, errBadSelector
	}
	ctx, cancel := context.WithCancel(e.ctx)
	g.cancel = cancel
	e.mu.Lock()
	started := e.startLocked(func() {
		defer close(g.done)
		g.err = g.src.run(ctx)
		// A source that failed while members remain is not reused: the next stream starts a new one.
		e.groupsMu.Lock()
		if e.groups[key] == g {
			delete(e.groups, key)
		}
		e.groupsMu.Unlock()
	})
	e.mu.Unlock()
	if !started {
		cancel()
		g.src.close()
		return nil, ErrClosed
	}
	if e.groups == nil {
		e.groups = map[string]*group{}
	}
	e.groups[key] = g
	return g, nil
}

// detach removes m from g; the last member to leave stops the group.
func (e *Engine) detach(g *group, m *member) {
	m.leave()
	e.groupsMu.Lock()
	defer e.groupsMu.Unlock()
	g.refs--
	if g.refs > 0 {
		return
	}
	g.cancel()
	if e.groups[g.key] == g {
		delete(e.groups, g.key)
	}
}

// runShared runs one channel's stream as a member of its group.
func (e *Engine) runShared(ctx context.Context, sel *Selector, sender *backend.StreamSender) error {
	m := newMember(sel.Seam)
	g, err := e.attach(sel, m)
	if err != nil {
		return err
	}
	defer e.detach(g, m)
	return e.send(ctx, g, m, sender)
}

// groupCount is the number of groups running (Stats).
func (e *Engine) groupCount() int {
	e.groupsMu.Lock()
	defer e.groupsMu.Unlock()
	return len(e.groups)
}

// feed is a source's pacer with its members' joins marked in its order: a join takes effect after every item
// pushed before it and before every item pushed after it, even when the pacer drops items under load (joins
// are not items, so none is ever dropped).
type feed[T any] struct {
	pace *pacer.Pacer[T]

	mu     sync.Mutex
	pushed uint64 // items pushed so far
	joins  []joinMark

	taken uint64 // the consumer's: items taken or dropped so far
}

// joinMark is a member's join: after the first at items.
type joinMark struct {
	at     uint64
	m      *member
	replay []mqttlive.Message // an MQTT member's cached messages, read at the same point
}

func newFeed[T any](s Settings) *feed[T] {
	return &feed[T]{pace: pacer.New[T](s.FrameInterval, s.MaxBufferedRows)}
}

// push adds items (under the feed's lock, so that a join's mark counts them exactly).
func (f *feed[T]) push(items ...T) {
	if len(items) == 0 {
		return
	}
	f.mu.Lock()
	f.pushed += uint64(len(items))
	f.pace.Push(items...)
	f.mu.Unlock()
}

// join marks m's join at the current end of the feed.
func (f *feed[T]) join(m *member, replay []mqttlive.Message) {
	f.mu.Lock()
	f.joins = append(f.joins, joinMark{at: f.pushed, m: m, replay: replay})
	f.mu.Unlock()
	f.pace.Poke()
}

// run is the consumer loop: each batch goes to segment in pieces split at the joins that fall within it, each
// join handed to joined at its place. The joins marked after the batch was taken wait for the next one.
func (f *feed[T]) run(ctx context.Context, segment func(items []T, dropped int) error, joined func(j joinMark) error) error {
	return f.pace.Run(ctx, func(batch []T, dropped int) error {
		start := f.taken + uint64(dropped) // the position of batch[0]
		f.taken = start + uint64(len(batch))
		f.mu.Lock()
		n := 0
		for n < len(f.joins) && f.joins[n].at <= f.taken {
			n++
		}
		joins := slices.Clone(f.joins[:n])
		f.joins = slices.Delete(f.joins, 0, n)
		f.mu.Unlock()
		done := 0
		for _, j := range joins {
			cut := int(max(j.at, start) - start)
			if cut > done || dropped > 0 {
				if err := segment(batch[done:cut], dropped); err != nil {
					return err
				}
				done, dropped = cut, 0
			}
			if err := joined(j); err != nil {
				return err
			}
		}
		if done < len(batch) || dropped > 0 {
			return segment(batch[done:], dropped)
		}
		return nil
	})
}
