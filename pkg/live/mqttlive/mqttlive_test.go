package mqttlive

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/fieldline-iot/fieldline/internal/testsvc"
)

// collector records what a Handler receives.
type collector struct {
	mu   sync.Mutex
	msgs []Message
}

func (c *collector) handle(ms []Message) {
	c.mu.Lock()
	c.msgs = append(c.msgs, ms...) // copies: the batch is not ours to keep
	c.mu.Unlock()
}

func (c *collector) snapshot() []Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Message(nil), c.msgs...)
}

// waitFor polls cond for up to 15 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func publisher(t *testing.T, broker string, o *mqtt.ClientOptions) mqtt.Client {
	t.Helper()
	if o == nil {
		o = mqtt.NewClientOptions()
	}
	o.AddBroker(broker).SetClientID(testsvc.RandomName("pub")).SetAutoReconnect(true).SetConnectRetry(true).
		SetMaxReconnectInterval(200 * time.Millisecond)
	c := mqtt.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publisher connect: %v", tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c
}

func pub(t *testing.T, c mqtt.Client, topic string, qos byte, retained bool, payload string) {
	t.Helper()
	if tok := c.Publish(topic, qos, retained, payload); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publish %s: %v", topic, tok.Error())
	}
}

func newClient(t *testing.T, broker string, qos byte, o *mqtt.ClientOptions) (*Client, *testsvc.SyncBuffer) {
	t.Helper()
	if o == nil {
		o = mqtt.NewClientOptions()
	}
	o.AddBroker(broker).SetClientID(testsvc.RandomName("live")).SetConnectTimeout(5 * time.Second)
	logs := &testsvc.SyncBuffer{}
	c := New(Config{Options: o, QoS: qos, MinBackoff: 50 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	t.Cleanup(c.Close)
	return c, logs
}

// Every QoS: each message once, in order, on its concrete topic; acknowledged (QoS 1 and 2 in-flight windows
// would stall after 20 unacknowledged messages otherwise).
func TestDeliveryAtEveryQoS(t *testing.T) {
	broker := testsvc.MQTTURL(t)
	p := publisher(t, broker, nil)
	for qos := byte(0); qos <= 2; qos++ {
		t.Run(fmt.Sprintf("qos%d", qos), func(t *testing.T) {
			c, _ := newClient(t, broker, qos, nil)
			prefix := testsvc.RandomName("deliver")
			var got collector
			unsub, err := c.Subscribe(prefix+"/+/t", got.handle)
			if err != nil {
				t.Fatal(err)
			}
			defer unsub()
			waitFor(t, "the subscription", func() bool {
				pub(t, p, prefix+"/probe/t", qos, false, "probe")
				time.Sleep(50 * time.Millisecond)
				return len(got.snapshot()) > 0
			})
			got.mu.Lock()
			got.msgs = nil
			got.mu.Unlock()
			const n = 300
			for i := 0; i < n; i++ {
				p.Publish(fmt.Sprintf("%s/n%d/t", prefix, i%3), qos, false, fmt.Sprint(i))
			}
			waitFor(t, fmt.Sprintf("%d messages", n), func() bool { return len(got.snapshot()) >= n })
			time.Sleep(100 * time.Millisecond)
			msgs := got.snapshot()
			if len(msgs) != n {
				t.Fatalf("got %d messages, want %d", len(msgs), n)
			}
			for i, m := range msgs {
				if want := fmt.Sprintf("%s/n%d/t", prefix, i%3); m.Topic != want || string(m.Payload) != fmt.Sprint(i) {
					t.Fatalf("message %d: %s %q, want %s %q", i, m.Topic, m.Payload, want, fmt.Sprint(i))
				}
			}
		})
	}
}

// Retained messages come from the broker to the filter's first consumer and from the cache to a later one;
// the last consumer's leaving unsubscribes (nothing more is delivered) and empties the cache.
func TestRetainedCacheAndUnsubscribe(t *testing.T) {
	broker := testsvc.MQTTURL(t)
	p := publisher(t, broker, nil)
	prefix := testsvc.RandomName("retain")
	topic := prefix + "/node1/temperature"
	pub(t, p, topic, 1, true, "21.5")
	t.Cleanup(func() { pub(t, p, topic, 1, true, "") })

	c, _ := newClient(t, broker, 1, nil)
	var first, second collector
	unsub1, err := c.Subscribe(prefix+"/#", first.handle)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the retained message", func() bool { return len(first.snapshot()) == 1 })
	if m := first.snapshot()[0]; !m.Retained || m.Cached || string(m.Payload) != "21.5" {
		t.Fatalf("first consumer got %+v", m)
	}
	unsub2, err := c.Subscribe(prefix+"/#", second.handle)
	if err != nil {
		t.Fatal(err)
	}
	if ms := second.snapshot(); len(ms) != 1 || !ms[0].Cached || string(ms[0].Payload) != "21.5" {
		t.Fatalf("second consumer got %+v, want the cached retained message at once", ms)
	}
	if c.Filters() != 1 || c.Connections() != 1 {
		t.Fatalf("filters %d connections %d, want one each", c.Filters(), c.Connections())
	}
	if got := c.Topics(prefix + "/+/temperature"); len(got) != 1 || got[0] != topic {
		t.Fatalf("Topics = %v", got)
	}
	unsub1()
	pub(t, p, topic, 1, false, "22")
	waitFor(t, "the live message on the remaining consumer", func() bool { return len(second.snapshot()) == 2 })
	unsub2()
	unsub2() // twice is harmless
	if c.Filters() != 0 || len(c.Topics("#")) != 0 {
		t.Fatalf("after the last consumer: filters %d, cached topics %v", c.Filters(), c.Topics("#"))
	}
	// A consumer of another filter on the same client still works, and the old filter is gone at the broker.
	var other collector
	unsub3, err := c.Subscribe(prefix+"/other", other.handle)
	if err != nil {
		t.Fatal(err)
	}
	defer unsub3()
	waitFor(t, "the other filter", func() bool {
		pub(t, p, prefix+"/other", 1, false, "x")
		time.Sleep(50 * time.Millisecond)
		return len(other.snapshot()) > 0
	})
	if len(c.Topics(prefix+"/#")) != 1 {
		t.Fatalf("cache holds %v, want only %s/other", c.Topics(prefix+"/#"), prefix)
	}
	if n := len(first.snapshot()) + len(second.snapshot()); n != 3 {
		t.Fatalf("unsubscribed consumers received %d messages in all, want 3", n)
	}
}

// TLS with a CA file, username and password against a private broker; the client reconnects and resubscribes
// when the broker restarts; a wrong password is explained in the log without the secret.
func TestTLSPasswordAndReconnect(t *testing.T) {
	m := testsvc.PrivateMosquitto(t, testsvc.MosquittoOptions{TLS: true, Username: "fieldline", Password: "s3cret"})
	ca, err := os.ReadFile(m.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	tlsCfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	broker := "ssl://localhost:" + m.Port
	opts := func(pw string) *mqtt.ClientOptions {
		return mqtt.NewClientOptions().SetUsername("fieldline").SetPassword(pw).SetTLSConfig(tlsCfg)
	}
	p := publisher(t, broker, opts("s3cret"))
	c, logs := newClient(t, broker, 1, opts("s3cret"))
	var got collector
	unsub, err := c.Subscribe("t/#", got.handle)
	if err != nil {
		t.Fatal(err)
	}
	defer unsub()
	waitFor(t, "a message over TLS", func() bool {
		pub(t, p, "t/a", 1, false, "1")
		time.Sleep(50 * time.Millisecond)
		return len(got.snapshot()) > 0
	})

	m.Stop()
	waitFor(t, "the client to notice the broker is gone", func() bool { return !c.IsConnected() })
	m.Start()
	waitFor(t, "a message after the restart", func() bool {
		if p.IsConnectionOpen() {
			p.Publish("t/b", 1, false, "2").WaitTimeout(time.Second)
		}
		time.Sleep(50 * time.Millisecond)
		for _, msg := range got.snapshot() {
			if msg.Topic == "t/b" {
				return true
			}
		}
		return false
	})
	if c.Connections() < 2 {
		t.Fatalf("connections %d, want a reconnect", c.Connections())
	}

	bad, badLogs := newClient(t, broker, 1, opts("wrong-password"))
	if _, err := bad.Subscribe("t/#", func([]Message) {}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the refusal in the log", func() bool { return strings.Contains(badLogs.String(), "not Authorized") })
	if bad.IsConnected() || bad.Connections() != 0 {
		t.Fatal("connected with a wrong password")
	}
	for _, l := range []string{logs.String(), badLogs.String()} {
		if strings.Contains(l, "s3cret") || strings.Contains(l, "wrong-password") {
			t.Fatalf("a password appears in the log:\n%s", l)
		}
	}
}

// MQTT over WebSocket (paho's WebSocket dialer under the client's own session).
func TestWebSocket(t *testing.T) {
	m := testsvc.PrivateMosquitto(t, testsvc.MosquittoOptions{WebSocket: true})
	p := publisher(t, "tcp://127.0.0.1:"+m.Port, nil)
	c, _ := newClient(t, "ws://127.0.0.1:"+m.WSPort, 1, nil)
	var got collector
	unsub, err := c.Subscribe("ws/+", got.handle)
	if err != nil {
		t.Fatal(err)
	}
	defer unsub()
	waitFor(t, "a message over WebSocket", func() bool {
		pub(t, p, "ws/a", 1, false, "over-ws")
		time.Sleep(50 * time.Millisecond)
		ms := got.snapshot()
		return len(ms) > 0 && ms[0].Topic == "ws/a" && string(ms[0].Payload) == "over-ws"
	})
}

// TestOversizedPayloadSkipped: a publication over the payload limit (the decoders' 64 KiB by default) reaches
// the consumers with its topic and size and without its payload, and the client keeps reading after it.
func TestOversizedPayloadSkipped(t *testing.T) {
	m := testsvc.PrivateMosquitto(t, testsvc.MosquittoOptions{}) // no max_packet_size: the broker passes it on
	url := "tcp://127.0.0.1:" + m.Port
	p := publisher(t, url, nil)
	c, _ := newClient(t, url, 1, nil)
	var got collector
	unsub, err := c.Subscribe("big/+", got.handle)
	if err != nil {
		t.Fatal(err)
	}
	defer unsub()
	waitFor(t, "subscribed", func() bool {
		pub(t, p, "big/probe", 1, false, "1")
		time.Sleep(20 * time.Millisecond)
		return len(got.snapshot()) > 0
	})
	big := strings.Repeat("9", 3<<20)
	pub(t, p, "big/a", 1, false, big)
	pub(t, p, "big/b", 1, false, "2.5")
	waitFor(t, "the message after the big one", func() bool {
		ms := got.snapshot()
		return len(ms) > 0 && ms[len(ms)-1].Topic == "big/b"
	})
	var seen bool
	for _, msg := range got.snapshot() {
		switch msg.Topic {
		case "big/a":
			seen = true
			if msg.Payload != nil || msg.Skipped != len(big) {
				t.Errorf("big/a: %d payload bytes kept, Skipped %d; want none kept, Skipped %d", len(msg.Payload), msg.Skipped, len(big))
			}
		case "big/b":
			if string(msg.Payload) != "2.5" || msg.Skipped != 0 {
				t.Errorf("big/b: payload %q, Skipped %d", msg.Payload, msg.Skipped)
			}
		}
	}
	if !seen {
		t.Error("the oversized message was not delivered at all")
	}
}
