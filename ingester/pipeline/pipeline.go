// Package pipeline is fieldline-ingester's core: MQTT subscription (internal/mqttsub, acknowledgements written
// by the pipeline), decoding
// with internal/telemetry, batching, delivery to every sink, and acknowledgement to the broker only after every
// enabled sink has committed the batch or durably spooled it.
//
// Batching is "natural": the batch loop takes what is queued (up to batch.max_rows) and closes the batch once the
// queue is empty and batch.linger (default 5 ms) has passed since the batch's first message. A lone message waits
// at most linger; a trickle of 1 000 msg/s goes out in batches of ~5 instead of one transaction (and one NOTIFY)
// per message; a busy stream fills large batches (messages pile up while the previous batch commits).
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fieldline-iot/fieldline/ingester/config"
	"github.com/fieldline-iot/fieldline/ingester/metrics"
	"github.com/fieldline-iot/fieldline/ingester/sink"
	"github.com/fieldline-iot/fieldline/internal/mqttconn"
	"github.com/fieldline-iot/fieldline/internal/redact"
	"github.com/fieldline-iot/fieldline/internal/telemetry"
)

// reasonNoSubscription counts messages the broker delivers for a filter the configuration no longer has
// (a persistent session remembers old subscriptions). They are acknowledged so they are not redelivered forever.
const reasonNoSubscription = "no_subscription"

// ShutdownGrace bounds the final flush after the context ends (SIGTERM must exit within 10 s).
const ShutdownGrace = 7 * time.Second

type subscription struct {
	cfg      config.Subscription
	levels   []string // the filter's levels, for mqttconn.MatchLevels
	dec      *telemetry.Decoder
	received prometheus.Counter
}

type inbound struct {
	msg      message
	sub      *subscription // nil: no configured subscription matched
	received time.Time
}

// Pipeline runs one MQTT client feeding the sinks.
type Pipeline struct {
	cfg   config.Config
	sinks []*sink.Buffered
	m     *metrics.Metrics
	log   *slog.Logger
	subs  []*subscription

	in             chan inbound
	closing        atomic.Bool
	connected      atomic.Bool
	deliveryFailed atomic.Pointer[string] // set by the acker at its first failed batch
	left           atomic.Bool            // -leave: unsubscribed
	lastArrival    atomic.Int64           // unix nanoseconds of the last message received
	unacked        atomic.Int64           // messages received and not yet acknowledged
	client         client

	// batch loop only
	cur      *batch
	free     chan *batch // batches ready for reuse (inFlight+1 of them)
	order    chan *batch // submitted batches, in receipt order, for the acker
	rejects  rejectLog
	rejected map[string]prometheus.Counter
}

// inFlight is how many batches may be committing at once while the next one fills. Two overlap decoding and
// acknowledging one batch with committing the other; acknowledgements still go out strictly in receipt order.
const inFlight = 2

// batch is one group of messages and the readings decoded from them.
type batch struct {
	readings []telemetry.Reading
	msgs     []message
	done     chan error
}

// New validates subscriptions and builds the MQTT client (not connected yet).
func New(cfg config.Config, sinks []*sink.Buffered, m *metrics.Metrics, log *slog.Logger) (*Pipeline, error) {
	if len(sinks) == 0 {
		return nil, errors.New("pipeline: no sink")
	}
	p := &Pipeline{
		cfg: cfg, sinks: sinks, m: m, log: log,
		in:       make(chan inbound, cfg.MQTT.MaxInflight),
		free:     make(chan *batch, inFlight+1),
		order:    make(chan *batch, inFlight),
		rejected: map[string]prometheus.Counter{},
		rejects:  rejectLog{log: log, every: 10 * time.Second, last: map[string]time.Time{}, suppressed: map[string]int{}},
	}
	for range inFlight + 1 {
		p.free <- &batch{
			readings: make([]telemetry.Reading, 0, cfg.Batch.MaxRows+64),
			msgs:     make([]message, 0, cfg.Batch.MaxRows+64),
			done:     make(chan error, 1),
		}
	}
	p.cur = <-p.free
	for _, r := range telemetry.Reasons() {
		p.rejected[string(r)] = m.Rejected.WithLabelValues(string(r))
	}
	p.rejected[reasonNoSubscription] = m.Rejected.WithLabelValues(reasonNoSubscription)
	for i, sc := range cfg.MQTT.Subs {
		dec, err := cfg.NewDecoder(sc)
		if err != nil {
			return nil, &config.Error{Key: fmt.Sprintf("mqtt.subscriptions[%d]", i), Err: err}
		}
		p.subs = append(p.subs, &subscription{cfg: sc, levels: mqttconn.FilterLevels(sc.Filter), dec: dec,
			received: m.Received.WithLabelValues(sc.Filter)})
	}
	var err error
	if p.client, err = newClient(p); err != nil {
		return nil, err
	}
	return p, nil
}

// leaveWhenDrained (mode -leave) ends Run once the session is unsubscribed and no message has arrived for
// quiet, with everything received acknowledged.
func (p *Pipeline) leaveWhenDrained(ctx context.Context, stop context.CancelFunc, quiet time.Duration) {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		last := time.Unix(0, p.lastArrival.Load())
		if p.left.Load() && time.Since(last) >= quiet && p.unacked.Load() == 0 {
			p.log.Info("leave: nothing more queued for this session", "quiet", quiet)
			stop()
			return
		}
	}
}

// brokerFilters are the filters to subscribe to, as the broker sees them (shared ones with their $share/<group>/
// prefix), in configuration order, and their QoS.
func (p *Pipeline) brokerFilters() (filters []string, qos []byte) {
	for _, s := range p.subs {
		filters = append(filters, s.cfg.BrokerFilter())
		qos = append(qos, s.cfg.QoS)
	}
	return filters, qos
}

// route finds the first configured subscription whose filter matches topic (nil: none: a persistent session
// remembers filters the configuration no longer has). With overlapping filters the first configured one wins,
// so a message is stored once. Messages the broker queued for the session before -leave unsubscribed it still
// match their subscription and are stored.
func (p *Pipeline) route(topic string) *subscription {
	for _, s := range p.subs {
		if mqttconn.MatchLevels(s.levels, topic) {
			return s
		}
	}
	return nil
}

// receive enqueues a message for the batch loop (from the MQTT client's reader goroutine). It never decodes or
// blocks on I/O. The queue holds mqtt.max_inflight messages, which must be at least the broker's in-flight
// window, so it does not fill while the broker waits for acknowledgements.
func (p *Pipeline) receive(m message) {
	if p.closing.Load() {
		return // not acknowledged: the broker redelivers it to the next session
	}
	now := time.Now()
	p.lastArrival.Store(now.UnixNano())
	p.unacked.Add(1)
	p.m.Inflight.Inc()
	p.in <- inbound{msg: m, sub: p.route(m.topic), received: now}
}

// subscribed is called when the broker has answered the subscription: messages flow.
func (p *Pipeline) subscribed() {
	p.connected.Store(true)
	p.m.Connected.Set(1)
	p.log.Info("MQTT connected and subscribed", "broker", redact.URL(p.cfg.MQTT.URL), "client_id", p.cfg.MQTT.ClientID,
		"clean_session", p.cfg.MQTT.CleanSession, "subscriptions", len(p.subs))
}

// leftSession (mode -leave) is called once the broker has removed the session's subscriptions, so it routes
// no new message to it (a share group's other members get them all), while what it already queued for the
// session still arrives and is stored and acknowledged.
func (p *Pipeline) leftSession() {
	p.connected.Store(true)
	p.m.Connected.Set(1)
	p.left.Store(true)
	p.log.Info("leave: unsubscribed; storing what the broker queued for this session", "client_id", p.cfg.MQTT.ClientID, "subscriptions", len(p.subs))
}

// lost is called when an established connection ends; the client reconnects.
func (p *Pipeline) lost(err error) {
	p.connected.Store(false)
	p.m.Connected.Set(0)
	p.m.ConnectionsLost.Inc()
	p.log.Warn("MQTT connection lost; reconnecting (unacknowledged messages will be redelivered)", "err", err)
}

// Connected reports whether the MQTT client is connected and subscribed.
func (p *Pipeline) Connected() bool { return p.connected.Load() }

// Ready returns nil when messages flow: connected and subscribed, and every sink ready (schema migrated,
// batches storable, spool not full). Otherwise it names every reason, for /readyz.
func (p *Pipeline) Ready() error {
	var errs []error
	if !p.connected.Load() {
		errs = append(errs, errors.New("MQTT not connected"))
	}
	if e := p.deliveryFailed.Load(); e != nil {
		errs = append(errs, fmt.Errorf("a batch could not be stored: acknowledging nothing more; exiting (%s)", *e))
	}
	for _, s := range p.sinks {
		if err := s.Ready(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Run connects and processes messages until ctx ends, then stops taking messages, flushes and acknowledges
// what it holds (within ShutdownGrace), and disconnects. Sinks' replay loops run for as long as Run does.
func (p *Pipeline) Run(ctx context.Context) error {
	if p.cfg.MQTT.Leave {
		var stop context.CancelFunc
		ctx, stop = context.WithCancel(ctx)
		defer stop()
		p.lastArrival.Store(time.Now().UnixNano())
		go p.leaveWhenDrained(ctx, stop, 3*time.Second)
	}
	replayCtx, stopReplay := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	for _, s := range p.sinks {
		wg.Add(1)
		go func() { defer wg.Done(); s.Run(replayCtx) }()
	}
	// Writes outlive ctx by up to ShutdownGrace, so the final batches can still commit and be acknowledged.
	writeCtx, cancelWrites := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWrites()
	ackerDone := make(chan error, 1)
	go func() { ackerDone <- p.acker() }()

	go p.client.Run()

	p.batchLoop(ctx, writeCtx)

	// Shutdown: stop enqueueing, take what was received, commit it within the grace period, ack, disconnect.
	p.closing.Store(true)
	grace := time.AfterFunc(ShutdownGrace, cancelWrites)
	defer grace.Stop()
	for {
		select {
		case in := <-p.in:
			p.add(in)
			if p.full() {
				p.submit(writeCtx)
			}
			continue
		default:
		}
		break
	}
	p.submit(writeCtx)
	close(p.order)
	err := <-ackerDone
	p.client.Disconnect()
	p.connected.Store(false)
	p.m.Connected.Set(0)
	if p.cfg.MQTT.Leave && err == nil && p.left.Load() {
		if derr := p.endSession(); derr != nil {
			err = derr
		}
	}
	stopReplay()
	wg.Wait()
	if err != nil {
		return fmt.Errorf("final flush: %w", err)
	}
	return nil
}

// endSession (mode -leave) connects once with a clean session under the same client id, which makes the broker
// discard the persistent session, so nothing is queued for this member any more.
func (p *Pipeline) endSession() error {
	if err := p.client.EndSession(); err != nil {
		return fmt.Errorf("leave: end the persistent session: %w", err)
	}
	p.log.Info("leave: persistent session ended; this client id is out of its share group", "client_id", p.cfg.MQTT.ClientID)
	return nil
}

func (p *Pipeline) full() bool {
	return len(p.cur.readings) >= p.cfg.Batch.ReadingsLimit() || len(p.cur.msgs) >= p.cfg.Batch.MaxRows
}

func (p *Pipeline) batchLoop(ctx, writeCtx context.Context) {
	linger := p.cfg.Batch.Linger
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case in := <-p.in:
			p.add(in)
		case <-ctx.Done():
			return
		}
		// The batch closes when full, or once the queue is empty and linger has passed since its first
		// message (Kafka's linger.ms): a steady trickle still leaves within linger, a burst fills the batch.
		deadline := time.Now().Add(linger)
	fill:
		for !p.full() {
			select {
			case in := <-p.in:
				p.add(in)
				continue
			default:
			}
			wait := time.Until(deadline)
			if wait <= 0 {
				break
			}
			timer.Reset(wait)
			select {
			case in := <-p.in:
				p.add(in)
				if !timer.Stop() {
					<-timer.C
				}
			case <-timer.C:
				break fill
			case <-ctx.Done():
				timer.Stop()
				break fill
			}
		}
		p.submit(writeCtx)
	}
}

// submit starts committing the current batch and takes a fresh one. It blocks while inFlight batches are
// committing (their messages stay unacknowledged, so the broker's in-flight window holds the rest back).
func (p *Pipeline) submit(writeCtx context.Context) {
	b := p.cur
	if len(b.msgs) == 0 {
		return
	}
	p.order <- b
	go func() { b.done <- p.deliver(writeCtx, b.readings) }()
	p.cur = <-p.free
}

// deliver hands readings to every sink in parallel; nil once all committed or spooled them.
func (p *Pipeline) deliver(ctx context.Context, readings []telemetry.Reading) error {
	if len(readings) == 0 {
		return nil
	}
	if len(p.sinks) == 1 {
		return p.sinks[0].Accept(ctx, readings)
	}
	errs := make([]error, len(p.sinks))
	var wg sync.WaitGroup
	for i, s := range p.sinks {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = s.Accept(ctx, readings) }()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// acker acknowledges batches in the order they were received, each once its delivery succeeded. After a
// failure (only when the shutdown grace ran out) it acknowledges nothing more: MQTT wants acknowledgements in
// receipt order, and the broker redelivers everything unacknowledged to the next session.
func (p *Pipeline) acker() error {
	var failed error
	for b := range p.order {
		err := <-b.done
		if err == nil && failed == nil {
			if n := len(b.readings); n > 0 {
				p.m.Batches.Inc()
				p.m.BatchRows.Observe(float64(n))
			}
			p.ack(b.msgs)
			n := float64(len(b.msgs))
			p.m.Acked.Add(n)
			p.m.Inflight.Sub(n)
			p.unacked.Add(-int64(len(b.msgs)))
		} else if failed == nil {
			failed = err
			msg := err.Error()
			p.deliveryFailed.Store(&msg)
			p.m.StoreFailures.WithLabelValues("all").Add(1)
			p.log.Error("a batch could not be stored before shutdown: acknowledging nothing more (the broker redelivers the rest to the next session)",
				"err", err, "messages", len(b.msgs))
		}
		clear(b.readings)
		clear(b.msgs)
		b.readings, b.msgs = b.readings[:0], b.msgs[:0]
		p.free <- b
	}
	return failed
}

// ack queues the acknowledgements of msgs (in receipt order) on the sessions they arrived on and writes them:
// one write for a batch from one connection.
func (p *Pipeline) ack(msgs []message) {
	var last acker
	for i := range msgs {
		m := &msgs[i]
		if m.kind == 0 {
			continue
		}
		if m.session != last && last != nil {
			p.flush(last)
		}
		last = m.session
		m.session.QueueAck(m.kind, m.id)
	}
	if last != nil {
		p.flush(last)
	}
}

func (p *Pipeline) flush(a acker) {
	if err := a.Flush(); err != nil {
		// The connection is gone; its messages are redelivered on the next one.
		p.log.Debug("MQTT acknowledgements not written", "err", err)
	}
}

// add decodes one message into the current batch (or counts its rejection).
func (p *Pipeline) add(in inbound) {
	b := p.cur
	b.msgs = append(b.msgs, in.msg)
	if in.sub == nil {
		p.rejected[reasonNoSubscription].Inc()
		p.rejects.note(reasonNoSubscription, in.msg.topic, "no configured subscription matches this topic")
		return
	}
	in.sub.received.Inc()
	var err error
	if in.msg.skipped > 0 {
		err = telemetry.Oversized(in.msg.skipped, p.cfg.Decode.MaxPayloadBytes)
	} else {
		b.readings, err = in.sub.dec.Decode(in.msg.topic, in.msg.payload, in.received, b.readings)
	}
	if err != nil {
		r, detail := telemetry.ReasonOf(err)
		reason := string(r)
		c, ok := p.rejected[reason]
		if !ok {
			c = p.m.Rejected.WithLabelValues(reason)
			p.rejected[reason] = c
		}
		c.Inc()
		p.rejects.note(reason, in.msg.topic, detail)
	}
}

// rejectLog logs rejections at most once per reason and interval, with how many were suppressed.
type rejectLog struct {
	log        *slog.Logger
	every      time.Duration
	last       map[string]time.Time
	suppressed map[string]int
}

func (r *rejectLog) note(reason, topic, detail string) {
	now := time.Now()
	if now.Sub(r.last[reason]) < r.every {
		r.suppressed[reason]++
		return
	}
	r.log.Warn("message rejected (counted in fieldline_ingester_messages_rejected_total, not stored)",
		"reason", reason, "topic", topic, "detail", detail, "suppressed_since_last", r.suppressed[reason])
	r.last[reason] = now
	r.suppressed[reason] = 0
}
