package pglisten

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/fieldline-iot/fieldline/internal/testsvc"
)

// recorder is a Handler that keeps every batch and connection event.
type recorder struct {
	mu       sync.Mutex
	batches  [][]int
	connects []bool
}

func (r *recorder) Connected(reconnect bool) {
	r.mu.Lock()
	r.connects = append(r.connects, reconnect)
	r.mu.Unlock()
}

func (r *recorder) Notify(vs []int) {
	r.mu.Lock()
	r.batches = append(r.batches, append([]int(nil), vs...))
	r.mu.Unlock()
}

func (r *recorder) snapshot() (batches [][]int, connects []bool, all []int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, b := range r.batches {
		all = append(all, b...)
	}
	return append([][]int(nil), r.batches...), append([]bool(nil), r.connects...), all
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A notification after a quiet spell is delivered on its own; a burst is delivered in rounds, each
// notification once and in order; undecodable payloads are skipped; after the listening connection is killed
// the subscriber hears Connected(true) and notifications flow again.
func TestRoundsAndReconnect(t *testing.T) {
	url := testsvc.NewPostgresDB(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const channel = "pglisten_test"
	l := New(Config[int]{
		Channel: channel,
		Connect: func(ctx context.Context, onNotification pgconn.NotificationHandler) (*pgx.Conn, error) {
			cfg, err := pgx.ParseConfig(url)
			if err != nil {
				return nil, err
			}
			cfg.RuntimeParams["application_name"] = "pglisten-test"
			cfg.OnNotification = onNotification
			return pgx.ConnectConfig(ctx, cfg)
		},
		Decode:       strconv.Atoi,
		MinBackoff:   50 * time.Millisecond,
		ReadInterval: 100 * time.Millisecond,
	})
	var rec recorder
	unsubscribe := l.Subscribe(&rec)
	defer unsubscribe()
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	eventually(t, "the LISTEN", func() bool { _, c, _ := rec.snapshot(); return len(c) == 1 })

	sender, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer sender.Close(context.Background())
	notify := func(payload string) {
		t.Helper()
		if _, err := sender.Exec(ctx, "SELECT pg_notify($1, $2)", channel, payload); err != nil {
			t.Fatal(err)
		}
	}

	notify("0")
	eventually(t, "the first notification", func() bool { _, _, all := rec.snapshot(); return len(all) == 1 })
	time.Sleep(300 * time.Millisecond) // quiet again
	const burst = 400
	for i := 1; i <= burst; i++ {
		notify(strconv.Itoa(i))
		if i == burst/2 {
			notify("not a number") // counted and skipped
		}
	}
	eventually(t, "the burst", func() bool { _, _, all := rec.snapshot(); return len(all) == burst+1 })
	batches, _, all := rec.snapshot()
	for i, v := range all {
		if v != i {
			t.Fatalf("notification %d is %d: want each once, in order (batches %v)", i, v, batches)
		}
	}
	if len(batches[0]) != 1 {
		t.Fatalf("first batch %v: the first notification after a quiet spell must go alone", batches[0])
	}
	if len(batches) > burst/4 {
		t.Fatalf("%d notifications came in %d batches: not read in rounds", burst, len(batches))
	}
	t.Logf("%d notifications in %d batches", burst+1, len(batches))

	// Kill the listening session: the listener reconnects, says so, and delivers again.
	if _, err := sender.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'pglisten-test'"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "Connected(true)", func() bool { _, c, _ := rec.snapshot(); return len(c) == 2 && c[1] })
	notify(fmt.Sprint(burst + 1))
	eventually(t, "a notification after the reconnect", func() bool { _, _, all := rec.snapshot(); return all[len(all)-1] == burst+1 })
	if l.Connections() != 2 {
		t.Fatalf("connections %d, want 2", l.Connections())
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run returned %v, want context.Canceled", err)
	}
}
