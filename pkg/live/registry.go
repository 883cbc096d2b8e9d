package live

import (
	"container/list"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"sync"
	"time"
)

// registry keeps selectors whose encoding does not fit in a channel (long labels, a "new series" channel
// excluding thousands of series), bounded in bytes, with O(1) bookkeeping:
//   - every user (Grafana login; anonymous viewers share one) may hold liveRegistryUserBytes, and a user over
//     that quota evicts their own least recently used idle entries, never another user's;
//   - the instance holds liveRegistryBytes; past it, only idle entries older than liveRegistryGrace (a pending
//     channel is subscribed within seconds of its QueryData) are evicted, oldest first; when none is, the
//     query gets no live channel (a notice says so) instead of taking another user's;
//   - an entry in use by a running stream is never evicted; idle entries expire after liveRegistryTTL.
type registry struct {
	mu      sync.Mutex
	entries map[string]*regEntry
	idle    list.List // idle entries, least recently used first (*regEntry)
	bytes   int64
	owners  map[string]*regOwner
}

const (
	liveRegistryBytes     = 64 << 20
	liveRegistryUserBytes = 16 << 20
	liveRegistryGrace     = 5 * time.Minute
)

type regOwner struct {
	bytes int64
	idle  list.List // this owner's idle entries, least recently used first (*regEntry)
}

type regEntry struct {
	id       string
	sel      *Selector
	owner    string
	size     int64
	created  time.Time
	lastUsed time.Time
	running  int
	idleAll  *list.Element // in registry.idle while idle
	idleOwn  *list.Element // in regOwner.idle while idle
}

var errRegistryFull = errors.New("too many live channels are pending on this data source")

func (r *registry) init() {
	if r.entries == nil {
		r.entries = map[string]*regEntry{}
		r.owners = map[string]*regOwner{}
	}
}

// put stores sel for owner and returns its id.
func (r *registry) put(sel *Selector, owner string, now time.Time) (string, error) {
	size := int64(len(sel.marshal())) + 256 // the encoded form and the bookkeeping around it
	if size > liveRegistryUserBytes {
		return "", fmt.Errorf("live channel selector of %d bytes exceeds the per-user bound", size)
	}
	var b [12]byte
	_, _ = rand.Read(b[:])
	id := base64.RawURLEncoding.EncodeToString(b[:])
	r.mu.Lock()
	defer r.mu.Unlock()
	r.init()
	r.expire(now)
	o := r.owners[owner]
	if o == nil {
		o = &regOwner{}
		r.owners[owner] = o
	}
	for o.bytes+size > liveRegistryUserBytes {
		front := o.idle.Front()
		if front == nil {
			return "", fmt.Errorf("%w: your live panels hold %d bytes of channels", errRegistryFull, o.bytes)
		}
		r.remove(front.Value.(*regEntry))
	}
	for r.bytes+size > liveRegistryBytes {
		front := r.idle.Front()
		if front == nil || now.Sub(front.Value.(*regEntry).created) < liveRegistryGrace {
			return "", errRegistryFull
		}
		r.remove(front.Value.(*regEntry))
	}
	e := &regEntry{id: id, sel: sel, owner: owner, size: size, created: now, lastUsed: now}
	r.entries[id] = e
	r.bytes += size
	o.bytes += size
	e.idleAll, e.idleOwn = r.idle.PushBack(e), o.idle.PushBack(e)
	return id, nil
}

// expire drops idle entries unused for liveRegistryTTL (from the front of the LRU: amortised O(1)).
func (r *registry) expire(now time.Time) {
	for front := r.idle.Front(); front != nil; front = r.idle.Front() {
		e := front.Value.(*regEntry)
		if now.Sub(e.lastUsed) <= liveRegistryTTL {
			return
		}
		r.remove(e)
	}
}

func (r *registry) remove(e *regEntry) {
	o := r.owners[e.owner]
	if e.idleAll != nil {
		r.idle.Remove(e.idleAll)
		o.idle.Remove(e.idleOwn)
		e.idleAll, e.idleOwn = nil, nil
	}
	delete(r.entries, e.id)
	r.bytes -= e.size
	o.bytes -= e.size
	if o.bytes == 0 {
		delete(r.owners, e.owner)
	}
}

func (r *registry) get(id string) *Selector {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.entries[id]
	if e == nil {
		return nil
	}
	e.lastUsed = time.Now()
	if e.idleAll != nil {
		r.idle.MoveToBack(e.idleAll)
		r.owners[e.owner].idle.MoveToBack(e.idleOwn)
	}
	return e.sel
}

// hold marks an entry used by a running stream (never evicted meanwhile); the returned func releases it.
func (r *registry) hold(id string) func() {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.entries[id]
	if e == nil {
		return func() {}
	}
	e.running++
	if e.idleAll != nil {
		r.idle.Remove(e.idleAll)
		r.owners[e.owner].idle.Remove(e.idleOwn)
		e.idleAll, e.idleOwn = nil, nil
	}
	return func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		e.running--
		e.lastUsed = time.Now()
		if e.running == 0 && r.entries[e.id] == e {
			e.idleAll, e.idleOwn = r.idle.PushBack(e), r.owners[e.owner].idle.PushBack(e)
		}
	}
}

// stats reports the registry's entries and bytes (tests).
func (r *registry) stats() (entries int, bytes int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.entries), r.bytes
}
