// Package pipeline is fieldline-ingester's core: MQTT subscription (paho, manual acknowledgements), decoding
// with pkg/telemetry, batching, delivery to every sink, and acknowledgement to the broker only after every
// enabled sink has committed the batch or durably spooled it.
//
// Batching is "natural": the batch loop takes what is queued (up to batch.max_rows) and flushes as soon as the
// queue is empty, so a quiet stream is written message by message (lowest latency) and a busy one in large
// batches (messages pile up while the previous batch commits). batch.linger trades latency for larger batches.
package pipeline

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/fieldline-iot/fieldline/ingester/config"
	"github.com/fieldline-iot/fieldline/ingester/metrics"
	"github.com/fieldline-iot/fieldline/ingester/sink"
	"github.com/fieldline-iot/fieldline/pkg/telemetry"
)

// reasonNoSubscription counts messages the broker delivers for a filter the configuration no longer has
// (a persistent session remembers old subscriptions). They are acknowledged so they are not redelivered forever.
const reasonNoSubscription = "no_subscription"

// ShutdownGrace bounds the final flush after the context ends (SIGTERM must exit within 10 s).
const ShutdownGrace = 7 * time.Second

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

	in        chan inbound
	closing   atomic.Bool
	connected atomic.Bool
	lastMsg   mqtt.Message // router goroutine only: drops the second delivery of one message to overlapping routes
	client    mqtt.Client

	// batch state, batch loop only
	readings []telemetry.Reading
	msgs     []mqtt.Message
	rejects  rejectLog
	rejected map[string]prometheus.Counter
}

// New validates subscriptions and builds the MQTT client (not connected yet).
func New(cfg config.Config, sinks []*sink.Buffered, m *metrics.Metrics, log *slog.Logger) (*Pipeline, error) {
	if len(sinks) == 0 {
		return nil, errors.New("pipeline: no sink")
	}
	p := &Pipeline{
		cfg: cfg, sinks: sinks, m: m, log: log,
		in:       make(chan inbound, cfg.MQTT.MaxInflight),
		readings: make([]telemetry.Reading, 0, cfg.Batch.MaxRows+64),
		msgs:     make([]mqtt.Message, 0, cfg.Batch.MaxRows+64),
		rejected: map[string]prometheus.Counter{},
		rejects:  rejectLog{log: log, every: 10 * time.Second, last: map[string]time.Time{}, suppressed: map[string]int{}},
	}
	for _, r := range telemetry.Reasons() {
		p.rejected[string(r)] = m.Rejected.WithLabelValues(string(r))
	}
	p.rejected[reasonNoSubscription] = m.Rejected.WithLabelValues(reasonNoSubscription)
	for i, sc := range cfg.MQTT.Subs {
		dec, err := cfg.NewDecoder(sc)
		if err != nil {
			return nil, fmt.Errorf("pipeline: subscription %d (%s): %w", i, sc.Filter, err)
		}
		p.subs = append(p.subs, &subscription{cfg: sc, dec: dec, received: m.Received.WithLabelValues(sc.Filter)})
	}
	opts, err := p.clientOptions()
	if err != nil {
		return nil, err
	}
	p.client = mqtt.NewClient(opts)
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
	o := mqtt.NewClientOptions().
		AddBroker(c.URL).
		SetClientID(c.ClientID).
		SetCleanSession(c.CleanSession).
		SetAutoAckDisabled(true). // acknowledge only after the sinks commit
		SetOrderMatters(true).    // handlers run in the router goroutine, in order; ours only enqueue
		SetKeepAlive(c.KeepAlive).
		SetPingTimeout(10 * time.Second).
		SetConnectTimeout(10 * time.Second).
		SetAutoReconnect(true).
		SetMaxReconnectInterval(10 * time.Second). // paho's default backs off to 10 minutes
		SetConnectRetry(true).
		SetConnectRetryInterval(2 * time.Second).
		SetDefaultPublishHandler(p.handler(nil)).
		SetOnConnectHandler(p.onConnect).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) {
			p.connected.Store(false)
			p.m.Connected.Set(0)
			p.m.ConnectionsLost.Inc()
			p.log.Warn("MQTT connection lost; reconnecting (unacknowledged messages will be redelivered)", "err", err)
		}).
		SetReconnectingHandler(func(_ mqtt.Client, _ *mqtt.ClientOptions) {
			p.log.Info("MQTT reconnecting", "broker", c.URL)
		})
	if c.Username != "" {
		o.SetUsername(c.Username)
		o.SetPassword(c.Password)
	}
	scheme := strings.SplitN(c.URL, "://", 2)[0]
	if scheme == "ssl" || scheme == "tls" || scheme == "mqtts" || scheme == "wss" || c.TLS.CAFile != "" || c.TLS.CertFile != "" {
		tc, err := tlsConfig(c.TLS)
		if err != nil {
			return nil, err
		}
		o.SetTLSConfig(tc)
	}
	return o, nil
}

func tlsConfig(t config.TLS) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: t.InsecureSkipVerify, ServerName: t.ServerName} //nolint:gosec // opt-in setting
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("mqtt.tls.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("mqtt.tls.ca_file %s: no PEM certificate found", t.CAFile)
		}
		tc.RootCAs = pool
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("mqtt.tls.cert_file/key_file: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

func (p *Pipeline) onConnect(c mqtt.Client) {
	filters := make(map[string]byte, len(p.subs))
	for _, s := range p.subs {
		filters[s.cfg.BrokerFilter()] = s.cfg.QoS
	}
	tok := c.SubscribeMultiple(filters, nil) // nil callback: the routes added in New handle messages
	if !tok.WaitTimeout(15*time.Second) || tok.Error() != nil {
		err := tok.Error()
		if err == nil {
			err = errors.New("no SUBACK within 15s")
		}
		p.log.Error("MQTT subscribe failed; reconnecting", "err", err)
		go c.Disconnect(100) // AutoReconnect does not apply to a deliberate disconnect: reconnect by hand
		go p.reconnect(c)
		return
	}
	p.connected.Store(true)
	p.m.Connected.Set(1)
	p.log.Info("MQTT connected and subscribed", "broker", p.cfg.MQTT.URL, "client_id", p.cfg.MQTT.ClientID,
		"clean_session", p.cfg.MQTT.CleanSession, "subscriptions", len(filters))
}

func (p *Pipeline) reconnect(c mqtt.Client) {
	time.Sleep(2 * time.Second)
	if !p.closing.Load() {
		c.Connect()
	}
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
		p.m.Inflight.Inc()
		p.in <- inbound{msg: m, sub: s, received: time.Now()}
	}
}

// Connected reports whether the MQTT client is connected and subscribed.
func (p *Pipeline) Connected() bool { return p.connected.Load() }

// Ready returns nil when messages flow: connected, and no sink's spool is full.
func (p *Pipeline) Ready() error {
	if !p.connected.Load() {
		return errors.New("MQTT not connected")
	}
	for _, s := range p.sinks {
		if s.Blocked() {
			return fmt.Errorf("sink %s down and its spool is full (holding messages at the broker): %s", s.Name(), s.LastError())
		}
	}
	return nil
}

// Run connects and processes messages until ctx ends, then stops taking messages, flushes and acknowledges
// what it holds (within ShutdownGrace), and disconnects. Sinks' replay loops run for as long as Run does.
func (p *Pipeline) Run(ctx context.Context) error {
	replayCtx, stopReplay := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	for _, s := range p.sinks {
		wg.Add(1)
		go func() { defer wg.Done(); s.Run(replayCtx) }()
	}
	p.client.Connect() // with ConnectRetry, paho keeps trying in the background
	p.log.Info("connecting to MQTT", "broker", p.cfg.MQTT.URL)

	p.batchLoop(ctx)

	// Shutdown: stop enqueueing, drain what was received, flush it with a bounded grace period, ack, disconnect.
	p.closing.Store(true)
	hard, cancel := context.WithTimeout(context.WithoutCancel(ctx), ShutdownGrace)
	defer cancel()
	for {
		select {
		case in := <-p.in:
			p.add(in)
			if len(p.readings) >= p.cfg.Batch.MaxRows {
				p.flush(hard)
			}
			continue
		default:
		}
		break
	}
	err := p.flush(hard)
	p.client.Disconnect(250)
	p.connected.Store(false)
	p.m.Connected.Set(0)
	stopReplay()
	wg.Wait()
	if err != nil {
		return fmt.Errorf("final flush: %w", err)
	}
	return nil
}

func (p *Pipeline) batchLoop(ctx context.Context) {
	maxRows := p.cfg.Batch.MaxRows
	linger := p.cfg.Batch.Linger
	var timer *time.Timer
	for {
		select {
		case in := <-p.in:
			p.add(in)
		case <-ctx.Done():
			return
		}
	fill:
		for len(p.readings) < maxRows && len(p.msgs) < maxRows {
			select {
			case in := <-p.in:
				p.add(in)
				continue
			default:
			}
			if linger <= 0 {
				break
			}
			if timer == nil {
				timer = time.NewTimer(linger)
			} else {
				timer.Reset(linger)
			}
			select {
			case in := <-p.in:
				p.add(in)
				timer.Stop()
			case <-timer.C:
				break fill
			case <-ctx.Done():
				break fill
			}
		}
		if err := p.flush(ctx); err != nil {
			// Only when ctx ended mid-flush: the batch is kept and Run flushes it with the grace context.
			return
		}
	}
}

// add decodes one message into the current batch (or counts its rejection).
func (p *Pipeline) add(in inbound) {
	p.msgs = append(p.msgs, in.msg)
	if in.sub == nil {
		p.rejected[reasonNoSubscription].Inc()
		p.rejects.note(reasonNoSubscription, in.msg.Topic(), "no configured subscription matches this topic")
		return
	}
	in.sub.received.Inc()
	var err error
	p.readings, err = in.sub.dec.Decode(in.msg.Topic(), in.msg.Payload(), in.received, p.readings)
	if err != nil {
		reason, detail := "unknown", err.Error()
		var rej *telemetry.Rejection
		if errors.As(err, &rej) {
			reason, detail = string(rej.Reason), rej.Detail
		}
		c, ok := p.rejected[reason]
		if !ok {
			c = p.m.Rejected.WithLabelValues(reason)
			p.rejected[reason] = c
		}
		c.Inc()
		p.rejects.note(reason, in.msg.Topic(), detail)
	}
}

// flush hands the batch to every sink in parallel and acknowledges its messages once all accepted it.
// On error (ctx ended) nothing is acknowledged and the batch is kept for a later flush.
func (p *Pipeline) flush(ctx context.Context) error {
	if len(p.msgs) == 0 {
		return nil
	}
	if n := len(p.readings); n > 0 {
		var err error
		if len(p.sinks) == 1 {
			err = p.sinks[0].Accept(ctx, p.readings)
		} else {
			errs := make([]error, len(p.sinks))
			var wg sync.WaitGroup
			for i, s := range p.sinks {
				wg.Add(1)
				go func() { defer wg.Done(); errs[i] = s.Accept(ctx, p.readings) }()
			}
			wg.Wait()
			err = errors.Join(errs...)
		}
		if err != nil {
			return err
		}
		p.m.Batches.Inc()
		p.m.BatchRows.Observe(float64(n))
	}
	for _, m := range p.msgs {
		m.Ack() // paho drops acks for messages of a connection that has since been lost (they are redelivered)
	}
	n := float64(len(p.msgs))
	p.m.Acked.Add(n)
	p.m.Inflight.Sub(n)
	clear(p.readings)
	clear(p.msgs)
	p.readings, p.msgs = p.readings[:0], p.msgs[:0]
	return nil
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
