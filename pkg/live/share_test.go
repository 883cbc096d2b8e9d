package live

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"
)

// TestFeedJoinsAtTheirPlace: a join splits the batch it falls in — the items pushed before it go to the
// segment before it, the items after it to the segment after — and is never lost, even when the pacer drops
// items because it is full (the dropped count goes with the first segment of the batch).
func TestFeedJoinsAtTheirPlace(t *testing.T) {
	f := newFeed[int](Settings{FrameInterval: 0, MaxBufferedRows: 5})
	a, b := newMember(time.Time{}), newMember(time.Time{})
	// Before the consumer runs: 1 2 3, join a, 4 5 6 7 8 9 (the bound of 5 drops 1 2 3 4), join b, 10.
	f.push(1, 2, 3)
	f.join(a, nil)
	f.push(4, 5, 6, 7, 8, 9)
	f.join(b, nil)
	f.push(10)

	type event struct {
		items   []int
		dropped int
		join    *member
	}
	var mu sync.Mutex
	var got []event
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- f.run(ctx, func(items []int, dropped int) error {
			mu.Lock()
			got = append(got, event{items: slices.Clone(items), dropped: dropped})
			mu.Unlock()
			return nil
		}, func(j joinMark) error {
			mu.Lock()
			got = append(got, event{join: j.m})
			mu.Unlock()
			return nil
		})
	}()
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n >= 4 || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	<-done
	// The pacer kept 6 7 8 9 10 and dropped 1 2 3 4 5: the drop count comes first, then a (marked after 3,
	// which was dropped), then 6 7 8 9, then b, then 10.
	want := []event{{dropped: 5}, {join: a}, {items: []int{6, 7, 8, 9}}, {join: b}, {items: []int{10}}}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != len(want) {
		t.Fatalf("events %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i].join != want[i].join || got[i].dropped != want[i].dropped || !slices.Equal(got[i].items, want[i].items) {
			t.Fatalf("event %d: %+v, want %+v (all: %+v)", i, got[i], want[i], got)
		}
	}
}

// TestMemberQueueBound: a member's queue holds at most max rows (dropping its oldest frames, counted) and
// nothing once the member has left.
func TestMemberQueueBound(t *testing.T) {
	m := newMember(time.Time{})
	for i := range 10 {
		if !m.offer(packet{data: []byte{byte(i)}, rows: 3}, 10) {
			t.Fatal("offer refused before the member left")
		}
	}
	q, dropped := m.take()
	if len(q) != 3 || q[0].data[0] != 7 || dropped != 21 {
		t.Fatalf("queue %d frames starting at %v, dropped %d; want the newest 3 frames (9 rows ≤ 10) and 21 rows dropped", len(q), q[0].data, dropped)
	}
	// One frame larger than the bound is still kept (a frame is never split).
	m.offer(packet{data: []byte{1}, rows: 50}, 10)
	if q, _ := m.take(); len(q) != 1 {
		t.Fatalf("a frame over the bound alone: %d frames, want 1", len(q))
	}
	m.leave()
	if m.offer(packet{data: []byte{1}, rows: 1}, 10) {
		t.Fatal("offer accepted after leave")
	}
	if q, _ := m.take(); len(q) != 0 {
		t.Fatal("a member that left still has frames")
	}
}
