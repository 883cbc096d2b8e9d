package plugin

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"

	"github.com/fieldline-iot/fieldline/internal/telemetry"
	"github.com/fieldline-iot/fieldline/internal/testsvc"
)

// Many viewers of one live query share one source stream (pkg/live share.go). These tests are the viewers'
// side of it: each viewer's history and stream hold every row exactly once, whenever it joined (while rows were
// in flight), after others left, and whatever another viewer's connection does.

// TestLiveSharedPostgres: viewers of one series join one after another while rows are written every few
// milliseconds (some in batches too big for the notification, read back by the group); one viewer leaves
// half-way. Every viewer's history + stream is every row of the series exactly once, the viewers share one
// source, and when all have left a new viewer starts a fresh one, exact too.
func TestLiveSharedPostgres(t *testing.T) {
	db := newLiveDB(t)
	d := newDS(t, settingsFor(t, db.url, nil, liveExtra))
	var mu sync.Mutex
	var all []telemetry.Reading
	writeErr := make(chan error, 1)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the writer: one row every 3 ms, and every 40th write a batch of 400 (announced by watermark)
		defer wg.Done()
		v := 0.0
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(3 * time.Millisecond):
			}
			n := 1
			if i%40 == 39 {
				n = 400
			}
			rows := make([]telemetry.Reading, n)
			t0 := time.Now()
			for j := range rows {
				v++
				rows[j] = reading("pico", "dht22", t0.Add(time.Duration(j)*time.Microsecond), v)
			}
			if err := db.w.Write(context.Background(), rows); err != nil {
				writeErr <- err
				return
			}
			mu.Lock()
			all = append(all, rows...)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	})
	time.Sleep(2500 * time.Millisecond) // history before the seam (δ = 2 s): the query has its series and channel

	type viewer struct {
		history []liveRow
		sink    *frameSink
		cancel  context.CancelFunc
	}
	model := func() map[string]any {
		return map[string]any{"source": "sql", "metric": "temperature", "device": "pico", "sensor": "dht22"}
	}
	join := func() *viewer {
		now := time.Now()
		resp := liveQuery(t, d, "A", model(), now.Add(-time.Hour), now)
		history, channels := historyRows(t, resp)
		if len(channels) != 1 {
			t.Fatalf("want one channel for one series, got %v", channels)
		}
		sink, cancel := runStream(t, d, channels[0])
		return &viewer{history: history, sink: sink, cancel: cancel}
	}
	var viewers []*viewer
	for i := range 6 {
		viewers = append(viewers, join())
		time.Sleep(time.Duration(80+37*i) * time.Millisecond)
	}
	if st := d.LiveStats(); st.Streams != 6 || st.Sources != 1 {
		t.Fatalf("six viewers of one series: %+v, want 6 streams sharing 1 source", st)
	}
	leaver := viewers[2]
	leaver.cancel()
	viewers = append(viewers[:2], viewers[3:]...)
	for range 2 {
		viewers = append(viewers, join())
		time.Sleep(150 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	select {
	case err := <-writeErr:
		t.Fatalf("writer: %v", err)
	default:
	}
	mu.Lock()
	want := append([]telemetry.Reading(nil), all...)
	mu.Unlock()
	last := rowOf(want[len(want)-1])
	for _, v := range viewers {
		deadline := time.Now().Add(10 * time.Second)
		for countBy(v.sink.rows())[last] == 0 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
	}
	time.Sleep(300 * time.Millisecond) // a duplicate would arrive by now
	for i, v := range viewers {
		checkExactlyOnce(t, fmt.Sprintf("viewer %d", i), want, v.history, v.sink.rows())
	}
	if t.Failed() {
		return
	}

	// Everyone leaves: the source stops. A new viewer starts a new one and gets its rows exactly once.
	for _, v := range viewers {
		v.cancel()
	}
	deadline := time.Now().Add(10 * time.Second)
	for d.LiveStats().Sources != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("sources still running after every viewer left: %+v", d.LiveStats())
		}
		time.Sleep(20 * time.Millisecond)
	}
	fresh := join()
	after := reading("pico", "dht22", time.Now(), -1)
	db.write(t, after)
	want = append(want, after)
	fresh.sink.waitRows(t, "fresh viewer", 10*time.Second, func(r []liveRow) bool { return countBy(r)[rowOf(after)] > 0 })
	time.Sleep(300 * time.Millisecond)
	checkExactlyOnce(t, "fresh viewer", want, fresh.history, fresh.sink.rows())
}

// TestLiveSharedMQTT: viewers of one MQTT query join while a topic gets a message every 2 ms. Each viewer sees
// the topic's values as one run without gap or repeat from where it joined (a late joiner's first value is the
// client's cached last message, read at the same point as its join), and all share one source.
func TestLiveSharedMQTT(t *testing.T) {
	d := mqttDS(t)
	pub := mqttPublisher(t)
	prefix := testsvc.RandomName("shared")
	topic := prefix + "/x/temperature"
	stop := make(chan struct{})
	done := make(chan int)
	go func() {
		n := 0
		defer func() { done <- n }()
		for {
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
			n++
			if tok := pub.Publish(topic, 1, false, fmt.Sprint(n)); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
				return
			}
		}
	}()
	series := `{topic="` + topic + `", device="x", metric="temperature"}`
	var sinks []*frameSink
	for i := range 6 {
		r := liveQuery(t, d, "A", map[string]any{"source": "mqtt", "topic": prefix + "/+/temperature",
			"template": prefix + "/{device}/{metric}", "payloadFormat": "value"}, time.Now().Add(-time.Hour), time.Now())
		if r.Error != nil || len(r.Frames) != 1 || r.Frames[0].Meta.Channel == "" {
			t.Fatalf("mqtt live query: %+v", r)
		}
		s, _ := runStream(t, d, r.Frames[0].Meta.Channel)
		sinks = append(sinks, s)
		time.Sleep(time.Duration(60+41*i) * time.Millisecond)
	}
	if st := d.LiveStats(); st.Streams != 6 || st.Sources != 1 {
		t.Fatalf("six viewers of one query: %+v, want 6 streams sharing 1 source", st)
	}
	time.Sleep(200 * time.Millisecond)
	close(stop)
	n := <-done
	if n < 100 {
		t.Fatalf("only %d messages published", n)
	}
	for i, s := range sinks {
		rows := s.waitRows(t, fmt.Sprintf("viewer %d", i), 10*time.Second, func(r []liveRow) bool { return hasRow(r, series, float64(n)) })
		var vals []float64
		for _, r := range rows {
			if r.series == series {
				vals = append(vals, r.v)
			}
		}
		for k := 1; k < len(vals); k++ {
			if vals[k] != vals[k-1]+1 {
				t.Fatalf("viewer %d: value %v follows %v (a gap or a repeat at its join); values %v…", i, vals[k], vals[k-1], vals[:min(len(vals), 20)])
			}
		}
	}
}

// blockingSink holds every Send until released, as a Grafana connection that has stopped reading.
type blockingSink struct {
	release chan struct{}
	inner   *frameSink
}

func (b *blockingSink) Send(p *backend.StreamPacket) error {
	<-b.release
	return b.inner.Send(p)
}

// TestLiveSharedSlowViewer: a viewer whose connection stops reading does not hold up another viewer of the same
// source, which gets every message; the slow one loses its oldest frames, at most liveMaxBufferedRows rows are
// held for it, and when it reads again it is told how many rows it lost.
func TestLiveSharedSlowViewer(t *testing.T) {
	extra := map[string]any{"mqtt": map[string]any{"url": testsvc.MQTTURL(t), "qos": 1}, "liveFrameInterval": "20ms", "liveMaxBufferedRows": 100}
	d := newDS(t, settingsFor(t, "", nil, extra))
	pub := mqttPublisher(t)
	prefix := testsvc.RandomName("slow")
	query := func() string {
		r := liveQuery(t, d, "A", map[string]any{"source": "mqtt", "topic": prefix + "/+/temperature", "payloadFormat": "value"},
			time.Now().Add(-time.Hour), time.Now())
		if r.Error != nil || len(r.Frames) != 1 {
			t.Fatalf("mqtt live query: %+v", r)
		}
		return pathOf(t, d, r.Frames[0].Meta.Channel)
	}
	fast, _ := runStream(t, d, "ds/"+d.uid+"/"+query())
	slow := &blockingSink{release: make(chan struct{}), inner: newFrameSink()}
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() {
		runDone <- d.RunStream(ctx, &backend.RunStreamRequest{Path: query()}, backend.NewStreamSender(slow))
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-slow.release:
		default:
			close(slow.release)
		}
		<-runDone
	})
	deadline := time.Now().Add(10 * time.Second)
	for d.LiveStats().Streams != 2 {
		if time.Now().After(deadline) {
			t.Fatal("the slow viewer's stream did not start")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The subscription is in place once the fast viewer sees a warm-up message.
	series := `{topic="` + prefix + `/d/temperature", metric="temperature"}`
	for !hasRow(fast.rows(), series, 0) {
		if time.Now().After(deadline) {
			t.Fatal("the warm-up message did not arrive")
		}
		publish(t, pub, prefix+"/d/temperature", false, "0")
		time.Sleep(100 * time.Millisecond)
	}
	fast.mu.Lock()
	fast.result = nil
	fast.mu.Unlock()
	const rounds, per = 30, 10
	for r := range rounds {
		for i := range per {
			publish(t, pub, prefix+"/d/temperature", false, fmt.Sprint(r*per+i+1))
		}
		time.Sleep(60 * time.Millisecond)
	}
	got := fast.waitRows(t, "fast viewer", 10*time.Second, func(r []liveRow) bool { return hasRow(r, series, rounds*per) })
	seen := map[float64]int{}
	for _, r := range got {
		seen[r.v]++
	}
	for v := 1; v <= rounds*per; v++ {
		if seen[float64(v)] != 1 {
			t.Errorf("fast viewer: value %d shown %d times, want once (a slow viewer must not cost it any)", v, seen[float64(v)])
		}
	}
	close(slow.release)
	rows := slow.inner.waitRows(t, "slow viewer", 10*time.Second, func(r []liveRow) bool { return hasRow(r, series, rounds*per) })
	if len(rows) >= rounds*per || len(rows) > 100+per+per {
		t.Fatalf("slow viewer: %d rows, want its oldest frames dropped (at most 100 rows held, plus the frame it was sending)", len(rows))
	}
	slow.inner.mu.Lock()
	notice := ""
	for _, f := range slow.inner.result {
		if f.Meta != nil {
			for _, n := range f.Meta.Notices {
				notice += n.Text
			}
		}
	}
	slow.inner.mu.Unlock()
	if !strings.Contains(notice, "rows were dropped") {
		t.Fatalf("slow viewer was not told it lost rows: notices %q", notice)
	}
	if st := d.LiveStats(); st.Dropped == 0 {
		t.Fatalf("dropped rows not counted: %+v", st)
	}
}
