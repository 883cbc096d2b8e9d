package sim

// Run against the real Mosquitto of scripts/services.sh (skipped when it is not up, failed under CI), through a
// testsvc.Proxy that can cut the connection without a DISCONNECT: the retained status and the last will.

import (
	"context"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/fieldline-iot/fieldline/internal/testsvc"
)

// statusMsg is one message a watcher received.
type statusMsg struct{ topic, payload string }

// watcher is a subscriber to the status topics that records what it receives, in order.
type watcher struct {
	mu   sync.Mutex
	msgs []statusMsg
}

// watch subscribes to topics on broker (directly, not through the proxy) and records every message.
func watch(t *testing.T, broker string, topics ...string) *watcher {
	t.Helper()
	w := &watcher{}
	c := connect(t, broker)
	filters := map[string]byte{}
	for _, tp := range topics {
		filters[tp] = 1
	}
	tok := c.SubscribeMultiple(filters, func(_ mqtt.Client, m mqtt.Message) {
		w.mu.Lock()
		w.msgs = append(w.msgs, statusMsg{m.Topic(), string(m.Payload())})
		w.mu.Unlock()
	})
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe %v: %v", topics, tok.Error())
	}
	return w
}

// waitFor waits until the watcher has received payload on topic after the first skip messages it recorded, and
// returns the number of messages recorded by then.
func (w *watcher) waitFor(t *testing.T, skip int, topic, payload string, within time.Duration) int {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		w.mu.Lock()
		msgs := slices.Clone(w.msgs)
		w.mu.Unlock()
		for i := skip; i < len(msgs); i++ {
			if msgs[i] == (statusMsg{topic, payload}) {
				return len(msgs)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q on %s within %v; received %v", payload, topic, within, msgs[min(skip, len(msgs)):])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// connect connects a test client (clean session, random id) and disconnects it at cleanup.
func connect(t *testing.T, broker string) mqtt.Client {
	t.Helper()
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker).SetClientID(testsvc.RandomName("fieldline-sim-test-")).
		SetCleanSession(true).SetAutoReconnect(false))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect %s: %v", broker, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c
}

// TestRunStatusWillAndReconnect: while Run runs, both status topics retain "online"; a connection cut without
// DISCONNECT makes the broker publish the will, "offline" on the Pico's status topic (the gateway's keeps its
// "online": one will per connection); the automatic reconnect says "online" again; a clean stop leaves a
// retained "offline" on both. The summary counts every status publication.
func TestRunStatusWillAndReconnect(t *testing.T) {
	broker := testsvc.MQTTURL(t)
	u, err := url.Parse(broker)
	if err != nil || u.Scheme != "tcp" {
		t.Skipf("the proxy forwards plain TCP only, broker %q", broker)
	}
	proxy := testsvc.NewProxy(t, u.Host)
	proxy.Up()
	prefix := testsvc.RandomName("simw") + "-"
	pico, gw := prefix+"pico/status", prefix+"iiot/status"
	testsvc.ClearRetained(t, broker, pico, gw)
	w := watch(t, broker, pico, gw)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type result struct {
		sum *Summary
		err error
	}
	done := make(chan result, 1)
	go func() {
		sum, err := Run(ctx, Config{Broker: "tcp://" + proxy.Addr, QoS: 1, Interval: 100 * time.Millisecond, DrainTimeout: 3 * time.Second,
			Fleet: FleetConfig{Seed: 3, Nodes: 1, Prefix: prefix}})
		done <- result{sum, err}
	}()

	n := w.waitFor(t, 0, pico, Online, 15*time.Second)
	w.waitFor(t, 0, gw, Online, 5*time.Second)
	for _, tp := range []string{pico, gw} {
		if got := testsvc.Retained(t, broker, tp); got != Online {
			t.Errorf("while running, %s retains %q, want %q", tp, got, Online)
		}
	}

	proxy.Down() // the simulator's connection is cut: the broker sees it close without DISCONNECT
	n = w.waitFor(t, n, pico, Offline, 10*time.Second)
	if got := testsvc.Retained(t, broker, pico); got != Offline {
		t.Errorf("after the connection dropped, %s retains %q, want the will %q", pico, got, Offline)
	}
	if got := testsvc.Retained(t, broker, gw); got != Online {
		t.Errorf("after the connection dropped, %s retains %q, want %q (the will covers the first status topic only)", gw, got, Online)
	}

	proxy.Up() // paho reconnects by itself (at most 5 s later): "online" again
	w.waitFor(t, n, pico, Online, 20*time.Second)
	n = w.waitFor(t, n, gw, Online, 5*time.Second) // published after the Pico's, on the same connection
	for _, tp := range []string{pico, gw} {
		if got := testsvc.Retained(t, broker, tp); got != Online {
			t.Errorf("after the reconnect, %s retains %q, want %q", tp, got, Online)
		}
	}

	cancel() // a clean stop, as on SIGTERM
	var r result
	select {
	case r = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return within 30s of the cancellation")
	}
	if r.err != nil {
		t.Fatal(r.err)
	}
	w.waitFor(t, n, pico, Offline, 5*time.Second)
	w.waitFor(t, n, gw, Offline, 5*time.Second)
	for _, tp := range []string{pico, gw} {
		if got := testsvc.Retained(t, broker, tp); got != Offline {
			t.Errorf("after a clean stop, %s retains %q, want %q", tp, got, Offline)
		}
		// Two connects ("online" each) and the clean stop ("offline"), each acknowledged by the broker.
		if st := r.sum.PerTopic[tp]; st == nil || st.States != 3 || st.Errors != 0 {
			t.Errorf("summary for %s: %+v, want 3 status messages sent", tp, st)
		}
	}
	if r.sum.States != 6 {
		t.Errorf("summary: %d states, want 6", r.sum.States)
	}
}
