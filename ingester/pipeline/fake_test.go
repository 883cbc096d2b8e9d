package pipeline

import (
	"sync"
	"sync/atomic"

	"github.com/fieldline-iot/fieldline/internal/mqttsub"
)

// A fake MQTT client in the manner of Telegraf's mqtt_consumer tests: New gets it through newClient, Run
// "connects" and subscribes at once, and the test delivers messages through it as the real client's reader
// does, synchronously, from one goroutine.

// events orders what happened across sink commits and acknowledgements.
var events atomic.Int64

// fakeMessage is its own acker: it counts its acknowledgements and remembers when the first came.
type fakeMessage struct {
	topic   string
	payload []byte
	acks    atomic.Int32
	ackedAt atomic.Int64 // events value at the first acknowledgement
}

func newMessage(topic, payload string) *fakeMessage {
	return &fakeMessage{topic: topic, payload: []byte(payload)}
}

func (m *fakeMessage) QueueAck(kind byte, _ uint16) {
	if kind != mqttsub.AckPuback {
		panic("fake message: QoS 1 messages are acknowledged with PUBACK")
	}
	if m.acks.Add(1) == 1 {
		m.ackedAt.Store(events.Add(1))
	}
}
func (m *fakeMessage) Flush() error { return nil }
func (m *fakeMessage) acked() bool  { return m.acks.Load() > 0 }

// fakeClient implements client.
type fakeClient struct {
	p *Pipeline

	mu         sync.Mutex
	subscribed []string // SUBSCRIBE's filters, in order
	qos        []byte
	stop       chan struct{}

	connects    atomic.Int32
	disconnects atomic.Int32
	ended       atomic.Int32 // EndSession calls
}

var _ client = (*fakeClient)(nil)

// Run connects and subscribes (or unsubscribes, -leave) as the broker would answer at once, then waits for
// Disconnect.
func (c *fakeClient) Run() {
	c.connects.Add(1)
	c.mu.Lock()
	c.subscribed, c.qos = c.p.brokerFilters()
	stop := c.stop
	c.mu.Unlock()
	if c.p.cfg.MQTT.Leave {
		c.p.leftSession()
	} else {
		c.p.subscribed()
	}
	<-stop
}

func (c *fakeClient) Disconnect() {
	if c.disconnects.Add(1) == 1 {
		close(c.stop)
	}
}

func (c *fakeClient) EndSession() error { c.ended.Add(1); return nil }

// deliver hands a QoS-1 message to the pipeline as the reader goroutine does.
func (c *fakeClient) deliver(m *fakeMessage) {
	c.p.receive(message{topic: m.topic, payload: m.payload, session: m, id: 1, kind: mqttsub.AckPuback})
}
