package plugin

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/fieldline-iot/fieldline/internal/telemetry"
	"github.com/fieldline-iot/fieldline/internal/testsvc"
)

// TestFaultLivePostgresRestart: PostgreSQL restarts under a running stream while rows keep being written;
// rows committed while the listener was down (their notifications are lost) come through the read-back
// after it reconnects: every committed row is on screen exactly once.
func TestFaultLivePostgresRestart(t *testing.T) {
	db := newLiveDB(t)
	d := newDS(t, settingsFor(t, db.url, nil, liveExtra))
	start := time.Now().UTC()
	db.write(t, reading("pico", "dht22", start.Add(-30*time.Second), 1))
	resp := liveQuery(t, d, "A", map[string]any{"source": "sql", "metric": "temperature", "device": "pico"}, start.Add(-time.Hour), start)
	history, channels := historyRows(t, resp)
	sink, _ := runStream(t, d, channels[0])
	sink.waitRows(t, "stream up", 10*time.Second, func([]liveRow) bool { return d.LiveStats().ListenerConnections == 1 })

	// A writer that keeps writing one row every 20 ms, retrying through the outage. The database itself is
	// the oracle: a commit whose acknowledgement was lost still counts if the row is there.
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		v := 100.0
		for ctx.Err() == nil {
			v++
			wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			_ = db.w.Write(wctx, []telemetry.Reading{reading("pico", "dht22", time.Now(), v)})
			cancel()
			time.Sleep(20 * time.Millisecond)
		}
	}()
	time.Sleep(500 * time.Millisecond)
	testsvc.Services(t, "restart", "postgres")
	time.Sleep(3 * time.Second) // writes go on while the listener is still backing off
	stop()
	wg.Wait()

	var want []telemetry.Reading
	rows, err := db.pool.Query(context.Background(), "SELECT time, value FROM readings WHERE metric = 'temperature' AND device = 'pico' ORDER BY time")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		r := reading("pico", "dht22", time.Time{}, 0)
		if err := rows.Scan(&r.Time, &r.Value); err != nil {
			t.Fatal(err)
		}
		r.Time = r.Time.UTC()
		want = append(want, r)
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	sink.waitRows(t, "all committed rows on screen", 20*time.Second, func(r []liveRow) bool { return len(r)+len(history) >= len(want) })
	time.Sleep(300 * time.Millisecond)
	checkExactlyOnce(t, "after restart", want, history, sink.rows())
	st := d.LiveStats()
	if st.ListenerConnections < 2 {
		t.Fatalf("listener did not reconnect: %+v", st)
	}
	t.Logf("%d rows committed around the restart, %d frames, listener connections %d", len(want), st.Frames, st.ListenerConnections)
}
