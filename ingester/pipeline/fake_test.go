package pipeline

import (
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// A fake paho client in the manner of Telegraf's mqtt_consumer tests: New gets it through newClient, and the
// test delivers messages through it the way paho's router does (every matching route in order, else the
// default handler), synchronously, from one goroutine.

// fakeToken is a finished token.
type fakeToken struct {
	err  error
	done chan struct{}
}

func doneToken(err error) *fakeToken {
	t := &fakeToken{err: err, done: make(chan struct{})}
	close(t.done)
	return t
}

func (t *fakeToken) Wait() bool                     { return true }
func (t *fakeToken) WaitTimeout(time.Duration) bool { return true }
func (t *fakeToken) Done() <-chan struct{}          { return t.done }
func (t *fakeToken) Error() error                   { return t.err }

// events orders what happened across sink commits and acknowledgements.
var events atomic.Int64

// fakeMessage counts its acknowledgements and remembers when the first came.
type fakeMessage struct {
	topic   string
	payload []byte
	acks    atomic.Int32
	ackedAt atomic.Int64 // events value at the first Ack
}

func newMessage(topic, payload string) *fakeMessage {
	return &fakeMessage{topic: topic, payload: []byte(payload)}
}

func (m *fakeMessage) Duplicate() bool   { return false }
func (m *fakeMessage) Qos() byte         { return 1 }
func (m *fakeMessage) Retained() bool    { return false }
func (m *fakeMessage) Topic() string     { return m.topic }
func (m *fakeMessage) MessageID() uint16 { return 1 }
func (m *fakeMessage) Payload() []byte   { return m.payload }
func (m *fakeMessage) Ack() {
	if m.acks.Add(1) == 1 {
		m.ackedAt.Store(events.Add(1))
	}
}
func (m *fakeMessage) acked() bool { return m.acks.Load() > 0 }

type fakeRoute struct {
	filter string
	h      mqtt.MessageHandler
}

// fakeClient implements mqtt.Client.
type fakeClient struct {
	opts *mqtt.ClientOptions // as New built them

	mu              sync.Mutex
	routes          []fakeRoute
	routesAtConnect int             // routes added before the first Connect
	subscribed      map[string]byte // SubscribeMultiple's filters
	subscribeErr    error

	connected   atomic.Bool
	connects    atomic.Int32
	disconnects atomic.Int32
}

var _ mqtt.Client = (*fakeClient)(nil)

func (c *fakeClient) IsConnected() bool      { return c.connected.Load() }
func (c *fakeClient) IsConnectionOpen() bool { return c.connected.Load() }

// Connect succeeds and, like paho, runs the OnConnect handler in its own goroutine.
func (c *fakeClient) Connect() mqtt.Token {
	c.mu.Lock()
	if c.connects.Add(1) == 1 {
		c.routesAtConnect = len(c.routes)
	}
	c.mu.Unlock()
	c.connected.Store(true)
	if h := c.opts.OnConnect; h != nil {
		go h(c)
	}
	return doneToken(nil)
}

func (c *fakeClient) Disconnect(uint) {
	c.disconnects.Add(1)
	c.connected.Store(false)
}

func (c *fakeClient) Publish(string, byte, bool, any) mqtt.Token {
	return doneToken(errors.New("fake client: publish not supported"))
}

func (c *fakeClient) Subscribe(topic string, qos byte, _ mqtt.MessageHandler) mqtt.Token {
	return c.SubscribeMultiple(map[string]byte{topic: qos}, nil)
}

func (c *fakeClient) SubscribeMultiple(filters map[string]byte, _ mqtt.MessageHandler) mqtt.Token {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.subscribeErr != nil {
		return doneToken(c.subscribeErr)
	}
	if c.subscribed == nil {
		c.subscribed = map[string]byte{}
	}
	for f, q := range filters {
		c.subscribed[f] = q
	}
	return doneToken(nil)
}

func (c *fakeClient) Unsubscribe(topics ...string) mqtt.Token {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, t := range topics {
		delete(c.subscribed, t)
	}
	return doneToken(nil)
}

func (c *fakeClient) AddRoute(filter string, h mqtt.MessageHandler) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.routes = append(c.routes, fakeRoute{filter, h})
}

func (c *fakeClient) OptionsReader() mqtt.ClientOptionsReader { return mqtt.NewOptionsReader(c.opts) }

// dropRoutes forgets the routes, as paho does when their filters are unsubscribed (mode -leave).
func (c *fakeClient) dropRoutes() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.routes = nil
}

// deliver hands a message to every route whose filter matches its topic, in the order they were added, or to
// the default publish handler when none does (paho's router with OrderMatters).
func (c *fakeClient) deliver(m *fakeMessage) {
	c.mu.Lock()
	var hs []mqtt.MessageHandler
	for _, r := range c.routes {
		if topicMatches(r.filter, m.topic) {
			hs = append(hs, r.h)
		}
	}
	c.mu.Unlock()
	if len(hs) == 0 && c.opts.DefaultPublishHandler != nil {
		hs = append(hs, c.opts.DefaultPublishHandler)
	}
	for _, h := range hs {
		h(c, m)
	}
}

// topicMatches is MQTT filter matching as paho's router does it ($share/<group>/ stripped, '+' one level,
// '#' the rest including none).
func topicMatches(filter, topic string) bool {
	if strings.HasPrefix(filter, "$share/") {
		filter = strings.Join(strings.Split(filter, "/")[2:], "/")
	}
	f, t := strings.Split(filter, "/"), strings.Split(topic, "/")
	for i, level := range f {
		switch {
		case level == "#":
			return true
		case i >= len(t):
			return false
		case level != "+" && level != t[i]:
			return false
		}
	}
	return len(f) == len(t)
}
