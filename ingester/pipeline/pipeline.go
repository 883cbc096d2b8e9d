// Package pipeline is fieldline-ingester's core: MQTT subscription (paho, manual acknowledgements), decoding
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

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/fieldline-iot/fieldline/ingester/config"
	"github.com/fieldline-iot/fieldline/ingester/metrics"
	"github.com/fieldline-iot/fieldline/ingester/sink"
	"github.com/fieldline-iot/fieldline/internal/mqttconn"
	"github.com/fieldline-iot/fieldline/internal/redact"
	"github.com/fieldline-iot/fieldline/internal/retry"
	"github.com/fieldline-iot/fieldline/internal/telemetry"
)

// reasonNoSubscription counts messages the broker delivers for a filter the configuration no longer has
// (a persistent session remembers old subscriptions). They are acknowledged so they are not redelivered forever.
const reasonNoSubscription = "no_subscription"

// ShutdownGrace bounds the final flush after the context ends (SIGTERM must exit within 10 s).
const ShutdownGrace = 7 * time.Second

// newClient builds the pipeline's paho clients. Tests substitute a fake mqtt.Client (see pipeline_test.go).
var newClient = mqtt.NewClient

type subscription struct {
	cfg      config.Subscription
	dec      *telemetry.Decoder
	received prometheus.Counter
}

type inbound struct {
	msg      mqtt.Message
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
	lastMsg        mqtt.Message           // router goroutine only: drops the second delivery of one message to overlapping routes
	client         mqtt.Client
	runCtx         context.Context // Run's context, for reconnects started from paho callbacks

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
	msgs     []mqtt.Message
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
			msgs:     make([]mqtt.Message, 0, cfg.Batch.MaxRows+64),
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
		p.subs = append(p.subs, &subscription{cfg: sc, dec: dec, received: m.Received.WithLabelValues(sc.Filter)})
	}
	opts, err := p.clientOptions()
	if err != nil {
		return nil, err
	}
	p.client = newClient(opts)
	// Routes are added before connecting: a persistent session's queued messages arrive right after CONNACK,
	// before any SUBSCRIBE, and paho leaves unrouted messages unacknowledged. Routes are matched in this order,
	// so with overlapping filters the first configured subscription wins.
	for _, s := range p.subs {
		p.client.AddRoute(s.cfg.BrokerFilter(), p.handler(s))
	}
	return p, nil
}

func (p *Pipeline) clientOptions() (*mqtt.ClientOptions, error) {
	c := p.cfg.MQTT
	b := mqttconn.Broker{URL: c.URL, ClientID: c.ClientID, Username: c.Username, Password: c.Password}
	if mqttconn.SecureScheme(c.URL) || c.TLS.CAFile != "" || c.TLS.CertFile != "" {
		tc, err := c.TLS.Config("mqtt.tls")
		if err != nil {
			return nil, err
		}
		b.TLS = tc
	}
	o := b.ClientOptions().
		SetCleanSession(c.CleanSession).
		SetAutoAckDisabled(true). // acknowledge only after the sinks commit
		SetOrderMatters(true).    // handlers run in the router goroutine, in order; ours only enqueue
		SetKeepAlive(c.KeepAlive).
		SetPingTimeout(10 * time.Second).
		SetAutoReconnect(true).
		SetMaxReconnectInterval(10 * time.Second). // paho's default backs off to 10 minutes
		SetConnectRetry(false).                    // connectLoop retries the first connection itself, logging why each attempt failed
		SetStore(mqttconn.NoStore{}).
		SetDefaultPublishHandler(p.handler(nil)).
		SetOnConnectHandler(p.onConnect).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) {
			p.connected.Store(false)
			p.m.Connected.Set(0)
			p.m.ConnectionsLost.Inc()
			p.log.Warn("MQTT connection lost; reconnecting (unacknowledged messages will be redelivered)", "err", err)
		}).
		SetReconnectingHandler(func(_ mqtt.Client, _ *mqtt.ClientOptions) {
			p.log.Info("MQTT reconnecting", "broker", redact.URL(c.URL))
		})
	return o, nil
}

func (p *Pipeline) onConnect(c mqtt.Client) {
	filters := make(map[string]byte, len(p.subs))
	for _, s := range p.subs {
		filters[s.cfg.BrokerFilter()] = s.cfg.QoS
	}
	if p.cfg.MQTT.Leave {
		p.unsubscribeToLeave(c, filters)
		return
	}
	tok := c.SubscribeMultiple(filters, nil) // nil callback: the routes added in New handle messages
	if !tok.WaitTimeout(15*time.Second) || tok.Error() != nil {
		err := tok.Error()
		if err == nil {
			err = errors.New("no SUBACK within 15s")
		}
		p.log.Error("MQTT subscribe failed; reconnecting", "err", err)
		go c.Disconnect(100) // AutoReconnect does not apply to a deliberate disconnect: reconnect by hand
		go p.reconnect()
		return
	}
	p.connected.Store(true)
	p.m.Connected.Set(1)
	p.log.Info("MQTT connected and subscribed", "broker", redact.URL(p.cfg.MQTT.URL), "client_id", p.cfg.MQTT.ClientID,
		"clean_session", p.cfg.MQTT.CleanSession, "subscriptions", len(filters))
}

// unsubscribeToLeave (mode -leave) removes the session's subscriptions, so the broker routes no new message to
// it (a share group's other members get them all), while what it already queued for the session still
// arrives and is stored and acknowledged.
func (p *Pipeline) unsubscribeToLeave(c mqtt.Client, filters map[string]byte) {
	names := make([]string, 0, len(filters))
	for f := range filters {
		names = append(names, f)
	}
	tok := c.Unsubscribe(names...)
	if !tok.WaitTimeout(15*time.Second) || tok.Error() != nil {
		p.log.Error("leave: MQTT unsubscribe failed; reconnecting", "err", tok.Error())
		go c.Disconnect(100)
		go p.reconnect()
		return
	}
	p.connected.Store(true)
	p.m.Connected.Set(1)
	p.left.Store(true)
	p.log.Info("leave: unsubscribed; storing what the broker queued for this session", "client_id", p.cfg.MQTT.ClientID, "filters", names)
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

// connectLoop makes the first connection, retrying with backoff (1 s → 10 s) and logging each failure (a wrong
// password or an unreachable broker says so). Later drops are paho's AutoReconnect's business.
func (p *Pipeline) connectLoop(ctx context.Context) {
	delay := retry.New(time.Second, 10*time.Second)
	for ctx.Err() == nil {
		backoff := delay.Next()
		p.log.Info("connecting to MQTT", "broker", redact.URL(p.cfg.MQTT.URL), "client_id", p.cfg.MQTT.ClientID)
		tok := p.client.Connect()
		if !tok.WaitTimeout(20 * time.Second) {
			p.log.Warn("MQTT connect failed; retrying", "err", "no CONNACK within 20s", "retry_in", backoff)
		} else if err := tok.Error(); err != nil {
			p.log.Warn("MQTT connect failed; retrying", "err", err, "retry_in", backoff)
		} else {
			return
		}
		retry.Wait(ctx, backoff)
	}
}

func (p *Pipeline) reconnect() {
	time.Sleep(2 * time.Second)
	if !p.closing.Load() {
		p.connectLoop(p.runCtx)
	}
}

// route finds the first configured subscription whose filter matches topic (nil: none). paho's router does this
// for the routes added in New, but it also drops a route when its filter is unsubscribed, while messages the
// broker already queued for the session still arrive (mode -leave): those reach the default handler and must be
// stored, not counted as unsubscribed.
func (p *Pipeline) route(topic string) *subscription {
	for _, s := range p.subs {
		if mqttconn.Match(s.cfg.Filter, topic) {
			return s
		}
	}
	return nil
}

// handler enqueues a message for the batch loop. It never decodes or blocks on I/O: paho drops the connection
// when a handler blocks. The queue holds mqtt.max_inflight messages, which must be at least the broker's
// in-flight window, so it does not fill while the broker waits for acknowledgements.
func (p *Pipeline) handler(s *subscription) mqtt.MessageHandler {
	return func(_ mqtt.Client, m mqtt.Message) {
		if m == p.lastMsg {
			return
		}
		p.lastMsg = m
		if p.closing.Load() {
			return // not acknowledged: the broker redelivers it to the next session
		}
		if s == nil {
			s = p.route(m.Topic())
		}
		now := time.Now()
		p.lastArrival.Store(now.UnixNano())
		p.unacked.Add(1)
		p.m.Inflight.Inc()
		p.in <- inbound{msg: m, sub: s, received: now}
	}
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
	p.runCtx = ctx
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

	go p.connectLoop(ctx)

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
	p.client.Disconnect(250)
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
	opts, err := p.clientOptions()
	if err != nil {
		return err
	}
	opts.SetCleanSession(true).SetAutoReconnect(false).SetOnConnectHandler(nil).SetConnectionLostHandler(nil)
	c := newClient(opts)
	tok := c.Connect()
	if !tok.WaitTimeout(15*time.Second) || tok.Error() != nil {
		return fmt.Errorf("leave: end the persistent session: %w", tok.Error())
	}
	c.Disconnect(250)
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
			for _, m := range b.msgs {
				m.Ack() // paho drops acks for messages of a connection that has since been lost (they are redelivered)
			}
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

// add decodes one message into the current batch (or counts its rejection).
func (p *Pipeline) add(in inbound) {
	b := p.cur
	b.msgs = append(b.msgs, in.msg)
	if in.sub == nil {
		p.rejected[reasonNoSubscription].Inc()
		p.rejects.note(reasonNoSubscription, in.msg.Topic(), "no configured subscription matches this topic")
		return
	}
	in.sub.received.Inc()
	var err error
	b.readings, err = in.sub.dec.Decode(in.msg.Topic(), in.msg.Payload(), in.received, b.readings)
	if err != nil {
		r, detail := telemetry.ReasonOf(err)
		reason := string(r)
		c, ok := p.rejected[reason]
		if !ok {
			c = p.m.Rejected.WithLabelValues(reason)
			p.rejected[reason] = c
		}
		c.Inc()
		p.rejects.note(reason, in.msg.Topic(), detail)
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
