package pacer

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestFirstItemImmediately: after a quiet spell an item is sent at once, not after an interval.
func TestFirstItemImmediately(t *testing.T) {
	p := New[int](time.Second, 10)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan time.Duration, 1)
	start := time.Now()
	go p.Run(ctx, func(b []int, _ int) error { got <- time.Since(start); return nil })
	p.Push(1)
	select {
	case d := <-got:
		if d > 100*time.Millisecond {
			t.Fatalf("first batch after %v", d)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("no batch")
	}
}

// TestCoalesceUnderLoad: a producer pushing continuously gets at most one batch per interval, and every item
// arrives exactly once, in order.
func TestCoalesceUnderLoad(t *testing.T) {
	const interval = 50 * time.Millisecond
	p := New[int](interval, 1_000_000)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	var got []int
	var sends []time.Time
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = p.Run(ctx, func(b []int, dropped int) error {
			if dropped != 0 {
				t.Errorf("dropped %d", dropped)
			}
			mu.Lock()
			got = append(got, b...)
			sends = append(sends, time.Now())
			mu.Unlock()
			return nil
		})
	}()
	const n = 20000
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < n; i++ {
			p.Push(i)
			if i%100 == 0 {
				time.Sleep(time.Millisecond)
			}
		}
	}()
	wg.Wait()
	deadline := time.Now().Add(2 * time.Second)
	for {
		mu.Lock()
		l := len(got)
		mu.Unlock()
		if l == n || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	if len(got) != n {
		t.Fatalf("got %d items, want %d", len(got), n)
	}
	for i, v := range got {
		if v != i {
			t.Fatalf("item %d is %d", i, v)
		}
	}
	for i := 1; i < len(sends); i++ {
		if gap := sends[i].Sub(sends[i-1]); gap < interval-5*time.Millisecond {
			t.Fatalf("batches %d and %d only %v apart", i-1, i, gap)
		}
	}
	t.Logf("%d items in %d batches", n, len(sends))
}

// TestBoundedDropOldest: a stalled consumer never blocks Push; the newest max items are kept and the rest are
// counted as dropped.
func TestBoundedDropOldest(t *testing.T) {
	p := New[int](0, 100)
	for i := 0; i < 1050; i++ {
		p.Push(i)
	}
	p.Push(make([]int, 0)...)
	if p.Len() != 100 {
		t.Fatalf("len %d", p.Len())
	}
	ctx, cancel := context.WithCancel(context.Background())
	var total atomic.Int64
	var first int
	_ = p.Run(ctx, func(b []int, dropped int) error {
		first = b[0]
		total.Store(int64(len(b) + dropped))
		if dropped != 950 {
			t.Errorf("dropped %d, want 950", dropped)
		}
		cancel()
		return nil
	})
	if first != 950 || total.Load() != 1050 {
		t.Fatalf("first %d total %d", first, total.Load())
	}
	// A single push larger than the bound keeps its newest items.
	p2 := New[int](0, 10)
	big := make([]int, 25)
	for i := range big {
		big[i] = i
	}
	p2.Push(1, 2, 3)
	p2.Push(big...)
	items, dropped, _ := p2.take()
	if len(items) != 10 || items[0] != 15 || dropped != 18 {
		t.Fatalf("items %v dropped %d", items, dropped)
	}
}

func BenchmarkPush(b *testing.B) {
	p := New[int](100*time.Millisecond, 1<<20)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go p.Run(ctx, func([]int, int) error { return nil })
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		p.Push(i)
	}
}

// Poke runs the consumer once with an empty batch; without it an empty wake-up sends nothing.
func TestPoke(t *testing.T) {
	p := New[int](0, 10)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	calls := make(chan int, 4)
	go func() {
		_ = p.Run(ctx, func(items []int, dropped int) error { calls <- len(items) + dropped; return nil })
	}()
	p.Poke()
	select {
	case n := <-calls:
		if n != 0 {
			t.Fatalf("poked batch has %d items, want 0", n)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Poke did not run the consumer")
	}
	p.Push(7)
	if n := <-calls; n != 1 {
		t.Fatalf("pushed batch has %d items, want 1", n)
	}
	select {
	case n := <-calls:
		t.Fatalf("an unexpected batch of %d items", n)
	case <-time.After(50 * time.Millisecond):
	}
}
