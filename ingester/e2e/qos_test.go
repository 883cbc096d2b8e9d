package e2e

import (
	"context"
	"fmt"
	"strconv"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/fieldline-iot/fieldline/internal/mqttsub"
	"github.com/fieldline-iot/fieldline/internal/testsvc"
)

// TestQoSLevels: messages of subscriptions at QoS 0, 1 and 2, published at the same QoS, are each stored once,
// and the acknowledgements the ingester writes (PUBACK for QoS 1; PUBREC, then PUBCOMP for the broker's PUBREL
// for QoS 2) complete every flow: a second ingester resuming the same persistent session receives nothing
// again, and the broker has nothing to resend to it (no PUBLISH without its PUBACK or PUBREC, no PUBREL
// without its PUBCOMP), checked by resuming the session with a bare connection that reads what the broker sends.
//
// (The services' broker, whose in-flight window is 20 000: Mosquitto 2.0.11, Debian 12's, stalls QoS 2
// deliveries behind a window of 20 whatever the subscriber does — its in-flight quota bugs were fixed in
// 2.0.13.)
func TestQoSLevels(t *testing.T) {
	e := newEnv(t, false)
	subs := fmt.Sprintf(`    - filter: %[1]s/q0/+/+
      qos: 0
      template: "%[1]s/q0/{device}/{metric}"
    - filter: %[1]s/q1/+/+
      qos: 1
      template: "%[1]s/q1/{device}/{metric}"
    - filter: %[1]s/q2/+/+
      qos: 2
      template: "%[1]s/q2/{device}/{metric}"`, e.prefix)
	in := e.start(e.config(subs))

	pub := testsvc.RandomName("fieldline-test-qos-")
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(e.mqttURL).SetClientID(pub).SetCleanSession(true))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publisher connect: %v", tok.Error())
	}
	defer c.Disconnect(100)
	const n = 300
	for q := range byte(3) {
		var toks []mqtt.Token
		for i := range n {
			toks = append(toks, c.Publish(fmt.Sprintf("%s/q%d/node%d/m%d", e.prefix, q, i%3, q), q, false, strconv.Itoa(i)))
		}
		for _, tok := range toks {
			if !tok.WaitTimeout(20*time.Second) || tok.Error() != nil {
				t.Fatalf("publish at QoS %d: %v", q, tok.Error())
			}
		}
	}
	for q := range 3 {
		eventually(t, 30*time.Second, func() string {
			rows, distinct := pgCount(t, e.pgURL, "metric = $1", fmt.Sprintf("m%d", q))
			if rows != n || distinct != n {
				return fmt.Sprintf("QoS %d: %d rows, %d distinct values, want %d of each", q, rows, distinct, n)
			}
			return ""
		})
	}
	fams := in.Metrics()
	if got := metric(fams, "fieldline_ingester_messages_acked_total", "", ""); got != 3*n {
		t.Errorf("acked %v messages, want %d (QoS 0 ones count as done once stored)", got, 3*n)
	}
	in.Stop(syscall.SIGTERM)

	// Resume the session bare: whatever the broker sends now is a flow the ingester left open.
	listen, stop := context.WithCancel(context.Background())
	s, present, err := mqttsub.Connect(listen, nil,
		mqtt.NewClientOptions().AddBroker(e.mqttURL).SetClientID(e.clientID).SetKeepAlive(30*time.Second), false, -1)
	if err != nil || !present {
		t.Fatalf("resume the session: present %v, %v", present, err)
	}
	defer s.Close()
	time.AfterFunc(1500*time.Millisecond, stop) // DISCONNECT: the read below ends
	var resent []string
	for {
		pkt, err := packets.ReadPacket(s.Reader())
		if err != nil {
			break
		}
		resent = append(resent, pkt.String())
	}
	if len(resent) > 0 {
		t.Errorf("the broker resent %d packets to the resumed session, first %s", len(resent), resent[0])
	}

	// The same client id resumes the persistent session: nothing is left in it.
	again := e.start(e.config(subs))
	time.Sleep(2 * time.Second)
	if got := metric(again.Metrics(), "fieldline_ingester_messages_received_total", "", ""); got != 0 {
		t.Errorf("the resumed session received %v messages again: acknowledgements did not complete", got)
	}
	for q := range 3 {
		if rows, _ := pgCount(t, e.pgURL, "metric = $1", fmt.Sprintf("m%d", q)); rows != n {
			t.Errorf("QoS %d: %d rows after the second ingester, want %d", q, rows, n)
		}
	}
}
