package testsvc

import (
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// Retained returns the payload the broker retains on topic, as a fresh subscriber gets it ("" when none arrives
// within a second).
func Retained(t testing.TB, broker, topic string) string {
	t.Helper()
	got := make(chan string, 1)
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker).SetClientID(RandomName("fieldline-retained-")).
		SetCleanSession(true).SetAutoReconnect(false))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect %s: %v", broker, tok.Error())
	}
	defer c.Disconnect(0)
	tok := c.Subscribe(topic, 1, func(_ mqtt.Client, m mqtt.Message) {
		if m.Retained() {
			select {
			case got <- string(m.Payload()):
			default:
			}
		}
	})
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe %s: %v", topic, tok.Error())
	}
	select {
	case p := <-got:
		return p
	case <-time.After(time.Second):
		return ""
	}
}

// ClearRetained removes the retained messages on topics (an empty retained payload) at cleanup, so the shared
// broker does not keep one per test run. Registered before a process that publishes them starts, it runs after
// that process stopped.
func ClearRetained(t testing.TB, broker string, topics ...string) {
	t.Cleanup(func() {
		c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker).SetClientID(RandomName("fieldline-retained-")).SetCleanSession(true))
		if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Logf("clear retained: connect: %v", tok.Error())
			return
		}
		defer c.Disconnect(100)
		for _, tp := range topics {
			c.Publish(tp, 1, true, []byte{}).WaitTimeout(5 * time.Second)
		}
	})
}
