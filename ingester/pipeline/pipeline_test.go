package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/fieldline-iot/fieldline/ingester/config"
	"github.com/fieldline-iot/fieldline/ingester/metrics"
	"github.com/fieldline-iot/fieldline/ingester/sink"
	"github.com/fieldline-iot/fieldline/ingester/spool"
	"github.com/fieldline-iot/fieldline/internal/mqttsub"
	"github.com/fieldline-iot/fieldline/internal/telemetry"
)

// memSink is an in-memory sink.Sink. It fails while down; with a gate it holds each Write until the test
// sends on the gate (or the write's context ends).
type memSink struct {
	down    atomic.Bool
	gate    chan struct{}
	writing chan struct{} // receives when a Write starts waiting at the gate

	mu        sync.Mutex
	rows      []telemetry.Reading
	sizes     []int   // readings per committed batch
	commitSeq []int64 // events value at each commit
}

func (s *memSink) Name() string { return "mem" }
func (s *memSink) Close()       {}
func (s *memSink) Write(ctx context.Context, b []telemetry.Reading) error {
	if s.gate != nil {
		s.writing <- struct{}{}
		select {
		case <-s.gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if s.down.Load() {
		return errors.New("mem sink down")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rows = append(s.rows, b...) // copies: the pipeline reuses its batches
	s.sizes = append(s.sizes, len(b))
	s.commitSeq = append(s.commitSeq, events.Add(1))
	return nil
}

func (s *memSink) committed() []telemetry.Reading {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.rows)
}

type harness struct {
	p      *Pipeline
	client *fakeClient
	sink   *memSink
	buf    *sink.Buffered
	m      *metrics.Metrics
	spool  string // the spool directory
	stop   func() error
}

// testConfig subscribes to the field reports' trees and a JSON tree through a share group.
func testConfig() config.Config {
	cfg := config.Default()
	cfg.MQTT.MaxInflight = 100
	cfg.MQTT.Subs = []config.Subscription{
		{Filter: "pico/+/+", QoS: 1, Template: "{device}/{metric}/{sensor}", Format: "value"},
		{Filter: "iiot/+/+", QoS: 1, Template: "iiot/{device}/{metric}", Format: "value"},
		{Filter: "json/#", QoS: 1, ShareGroup: "g", Template: "json/{device}/#", Format: "json"},
	}
	cfg.Batch = config.Batch{MaxRows: 1000, Linger: time.Millisecond}
	cfg.Decode.MaxPayloadBytes = 1024
	return cfg
}

// start builds a Pipeline over a fake MQTT client and a Buffered memSink with an on-disk spool, and runs it.
// stop ends Run and returns its error.
func start(t *testing.T, cfg config.Config, s *memSink) *harness {
	t.Helper()
	h := &harness{client: &fakeClient{stop: make(chan struct{})}, sink: s, m: metrics.New(), spool: filepath.Join(t.TempDir(), "mem")}
	old := newClient
	newClient = func(p *Pipeline) (client, error) { h.client.p = p; return h.client, nil }
	t.Cleanup(func() { newClient = old })

	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	sp, err := spool.Open(h.spool, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	h.buf = sink.NewBuffered(s, sp, 10*time.Second, h.m, log)
	h.p, err = New(cfg, []*sink.Buffered{h.buf}, h.m, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.p.Run(ctx) }()
	var once sync.Once
	var runErr error
	h.stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case runErr = <-done:
			case <-time.After(20 * time.Second):
				runErr = errors.New("Run did not return")
			}
		})
		return runErr
	}
	t.Cleanup(func() { _ = h.stop() })
	waitFor(t, "connected and subscribed", h.p.Connected)
	return h
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestSubscribe: the broker is asked for every filter with its QoS, in configuration order (shared ones with
// their $share prefix), and the pipeline is ready once it answered.
func TestSubscribe(t *testing.T) {
	h := start(t, testConfig(), &memSink{})
	c := h.client
	c.mu.Lock()
	defer c.mu.Unlock()
	if want := []string{"pico/+/+", "iiot/+/+", "$share/g/json/#"}; !slices.Equal(c.subscribed, want) || !slices.Equal(c.qos, []byte{1, 1, 1}) {
		t.Errorf("subscribed %v QoS %v, want %v QoS 1", c.subscribed, c.qos, want)
	}
	if testutil.ToFloat64(h.m.Connected) != 1 || h.p.Ready() != nil {
		t.Errorf("connected gauge %v, Ready %v", testutil.ToFloat64(h.m.Connected), h.p.Ready())
	}
}

type reading struct {
	device, metric, sensor string
	value                  float64
}

func sortedReadings(rs []telemetry.Reading) []reading {
	out := make([]reading, len(rs))
	for i, r := range rs {
		out[i] = reading{r.Device, r.Metric, r.Sensor, r.Value}
	}
	slices.SortFunc(out, func(a, b reading) int { return strings.Compare(fmt.Sprint(a), fmt.Sprint(b)) })
	return out
}

// TestMessagesDecodedStoredAcked: messages of each subscription are decoded with its template and format,
// handed to the sink, and acknowledged once each; the counters follow.
func TestMessagesDecodedStoredAcked(t *testing.T) {
	s := &memSink{}
	h := start(t, testConfig(), s)
	before := time.Now()
	msgs := []*fakeMessage{
		newMessage("pico/temperature/dht22", "22.5"),
		newMessage("iiot/node1/humidity", " 40\n"),
		newMessage("json/dev7/env", `{"t": 1.5, "h": 2, "name": "x"}`),
	}
	for _, m := range msgs {
		h.client.deliver(m)
	}
	waitFor(t, "3 messages acknowledged", func() bool { return testutil.ToFloat64(h.m.Acked) == 3 })
	after := time.Now()
	for _, m := range msgs {
		if n := m.acks.Load(); n != 1 {
			t.Errorf("%s acknowledged %d times", m.topic, n)
		}
	}
	got := s.committed()
	want := []reading{
		{"dev7", "h", "", 2},
		{"dev7", "t", "", 1.5},
		{"node1", "humidity", "", 40},
		{"pico", "temperature", "dht22", 22.5},
	}
	if !slices.Equal(sortedReadings(got), want) {
		t.Errorf("stored %v, want %v", sortedReadings(got), want)
	}
	for _, r := range got {
		if r.Time.Before(before) || r.Time.After(after) { // no time in the payloads: the receive time
			t.Errorf("reading time %v outside the receive window", r.Time)
		}
	}
	for filter, n := range map[string]float64{"pico/+/+": 1, "iiot/+/+": 1, "json/#": 1} {
		if got := testutil.ToFloat64(h.m.Received.WithLabelValues(filter)); got != n {
			t.Errorf("received{subscription=%q} = %v, want %v", filter, got, n)
		}
	}
	if got := testutil.ToFloat64(h.m.Inflight); got != 0 {
		t.Errorf("inflight %v after every acknowledgement", got)
	}
	if got := testutil.ToFloat64(h.m.Written.WithLabelValues("mem")); got != 4 {
		t.Errorf("written %v, want 4", got)
	}
	if err := h.stop(); err != nil {
		t.Errorf("Run: %v", err)
	}
	if h.client.disconnects.Load() == 0 {
		t.Error("not disconnected at the end of Run")
	}
}

// TestAckOnlyAfterCommit: while the sink's write is in progress nothing is acknowledged; the
// acknowledgement follows the commit.
func TestAckOnlyAfterCommit(t *testing.T) {
	s := &memSink{gate: make(chan struct{}), writing: make(chan struct{}, 10)}
	h := start(t, testConfig(), s)
	m := newMessage("pico/temperature/dht22", "21")
	h.client.deliver(m)
	select {
	case <-s.writing:
	case <-time.After(10 * time.Second):
		t.Fatal("the sink was never asked to write")
	}
	time.Sleep(50 * time.Millisecond) // give a premature acknowledgement the chance to show
	if m.acked() || testutil.ToFloat64(h.m.Acked) != 0 || testutil.ToFloat64(h.m.Inflight) != 1 {
		t.Fatalf("acknowledged before the sink committed (acks %d, acked %v, inflight %v)",
			m.acks.Load(), testutil.ToFloat64(h.m.Acked), testutil.ToFloat64(h.m.Inflight))
	}
	s.gate <- struct{}{}
	waitFor(t, "acknowledgement after the commit", m.acked)
	s.mu.Lock()
	commit := s.commitSeq[0]
	s.mu.Unlock()
	if ack := m.ackedAt.Load(); ack <= commit {
		t.Errorf("acknowledged (event %d) before the commit (event %d)", ack, commit)
	}
	if testutil.ToFloat64(h.m.Inflight) != 0 || testutil.ToFloat64(h.m.Batches) != 1 {
		t.Errorf("inflight %v, batches %v", testutil.ToFloat64(h.m.Inflight), testutil.ToFloat64(h.m.Batches))
	}
}

// TestSinkDownAckAfterSpool: with the sink down the batch goes to the spool and is acknowledged only once it
// is there; replay delivers it when the sink returns.
func TestSinkDownAckAfterSpool(t *testing.T) {
	s := &memSink{}
	s.down.Store(true)
	h := start(t, testConfig(), s)
	m := newMessage("pico/temperature/dht22", "19.25")
	h.client.deliver(m)
	waitFor(t, "acknowledgement", m.acked)
	if got := testutil.ToFloat64(h.m.Spooled.WithLabelValues("mem")); got != 1 {
		t.Errorf("spooled %v readings before the acknowledgement, want 1", got)
	}
	if len(s.committed()) != 0 {
		t.Fatal("the down sink committed")
	}
	s.down.Store(false)
	waitFor(t, "replay into the sink", func() bool { return len(s.committed()) == 1 })
	if r := s.committed()[0]; r.Value != 19.25 || r.Device != "pico" {
		t.Errorf("replayed %+v", r)
	}
}

// TestNoAckWhileNothingStores: with the sink down and the spool unwritable nothing is acknowledged, the
// failures are counted and readiness says why; once the spool is repaired the batch is spooled and acknowledged.
func TestNoAckWhileNothingStores(t *testing.T) {
	s := &memSink{}
	s.down.Store(true)
	h := start(t, testConfig(), s)
	breakSpool(t, h.spool)
	m := newMessage("pico/temperature/dht22", "18")
	h.client.deliver(m)
	waitFor(t, "two failed attempts to store", func() bool {
		return testutil.ToFloat64(h.m.StoreFailures.WithLabelValues("mem")) >= 2
	})
	if m.acked() || testutil.ToFloat64(h.m.Acked) != 0 {
		t.Fatal("acknowledged a message that neither the sink nor the spool holds")
	}
	if err := h.p.Ready(); err == nil || !strings.Contains(err.Error(), "cannot store batches") {
		t.Errorf("Ready while nothing stores: %v", err)
	}
	repairSpool(t, h.spool)
	waitFor(t, "acknowledgement after the repair", m.acked)
	if got := testutil.ToFloat64(h.m.Spooled.WithLabelValues("mem")); got != 1 {
		t.Errorf("spooled %v, want 1", got)
	}
}

// TestShutdownWithoutStoreAcksNothing: when the shutdown grace runs out with a batch still unstored, that
// batch and every later one stay unacknowledged (the broker redelivers them), Run reports it and readiness
// says so.
func TestShutdownWithoutStoreAcksNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for ShutdownGrace")
	}
	s := &memSink{}
	s.down.Store(true)
	h := start(t, testConfig(), s)
	breakSpool(t, h.spool)
	m1 := newMessage("pico/temperature/dht22", "1")
	h.client.deliver(m1)
	waitFor(t, "a failed attempt to store", func() bool {
		return testutil.ToFloat64(h.m.StoreFailures.WithLabelValues("mem")) >= 1
	})
	m2 := newMessage("other/topic", "x") // would need no storing, but comes after m1
	h.client.deliver(m2)
	began := time.Now()
	err := h.stop()
	if err == nil || !strings.Contains(err.Error(), "final flush") {
		t.Errorf("Run returned %v, want the final flush's failure", err)
	}
	if d := time.Since(began); d < ShutdownGrace-time.Second || d > ShutdownGrace+5*time.Second {
		t.Errorf("Run returned after %v, want about ShutdownGrace (%v)", d, ShutdownGrace)
	}
	if m1.acked() || m2.acked() {
		t.Errorf("acknowledged after a failed delivery: m1 %v, m2 %v", m1.acked(), m2.acked())
	}
	if err := h.p.Ready(); err == nil || !strings.Contains(err.Error(), "a batch could not be stored") {
		t.Errorf("Ready: %v", err)
	}
	if got := testutil.ToFloat64(h.m.StoreFailures.WithLabelValues("all")); got != 1 {
		t.Errorf("store_failures_total{sink=all} = %v, want 1", got)
	}
}

// breakSpool replaces the spool directory by a file (in the field: a full disk or an I/O error).
func breakSpool(t *testing.T, dir string) {
	t.Helper()
	if err := os.Rename(dir, dir+".away"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
}

func repairSpool(t *testing.T, dir string) {
	t.Helper()
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(dir+".away", dir); err != nil {
		t.Fatal(err)
	}
}

// TestRejectionsCountedAndAcked: payloads the decoder rejects are counted by reason, never stored, and
// acknowledged (a redelivery would be rejected again); the valid message among them is stored.
func TestRejectionsCountedAndAcked(t *testing.T) {
	s := &memSink{}
	h := start(t, testConfig(), s)
	cases := []struct {
		topic, payload string
		reason         telemetry.Reason
	}{
		{"pico/temperature/dht22", "warm", telemetry.ReasonNotANumber},
		{"pico/temperature/dht22", "NaN", telemetry.ReasonNaN},
		{"pico/temperature/dht22", "1e999", telemetry.ReasonInf},
		{"pico/temperature/dht22", " \n", telemetry.ReasonEmpty},
		{"pico/temperature/dht22", "\xff1", telemetry.ReasonNotUTF8},
		{"pico/temperature/dht22", strings.Repeat("1", 2000), telemetry.ReasonOversized},
		{"pico//dht22", "1", telemetry.ReasonBadLabel}, // the template's metric is empty
		{"json/dev7/env", `{"t": 1`, telemetry.ReasonBadJSON},
		{"json/dev7/env", `{"name": "x"}`, telemetry.ReasonNoFields},
	}
	var msgs []*fakeMessage
	for _, c := range cases {
		m := newMessage(c.topic, c.payload)
		msgs = append(msgs, m)
		h.client.deliver(m)
	}
	good := newMessage("pico/temperature/dht22", "20")
	h.client.deliver(good)
	msgs = append(msgs, good)
	waitFor(t, "every message acknowledged", func() bool { return testutil.ToFloat64(h.m.Acked) == float64(len(msgs)) })
	for i, m := range msgs {
		if n := m.acks.Load(); n != 1 {
			t.Errorf("message %d (%s) acknowledged %d times", i, m.topic, n)
		}
	}
	counts := map[telemetry.Reason]float64{}
	for _, c := range cases {
		counts[c.reason]++
	}
	for _, r := range telemetry.Reasons() {
		if got := testutil.ToFloat64(h.m.Rejected.WithLabelValues(string(r))); got != counts[r] {
			t.Errorf("rejected{reason=%s} = %v, want %v", r, got, counts[r])
		}
	}
	if got := sortedReadings(s.committed()); !slices.Equal(got, []reading{{"pico", "temperature", "dht22", 20}}) {
		t.Errorf("stored %v, want only the valid reading", got)
	}
	if got := testutil.ToFloat64(h.m.Received.WithLabelValues("pico/+/+")); got != 8 {
		t.Errorf("received{pico/+/+} = %v, want 8 (rejected ones count as received)", got)
	}
}

// TestUnknownSubscription: a message for a filter the configuration does not have (a persistent session
// remembers old subscriptions) is counted as no_subscription and acknowledged, never stored; in -leave mode,
// once the session's filters are unsubscribed, a message the broker had queued for it is still matched to its
// subscription and stored.
func TestUnknownSubscription(t *testing.T) {
	s := &memSink{}
	h := start(t, testConfig(), s)
	stale := newMessage("legacy/node/temp", "5")
	h.client.deliver(stale)
	waitFor(t, "acknowledgement of the stale message", stale.acked)
	if got := testutil.ToFloat64(h.m.Rejected.WithLabelValues(reasonNoSubscription)); got != 1 {
		t.Errorf("rejected{no_subscription} = %v, want 1", got)
	}
	if len(s.committed()) != 0 {
		t.Errorf("stored %v", s.committed())
	}

	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	cfg.MQTT.Leave = true
	h = start(t, cfg, s)
	if !h.p.left.Load() {
		t.Fatal("-leave: not unsubscribed")
	}
	queued := newMessage("iiot/node2/pressure", "1013")
	h.client.deliver(queued)
	waitFor(t, "acknowledgement of the queued message", queued.acked)
	if got := sortedReadings(s.committed()); !slices.Equal(got, []reading{{"node2", "pressure", "", 1013}}) {
		t.Errorf("stored %v", got)
	}
	if got := testutil.ToFloat64(h.m.Rejected.WithLabelValues(reasonNoSubscription)); got != 0 {
		t.Errorf("-leave: rejected{no_subscription} = %v for a configured filter, want 0", got)
	}
	if got := testutil.ToFloat64(h.m.Received.WithLabelValues("iiot/+/+")); got != 1 {
		t.Errorf("received{iiot/+/+} = %v, want 1", got)
	}
}

// TestOverlappingSubscriptions: a delivered message is routed to the first configured subscription whose
// filter matches, never to two (one reading, one acknowledgement). A broker may also send a copy per matching
// filter (MQTT 3.1.1 §3.3.5); each copy is then a message of its own.
func TestOverlappingSubscriptions(t *testing.T) {
	cfg := testConfig()
	cfg.MQTT.Subs = []config.Subscription{
		{Filter: "pico/+/+", QoS: 1, Template: "{device}/{metric}/{sensor}", Format: "value"},
		{Filter: "pico/#", QoS: 0, Template: "{device}/#", Labels: config.Labels{Metric: "catchall"}, Format: "value"},
	}
	s := &memSink{}
	h := start(t, cfg, s)
	m := newMessage("pico/temperature/dht22", "23")
	h.client.deliver(m)
	waitFor(t, "acknowledgement", m.acked)
	time.Sleep(20 * time.Millisecond) // a second copy would be in the same or the next batch
	if got := sortedReadings(s.committed()); !slices.Equal(got, []reading{{"pico", "temperature", "dht22", 23}}) {
		t.Errorf("stored %v, want the first subscription's reading only", got)
	}
	if n := m.acks.Load(); n != 1 {
		t.Errorf("acknowledged %d times", n)
	}
	if a, b := testutil.ToFloat64(h.m.Received.WithLabelValues("pico/+/+")), testutil.ToFloat64(h.m.Received.WithLabelValues("pico/#")); a != 1 || b != 0 {
		t.Errorf("received pico/+/+ %v, pico/# %v; want 1 and 0", a, b)
	}
}

// TestShutdownFlushes: messages still in an open batch when the context ends are stored and acknowledged
// before Run returns, and the client disconnects.
func TestShutdownFlushes(t *testing.T) {
	cfg := testConfig()
	cfg.Batch.Linger = time.Hour // the batch would stay open
	s := &memSink{}
	h := start(t, cfg, s)
	m := newMessage("pico/temperature/dht22", "17")
	h.client.deliver(m)
	waitFor(t, "the message taken into a batch", func() bool {
		return testutil.ToFloat64(h.m.Received.WithLabelValues("pico/+/+")) == 1
	})
	if m.acked() {
		t.Fatal("acknowledged before the batch closed")
	}
	if err := h.stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if !m.acked() || len(s.committed()) != 1 {
		t.Errorf("after Run: acked %v, stored %d", m.acked(), len(s.committed()))
	}
	if h.client.disconnects.Load() != 1 || h.p.Connected() || testutil.ToFloat64(h.m.Connected) != 0 {
		t.Errorf("disconnects %d, Connected %v, gauge %v", h.client.disconnects.Load(), h.p.Connected(), testutil.ToFloat64(h.m.Connected))
	}
	if err := h.p.Ready(); err == nil || !strings.Contains(err.Error(), "MQTT not connected") {
		t.Errorf("Ready after Run: %v", err)
	}
	late := newMessage("pico/temperature/dht22", "16")
	h.client.deliver(late) // after Run: not taken, so not acknowledged (the broker redelivers it)
	if late.acked() || testutil.ToFloat64(h.m.Received.WithLabelValues("pico/+/+")) != 1 {
		t.Error("a message delivered after shutdown was taken")
	}
}

// TestBatchLimits: a batch holds at most max_rows messages and max_readings readings (default 4 × max_rows), so a
// gateway's many-reading messages make larger transactions than one-reading messages, never larger than the cap.
func TestBatchLimits(t *testing.T) {
	for _, c := range []struct {
		maxReadings, perMsg, wantMax int
	}{
		{0, 1, 10},  // one reading per message: max_rows messages
		{0, 5, 40},  // five per message: 4 × max_rows readings (8 messages)
		{15, 5, 15}, // an explicit cap
		{0, 50, 50}, // one message over the cap is still one batch, never split
	} {
		cfg := testConfig()
		cfg.Batch = config.Batch{MaxRows: 10, MaxReadings: c.maxReadings, Linger: 50 * time.Millisecond}
		s := &memSink{gate: make(chan struct{}), writing: make(chan struct{}, 1000)}
		h := start(t, cfg, s)
		const msgs = 60
		for i := 0; i < msgs; i++ {
			var b strings.Builder
			b.WriteByte('{')
			for j := 0; j < c.perMsg; j++ {
				if j > 0 {
					b.WriteByte(',')
				}
				fmt.Fprintf(&b, `"r%d":%d`, j, i)
			}
			b.WriteByte('}')
			h.client.deliver(newMessage(fmt.Sprintf("json/dev%d/env", i), b.String()))
		}
		close(s.gate) // every message is queued before the first batch commits
		waitFor(t, "every message acknowledged", func() bool { return testutil.ToFloat64(h.m.Acked) == msgs })
		s.mu.Lock()
		sizes := slices.Clone(s.sizes)
		s.mu.Unlock()
		if slices.Max(sizes) != c.wantMax {
			t.Errorf("max_readings %d, %d readings per message: batch sizes %v, want the largest %d", c.maxReadings, c.perMsg, sizes, c.wantMax)
		}
		_ = h.stop()
	}
}

// recordingAcker records the acknowledgements queued on it and its flushes.
type recordingAcker struct {
	acks    []uint16
	kinds   []byte
	flushes int
}

func (a *recordingAcker) QueueAck(kind byte, id uint16) {
	a.acks, a.kinds = append(a.acks, id), append(a.kinds, kind)
}
func (a *recordingAcker) Flush() error { a.flushes++; return nil }

// TestAcksGoToTheirConnection: each acknowledgement is queued on the connection its message arrived on, in
// receipt order, with the kind its QoS needs (none for QoS 0); a batch from one connection is written with one
// flush, and a batch spanning a reconnect flushes each connection for its own messages.
func TestAcksGoToTheirConnection(t *testing.T) {
	p := &Pipeline{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	old, cur := &recordingAcker{}, &recordingAcker{}
	p.ack([]message{
		{topic: "a", session: old, id: 7, kind: mqttsub.AckPuback},
		{topic: "b", session: old, id: 8, kind: mqttsub.AckPubrec},
		{topic: "c"}, // QoS 0
		{topic: "d", session: cur, id: 7, kind: mqttsub.AckPuback},
		{topic: "e", session: cur, id: 9, kind: mqttsub.AckPuback},
	})
	if !slices.Equal(old.acks, []uint16{7, 8}) || !slices.Equal(old.kinds, []byte{mqttsub.AckPuback, mqttsub.AckPubrec}) || old.flushes != 1 {
		t.Errorf("first connection: acks %v kinds %x flushes %d", old.acks, old.kinds, old.flushes)
	}
	if !slices.Equal(cur.acks, []uint16{7, 9}) || cur.flushes != 1 {
		t.Errorf("second connection: acks %v flushes %d", cur.acks, cur.flushes)
	}
}
