package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fieldline-iot/fieldline/internal/testsvc"
)

// TestOversizedMessageNotHeld: a 64 MB message from a broker that lets it through (no max_packet_size) is
// counted as oversized and acknowledged, the message after it is stored, and the ingester never held it: its
// resident memory stays under the message's size (the reader skips a payload over decode.max_payload_bytes as
// it reads it; paho's codec allocated the whole packet first, about 4× its size in the end).
func TestOversizedMessageNotHeld(t *testing.T) {
	e := newEnv(t, false)
	e.mqttURL = "tcp://127.0.0.1:" + testsvc.PrivateMosquitto(t, testsvc.MosquittoOptions{}).Port
	subs := fmt.Sprintf(`    - filter: %[1]s/+/+
      qos: 1
      template: "%[1]s/{device}/{metric}"`, e.prefix)
	in := e.start(e.config(subs))
	const size = 64 << 20
	newPublisher(t, e.mqttURL).publishAll([]pubMsg{
		{e.prefix + "/node1/big", []byte(strings.Repeat("7", size))},
		{e.prefix + "/node1/temperature", []byte("21.5")},
	}, 2)
	eventually(t, 30*time.Second, func() string {
		if n, _ := pgCount(t, e.pgURL, "metric = 'temperature'"); n != 1 {
			return fmt.Sprintf("%d readings of the message after the big one", n)
		}
		return ""
	})
	fams := in.Metrics()
	if got := metric(fams, "fieldline_ingester_messages_rejected_total", "reason", "oversized"); got != 1 {
		t.Errorf("rejected{oversized} = %v, want 1", got)
	}
	if got := metric(fams, "fieldline_ingester_messages_acked_total", "", ""); got != 2 {
		t.Errorf("acked %v, want 2 (a rejected message is acknowledged)", got)
	}
	if rss := metric(fams, "process_resident_memory_bytes", "", ""); rss == 0 || rss >= size {
		t.Errorf("resident memory %.1f MB after a %d MB message: the payload was held", rss/(1<<20), size>>20)
	}
}
