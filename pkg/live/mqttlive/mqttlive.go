// Package mqttlive shares ONE MQTT connection among any number of live consumers: subscriptions are reference
// counted per topic filter (the first consumer of a filter sends SUBSCRIBE, the last one UNSUBSCRIBE), the
// client reconnects on its own and resubscribes every active filter on each connect, and the last message
// of every topic is cached so a consumer that joins a filter already subscribed still starts with the
// retained (or last) value — the broker sends retained messages only on SUBSCRIBE.
//
// The client is a subscriber only, and it is built for CPU per message: ONE goroutine reads packets (paho's
// packets codec), hands the publications of each read to the consumers itself, and collects their
// acknowledgements, which leave in one write just before the next socket read. Socket reads are spaced at least ReadInterval apart
// under load, so a steady stream is read, dispatched and acknowledged in groups; the first message after a
// quiet spell is read at once. paho's full client spends three goroutine hand-offs per message (reader →
// router → handler, ack → writer); on a 2-core machine at 1 000 msg/s those wake-ups were most of the live
// stream's CPU (docs/benchmarks.md). Connection options (brokers, credentials, TLS, WebSocket, timeouts) are
// read from paho's ClientOptions, so the plugin configures both the same way.
//
// Messages are delivered per read: everything one socket read brought goes to each consumer as one batch,
// in arrival order, holding only the messages whose topic its filter matches. A consumer that paces its
// output (pkg/live/pacer) so sees a read's messages together and never sends half of them in one frame and the
// rest an interval later. Consumers must not block (push into a buffer and return).
package mqttlive

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/fieldline-iot/fieldline/internal/mqttconn"
	"github.com/fieldline-iot/fieldline/internal/mqttsub"
	"github.com/fieldline-iot/fieldline/internal/retry"
	"github.com/fieldline-iot/fieldline/internal/telemetry"
)

// Message is one received publication.
type Message struct {
	Topic    string
	Payload  []byte // shared by every consumer: read only
	Received time.Time
	Retained bool
	Cached   bool // replayed from the last-message cache to a consumer that joined late
	// Skipped > 0: the payload was longer than Config.MaxPayloadBytes and was read through without being kept
	// (Payload nil); consumers count it as oversized.
	Skipped int
}

// Handler consumes a batch of messages (in arrival order; read only, not kept by the client); it must return
// quickly.
type Handler func([]Message)

// Config configures a Client.
type Config struct {
	// Options: brokers (tried in order), client id, username/password, TLS, WebSocket options, keep-alive,
	// ping, connect and write timeouts. The session is always clean; handlers and reconnect settings of
	// Options are not used.
	Options *mqtt.ClientOptions
	// Dial, when set, opens the connections (Grafana's secure SOCKS proxy); nil: direct.
	Dial   mqttconn.ContextDialer
	QoS    byte
	Logger *slog.Logger
	// MaxCachedTopics bounds the last-message cache (default 10 000 topics).
	MaxCachedTopics int
	// MaxPayloadBytes bounds what one message may hold in memory (default telemetry.DefaultMaxPayloadBytes, the
	// decoders' limit): a longer payload is skipped as it is read (Message.Skipped).
	MaxPayloadBytes int
	// ReadInterval spaces socket reads under load (default 10 ms; negative: no spacing). A message waits at
	// most this long; the first one after a quiet spell not at all.
	ReadInterval time.Duration
	// MinBackoff and MaxBackoff bound the delay between connection attempts (defaults 500 ms and 5 s).
	MinBackoff, MaxBackoff time.Duration
}

// Client is the shared client. Create it with New; it connects on the first Subscribe.
type Client struct {
	cfg  Config
	opts mqtt.ClientOptionsReader
	log  *slog.Logger

	mu       sync.Mutex
	filters  map[string]*filterSubs
	cache    map[string]Message
	started  bool
	closed   bool
	connects int
	sess     *mqttsub.Session  // the connected session; nil while disconnected
	nextID   uint16            // last packet identifier used
	subIDs   map[uint16]string // SUBSCRIBE packet id → filter, until its SUBACK
	cancel   context.CancelFunc
	done     chan struct{}

	// reader goroutine only: the messages of the current read, and a scratch batch per filter
	inbox []Message
	batch []Message
}

type filterSubs struct {
	filter   string
	parts    []string // filter split on '/', without a $share/<group>/ prefix
	handlers map[*Handler]struct{}
	list     []Handler // copy-on-write snapshot of handlers
}

// New builds the client (not connected yet).
func New(cfg Config) *Client {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxCachedTopics <= 0 {
		cfg.MaxCachedTopics = 10_000
	}
	if cfg.MaxPayloadBytes <= 0 {
		cfg.MaxPayloadBytes = telemetry.DefaultMaxPayloadBytes
	}
	if cfg.ReadInterval == 0 {
		cfg.ReadInterval = 10 * time.Millisecond
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = 500 * time.Millisecond
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 5 * time.Second
	}
	if cfg.Options == nil {
		cfg.Options = mqtt.NewClientOptions()
	}
	return &Client{cfg: cfg, opts: mqtt.NewOptionsReader(cfg.Options), log: cfg.Logger,
		filters: map[string]*filterSubs{}, cache: map[string]Message{}, subIDs: map[uint16]string{}}
}

// Subscribe adds h for filter. The first consumer of a filter makes the client SUBSCRIBE (connecting the
// client on the very first call); a later consumer is first sent the cached last message of every topic the
// filter matches. The returned function removes h (UNSUBSCRIBE when it was the filter's last consumer).
func (c *Client) Subscribe(filter string, h Handler) (unsubscribe func(), err error) {
	if err := mqttconn.ValidateFilter(filter); err != nil {
		return nil, err
	}
	hp := &h
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, errors.New("mqttlive: client closed")
	}
	fs := c.filters[filter]
	first := fs == nil
	if first {
		fs = &filterSubs{filter: filter, parts: mqttconn.FilterLevels(filter), handlers: map[*Handler]struct{}{}}
		c.filters[filter] = fs
	}
	fs.handlers[hp] = struct{}{}
	fs.rebuild()
	if !first {
		// The replay goes out under the lock so that no live message for this filter can overtake it.
		if replay := c.cachedLocked(fs.parts); len(replay) > 0 {
			h(replay)
		}
	}
	switch {
	case !c.started:
		c.started = true
		ctx, cancel := context.WithCancel(context.Background())
		c.cancel, c.done = cancel, make(chan struct{})
		go c.run(ctx) // subscribes every filter once connected
	case first && c.sess != nil:
		// Sent under c.mu, like UNSUBSCRIBE and the resubscriptions on connect, so that the broker sees a
		// filter's SUBSCRIBE and UNSUBSCRIBE in the order the consumers came and went.
		c.subscribeLocked(c.sess, filter)
	}
	return func() { c.unsubscribe(filter, hp) }, nil
}

func (c *Client) unsubscribe(filter string, hp *Handler) {
	c.mu.Lock()
	defer c.mu.Unlock()
	fs := c.filters[filter]
	if fs == nil {
		return
	}
	if _, ok := fs.handlers[hp]; !ok {
		return
	}
	delete(fs.handlers, hp)
	fs.rebuild()
	if len(fs.handlers) > 0 {
		return
	}
	delete(c.filters, filter)
	// Forget cached topics no remaining filter covers.
	for topic := range c.cache {
		if !c.coveredLocked(topic) {
			delete(c.cache, topic)
		}
	}
	if c.sess != nil && !c.closed {
		p := packets.NewControlPacket(packets.Unsubscribe).(*packets.UnsubscribePacket)
		p.MessageID = c.packetIDLocked()
		p.Topics = []string{filter}
		if err := c.sess.Send(p); err != nil {
			c.log.Warn("MQTT unsubscribe failed", "filter", filter, "error", err)
		}
	}
}

func (fs *filterSubs) rebuild() {
	l := make([]Handler, 0, len(fs.handlers))
	for h := range fs.handlers {
		l = append(l, *h)
	}
	fs.list = l
}

func (c *Client) coveredLocked(topic string) bool {
	for _, fs := range c.filters {
		if mqttconn.MatchLevels(fs.parts, topic) {
			return true
		}
	}
	return false
}

// packetIDLocked returns the next non-zero packet identifier.
func (c *Client) packetIDLocked() uint16 {
	c.nextID++
	if c.nextID == 0 {
		c.nextID = 1
	}
	return c.nextID
}

func (c *Client) subscribeLocked(s *mqttsub.Session, filter string) {
	p := packets.NewControlPacket(packets.Subscribe).(*packets.SubscribePacket)
	p.MessageID = c.packetIDLocked()
	p.Topics = []string{filter}
	p.Qoss = []byte{c.cfg.QoS}
	c.subIDs[p.MessageID] = filter
	if err := s.Send(p); err != nil {
		// The read loop sees the broken connection too; the next connect subscribes again.
		c.log.Warn("MQTT subscribe failed", "filter", filter, "error", err)
	}
}

// run keeps a session up until ctx ends, reconnecting with backoff.
func (c *Client) run(ctx context.Context) {
	defer close(c.done)
	delay := retry.New(c.cfg.MinBackoff, c.cfg.MaxBackoff)
	for {
		connected, err := c.session(ctx)
		if ctx.Err() != nil {
			return
		}
		if connected {
			delay.Reset() // it was up: start over quickly
			c.log.Warn("MQTT live client lost its connection; reconnecting", "error", err)
		}
		backoff := delay.Next()
		if !connected {
			c.log.Warn("MQTT live client could not connect; retrying", "error", err, "backoff", backoff)
		}
		if !retry.Wait(ctx, backoff) {
			return
		}
	}
}

// session dials, connects, subscribes every filter and reads until the connection fails or ctx ends.
func (c *Client) session(ctx context.Context) (connected bool, err error) {
	s, _, err := mqttsub.Connect(ctx, c.cfg.Dial, c.cfg.Options, true, c.cfg.ReadInterval)
	if err != nil {
		return false, err
	}
	defer s.Close()

	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return true, errors.New("closed")
	}
	c.sess = s
	c.connects++
	n := c.connects
	clear(c.subIDs)
	// A clean session starts without subscriptions: (re)subscribe every active filter.
	for f := range c.filters {
		c.subscribeLocked(s, f)
	}
	filters := len(c.filters)
	c.mu.Unlock()
	c.log.Debug("MQTT live client connected", "connection", n, "filters", filters)
	defer func() {
		c.mu.Lock()
		c.sess = nil
		c.mu.Unlock()
	}()

	kctx, kcancel := context.WithCancel(ctx)
	defer kcancel()
	go s.KeepAlive(kctx, c.log)
	return true, c.read(s)
}

// read is the session's one reader: it dispatches publications inline and queues their acknowledgements.
func (c *Client) read(s *mqttsub.Session) error {
	defer func() { c.inbox = c.inbox[:0] }() // a read cut short by an error is not delivered: not acknowledged either
	r := s.Reader()
	for {
		if r.Buffered() == 0 {
			// The next packet needs a socket read: deliver this read's messages, then acknowledge them and
			// (under load) wait before reading again.
			c.deliver()
			if err := s.BeforeRead(); err != nil {
				return err
			}
		}
		pkt, skipped, err := s.ReadPacket(c.cfg.MaxPayloadBytes)
		if err != nil {
			return err
		}
		switch p := pkt.(type) {
		case *packets.PublishPacket:
			c.inbox = append(c.inbox, Message{Topic: p.TopicName, Payload: p.Payload, Retained: p.Retain, Skipped: skipped})
			// QoS 2 is shown on PUBLISH; the broker releases it with PUBREL, answered below.
			if kind, ok := mqttsub.AckKind(p.Qos); ok {
				s.QueueAck(kind, p.MessageID)
			}
		case *packets.PubrelPacket:
			s.QueueAck(mqttsub.AckPubcomp, p.MessageID)
		case *packets.SubackPacket:
			c.mu.Lock()
			filter := c.subIDs[p.MessageID]
			delete(c.subIDs, p.MessageID)
			c.mu.Unlock()
			for _, code := range p.ReturnCodes {
				if code == 0x80 {
					c.log.Warn("MQTT broker refused the subscription", "filter", filter)
				}
			}
		case *packets.UnsubackPacket, *packets.PingrespPacket:
		default:
			return fmt.Errorf("unexpected %s packet from the broker", mqttsub.PacketName(pkt))
		}
	}
}

// Connections is the number of successful connects so far.
func (c *Client) Connections() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.connects
}

// Filters is the number of topic filters subscribed (one per distinct filter, whatever its consumers).
func (c *Client) Filters() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.filters)
}

// IsConnected reports whether the client is connected now.
func (c *Client) IsConnected() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sess != nil
}

// Cached calls fn with the cached last message of every topic filter matches (marked Cached, oldest first),
// under the lock the client delivers under: no message is delivered to any consumer while fn runs, so a
// consumer that shares one subscription among late joiners knows exactly which messages came before fn (it
// must not block or call the client).
func (c *Client) Cached(filter string, fn func([]Message)) {
	parts := mqttconn.FilterLevels(filter)
	c.mu.Lock()
	defer c.mu.Unlock()
	fn(c.cachedLocked(parts))
}

// cachedLocked returns the cached last messages of the topics the filter levels match, marked Cached, oldest
// first. Callers hold c.mu.
func (c *Client) cachedLocked(parts []string) []Message {
	var out []Message
	for topic, m := range c.cache {
		if mqttconn.MatchLevels(parts, topic) {
			m.Cached = true
			out = append(out, m)
		}
	}
	sortByReceived(out)
	return out
}

// deliver hands the messages of one read to the consumers.
func (c *Client) deliver() {
	if len(c.inbox) == 0 {
		return
	}
	now := time.Now()
	c.mu.Lock()
	for i := range c.inbox {
		m := &c.inbox[i]
		m.Received = now
		if _, ok := c.cache[m.Topic]; ok || len(c.cache) < c.cfg.MaxCachedTopics {
			c.cache[m.Topic] = *m
		}
	}
	// Handlers run under the lock: a Subscribe replaying the cache cannot interleave with live messages.
	// They only push into buffers.
	for _, fs := range c.filters {
		c.batch = c.batch[:0]
		for i := range c.inbox {
			if mqttconn.MatchLevels(fs.parts, c.inbox[i].Topic) {
				c.batch = append(c.batch, c.inbox[i])
			}
		}
		if len(c.batch) > 0 {
			for _, h := range fs.list {
				h(c.batch)
			}
		}
	}
	c.mu.Unlock()
	clear(c.inbox)
	c.inbox = c.inbox[:0]
	clear(c.batch)
}

// Topics returns the cached topics (the last message of each topic seen) that filter matches, sorted.
func (c *Client) Topics(filter string) []string {
	parts := mqttconn.FilterLevels(filter)
	c.mu.Lock()
	out := make([]string, 0, len(c.cache))
	for topic := range c.cache {
		if mqttconn.MatchLevels(parts, topic) {
			out = append(out, topic)
		}
	}
	c.mu.Unlock()
	sort.Strings(out)
	return out
}

// Close disconnects (sending DISCONNECT) and waits up to 2 s for the reader to stop.
func (c *Client) Close() {
	c.mu.Lock()
	c.closed = true
	cancel, done := c.cancel, c.done
	c.mu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		c.log.Warn("MQTT live client did not stop within 2 s")
	}
}

// UserFilter checks a topic filter that comes from a Grafana user (a live query, the /topics resource, a live
// channel path): a valid filter that is not a shared subscription ($share/..., EMQX's $queue/...: the plugin
// would join the ingester's share group and take, then acknowledge, part of its messages, which the ingester
// then never stores), not a $-topic (broker internals) unless allowSys admits $SYS/..., and, when prefixes are
// set, under one of them.
func UserFilter(f string, allowSys bool, prefixes []string) error {
	if err := mqttconn.ValidateFilter(f); err != nil {
		return fmt.Errorf("mqtt %w", err)
	}
	switch {
	case strings.HasPrefix(f, "$share/") || strings.HasPrefix(f, "$queue/"):
		return errors.New("mqtt topic filter: shared subscriptions ($share/..., $queue/...) are not allowed: they would take messages from the group's members, such as the ingester")
	case strings.HasPrefix(f, "$SYS/") || f == "$SYS":
		if !allowSys {
			return errors.New("mqtt topic filter: $SYS topics (broker internals) are not allowed; an administrator can allow them (mqtt.allowSysTopics)")
		}
	case strings.HasPrefix(f, "$"):
		return errors.New("mqtt topic filter: topics starting with $ are reserved by the broker and not allowed")
	}
	if len(prefixes) > 0 {
		for _, p := range prefixes {
			if strings.HasPrefix(f, p) {
				return nil
			}
		}
		return fmt.Errorf("mqtt topic filter: not under the topics this data source allows (%s)", strings.Join(prefixes, ", "))
	}
	return nil
}

func sortByReceived(ms []Message) {
	for i := 1; i < len(ms); i++ {
		for j := i; j > 0 && ms[j].Received.Before(ms[j-1].Received); j-- {
			ms[j], ms[j-1] = ms[j-1], ms[j]
		}
	}
}

// Check connects once with cfg, through the same dial and handshake as a Client's sessions, and disconnects:
// the plugin's health check, which so tests the connection its live streams use. ctx bounds it.
func Check(ctx context.Context, cfg Config) error {
	c := New(cfg)
	s, _, err := mqttsub.Connect(ctx, c.cfg.Dial, c.cfg.Options, true, -1)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("connect: %w", ctx.Err())
		}
		return fmt.Errorf("connect: %w", err)
	}
	s.Disconnect()
	_ = s.Close()
	return nil
}
