package pipeline

import (
	"context"
	"fmt"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/fieldline-iot/fieldline/internal/mqttconn"
	"github.com/fieldline-iot/fieldline/internal/mqttsub"
	"github.com/fieldline-iot/fieldline/internal/redact"
	"github.com/fieldline-iot/fieldline/internal/retry"
)

// client is the pipeline's side of the broker: it keeps a session up, subscribes on every connect (or, in
// -leave mode, unsubscribes), and hands every PUBLISH to Pipeline.receive from its one reader goroutine,
// reporting Pipeline.subscribed, Pipeline.left and Pipeline.lost as the connection comes and goes. The real one
// is brokerClient; tests substitute a fake through newClient.
type client interface {
	// Run connects (retrying with backoff) and reads until Disconnect.
	Run()
	// Disconnect sends DISCONNECT (after every acknowledgement queued so far) and waits for Run to return.
	Disconnect()
	// EndSession connects once with a clean session under the same client id and disconnects: the broker
	// discards the persistent session (-leave).
	EndSession() error
}

// acker is where a message's acknowledgement goes: the session (connection) it arrived on. An
// acknowledgement queued on a session that has since been lost is never written: the broker redelivers the
// message on the next one, and packet identifiers of a new connection must not be acknowledged for it.
type acker interface {
	QueueAck(kind byte, id uint16)
	Flush() error
}

// message is one received PUBLISH and what acknowledging it takes (kind 0: QoS 0, nothing).
type message struct {
	topic   string
	payload []byte
	session acker
	id      uint16
	kind    byte
	skipped int // > 0: the payload was longer than decode.max_payload_bytes and not kept (payload nil)
}

// readInterval spaces the reader's socket reads under load (internal/readpace): each read then takes what
// arrived in the last quarter millisecond (dozens of messages at tens of thousands a second) with one system
// call and no netpoller wake-up per TCP segment. Unspaced, the reader read a message or two at a time and the
// reads were 40 % of the ingester's CPU: 9.6–10.2 µs per message against 2.3–3.0 with spacing of 100 µs to
// 1 ms (docs/benchmarks.md). A message waits at most this long, next to batch.linger's 5 ms.
const readInterval = 250 * time.Microsecond

var newClient = func(p *Pipeline) (client, error) { return newBrokerClient(p) }

// subackTimeout bounds the wait for SUBACK (or UNSUBACK) after CONNACK; the connection is then dropped and made
// again.
const subackTimeout = 15 * time.Second

// brokerClient is the ingester's MQTT client on internal/mqttsub: one goroutine reads the socket and hands
// each message to the pipeline's queue; the acker writes a committed batch's acknowledgements in one write.
// paho's client took four goroutine hand-offs per message and acknowledgement and was most of the ingester's
// CPU (docs/benchmarks.md).
type brokerClient struct {
	p    *Pipeline
	opts *mqtt.ClientOptions
	ctx  context.Context
	stop context.CancelFunc
	done chan struct{}
}

func newBrokerClient(p *Pipeline) (*brokerClient, error) {
	c := p.cfg.MQTT
	b := mqttconn.Broker{URL: c.URL, ClientID: c.ClientID, Username: c.Username, Password: c.Password, WriteTimeout: 10 * time.Second}
	if mqttconn.SecureScheme(c.URL) || c.TLS.CAFile != "" || c.TLS.CertFile != "" {
		tc, err := c.TLS.Config("mqtt.tls")
		if err != nil {
			return nil, err
		}
		b.TLS = tc
	}
	opts := b.ClientOptions().SetKeepAlive(c.KeepAlive).SetPingTimeout(10 * time.Second)
	ctx, stop := context.WithCancel(context.Background())
	return &brokerClient{p: p, opts: opts, ctx: ctx, stop: stop, done: make(chan struct{})}, nil
}

// Run keeps a session up until Disconnect: the first connection and every reconnection back off from 1 s to
// 10 s, and each failure is logged with its reason (a wrong password or an unreachable broker says so).
func (c *brokerClient) Run() {
	defer close(c.done)
	p := c.p
	delay := retry.New(time.Second, 10*time.Second)
	for {
		p.log.Info("connecting to MQTT", "broker", redact.URL(p.cfg.MQTT.URL), "client_id", p.cfg.MQTT.ClientID)
		up, err := c.session()
		if c.ctx.Err() != nil {
			return
		}
		if up {
			delay.Reset()
			p.lost(err)
		}
		backoff := delay.Next()
		if !up {
			p.log.Warn("MQTT connect failed; retrying", "err", err, "retry_in", backoff)
		}
		if !retry.Wait(c.ctx, backoff) {
			return
		}
	}
}

// session dials, connects, subscribes (or unsubscribes) and reads until the connection fails or Disconnect.
func (c *brokerClient) session() (up bool, err error) {
	s, _, err := mqttsub.Connect(c.ctx, nil, c.opts, c.p.cfg.MQTT.CleanSession, readInterval)
	if err != nil {
		return false, err
	}
	defer s.Close()

	// A persistent session's queued messages arrive right after CONNACK, before the SUBACK: the read loop
	// takes them from the start.
	var pkt packets.ControlPacket
	if c.p.cfg.MQTT.Leave {
		u := packets.NewControlPacket(packets.Unsubscribe).(*packets.UnsubscribePacket)
		u.MessageID = 1
		u.Topics, _ = c.p.brokerFilters()
		pkt = u
	} else {
		sp := packets.NewControlPacket(packets.Subscribe).(*packets.SubscribePacket)
		sp.MessageID = 1
		sp.Topics, sp.Qoss = c.p.brokerFilters()
		pkt = sp
	}
	if err := s.Send(pkt); err != nil {
		return true, fmt.Errorf("send %s: %w", mqttsub.PacketName(pkt), err)
	}
	answered := make(chan struct{})
	timer := time.AfterFunc(subackTimeout, func() {
		select {
		case <-answered:
		default:
			c.p.log.Error("MQTT broker did not answer the subscription; reconnecting", "timeout", subackTimeout)
			_ = s.Close()
		}
	})
	defer timer.Stop()

	kctx, kcancel := context.WithCancel(c.ctx)
	defer kcancel()
	go s.KeepAlive(kctx, c.p.log)
	return true, c.read(s, answered)
}

// read is the session's one reader.
func (c *brokerClient) read(s *mqttsub.Session, answered chan struct{}) error {
	r := s.Reader()
	for {
		if r.Buffered() == 0 {
			if err := s.BeforeRead(); err != nil { // writes queued PUBCOMPs
				return err
			}
		}
		pkt, skipped, err := s.ReadPacket(c.p.cfg.Decode.MaxPayloadBytes)
		if err != nil {
			return err
		}
		switch pk := pkt.(type) {
		case *packets.PublishPacket:
			m := message{topic: pk.TopicName, payload: pk.Payload, skipped: skipped}
			if kind, ok := mqttsub.AckKind(pk.Qos); ok {
				m.session, m.id, m.kind = s, pk.MessageID, kind
			}
			c.p.receive(m)
		case *packets.PubrelPacket:
			// QoS 2: the PUBREC went out once the message was stored; the broker now releases it.
			s.QueueAck(mqttsub.AckPubcomp, pk.MessageID)
		case *packets.SubackPacket:
			close(answered)
			var refused []string
			filters, _ := c.p.brokerFilters()
			for i, code := range pk.ReturnCodes {
				if code == 0x80 && i < len(filters) {
					refused = append(refused, filters[i])
				}
			}
			if len(refused) > 0 {
				c.p.log.Error("MQTT broker refused subscriptions (check its ACL); the others are active", "filters", refused)
			}
			c.p.subscribed()
		case *packets.UnsubackPacket:
			close(answered)
			c.p.leftSession()
		case *packets.PingrespPacket:
		default:
			return fmt.Errorf("unexpected %s packet from the broker", mqttsub.PacketName(pkt))
		}
	}
}

// Disconnect ends Run: DISCONNECT goes out after the acknowledgements already queued.
func (c *brokerClient) Disconnect() {
	c.stop()
	select {
	case <-c.done:
	case <-time.After(5 * time.Second):
		c.p.log.Warn("MQTT client did not stop within 5 s")
	}
}

// EndSession connects once with a clean session and disconnects.
func (c *brokerClient) EndSession() error {
	s, _, err := mqttsub.Connect(context.Background(), nil, c.opts, true, -1)
	if err != nil {
		return err
	}
	s.Disconnect()
	_ = s.Close() // releases the session; the connection is already closed
	return nil
}
