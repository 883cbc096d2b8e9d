package e2e

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fieldline-iot/fieldline/internal/testsvc"
)

// The fault tests stop and start the shared services, so `go tool mage test` runs them alone, after the rest
// (go test -p 1 -run ^TestFault). Each publishes a paced stream of unique values, injects the fault
// mid-stream, and ends with every published reading stored in PostgreSQL and in InfluxDB; duplicates (a
// message stored, then redelivered because its acknowledgement was lost) are counted and logged.

const faultMessages = 12_000

type faultRun struct {
	e   *env
	cfg string
	in  *ingester
}

func newFaultRun(t *testing.T) *faultRun {
	e := newEnv(t, true)
	cfg := e.config(fmt.Sprintf(`    - filter: %[1]s/f/+/+
      qos: 1
      template: "%[1]s/f/{device}/{metric}"
      format: value`, e.prefix))
	return &faultRun{e: e, cfg: cfg, in: e.start(cfg)}
}

// stream publishes faultMessages unique values at about rate msg/s; fault runs once a third has been sent.
func (f *faultRun) stream(t *testing.T, rate int, fault func()) {
	pub := newPublisher(t, f.e.mqttURL)
	msgs := make([]pubMsg, faultMessages)
	for i := range msgs {
		msgs[i] = pubMsg{fmt.Sprintf("%s/f/node%d/temperature", f.e.prefix, i%5), []byte(strconv.Itoa(i))}
	}
	const chunk = 200
	interval := time.Duration(float64(time.Second) * chunk / float64(rate))
	var wg sync.WaitGroup
	for off := 0; off < len(msgs); off += chunk {
		if off == len(msgs)/3 {
			wg.Add(1)
			go func() { defer wg.Done(); fault() }()
		}
		start := time.Now()
		pub.publishAll(msgs[off:min(off+chunk, len(msgs))], chunk)
		time.Sleep(interval - time.Since(start))
	}
	wg.Wait()
}

// verify waits until both sinks hold every value, then logs and returns the duplicates.
func (f *faultRun) verify(t *testing.T) (pgDup, influxDup int64) {
	var pgRows, pgDistinct, ixPoints, ixDistinct int64
	eventually(t, 120*time.Second, func() string {
		pgRows, pgDistinct = pgCount(t, f.e.pgURL, "")
		if pgDistinct != faultMessages {
			return fmt.Sprintf("PostgreSQL holds %d of %d distinct values", pgDistinct, faultMessages)
		}
		ixPoints, ixDistinct = influxCount(t, f.e.influx, "temperature")
		if ixDistinct != faultMessages {
			return fmt.Sprintf("InfluxDB holds %d of %d distinct values", ixDistinct, faultMessages)
		}
		return ""
	})
	// nothing outside the published set
	if n, _ := pgCount(t, f.e.pgURL, "value < 0 OR value >= $1 OR value <> floor(value)", faultMessages); n != 0 {
		t.Errorf("PostgreSQL holds %d values that were never published", n)
	}
	pgDup, influxDup = pgRows-pgDistinct, ixPoints-ixDistinct
	t.Logf("every one of %d readings stored; duplicates: postgres=%d influxdb=%d", faultMessages, pgDup, influxDup)
	return pgDup, influxDup
}

func (f *faultRun) spooled(sink string) float64 {
	return metric(f.in.Metrics(), "fieldline_ingester_readings_spooled_total", "sink", sink)
}

func TestFaultInfluxRestart(t *testing.T) {
	f := newFaultRun(t)
	f.stream(t, 1500, func() {
		testsvc.Services(t, "stop", "influxdb")
		time.Sleep(3 * time.Second)
		testsvc.Services(t, "start", "influxdb")
	})
	f.verify(t)
	if n := f.spooled("influxdb"); n == 0 {
		t.Errorf("no reading went through the InfluxDB spool: the fault did not hit the sink")
	}
	if n := f.spooled("postgres"); n != 0 {
		t.Errorf("%v readings spooled for PostgreSQL while only InfluxDB was down", n)
	}
}

func TestFaultPostgresRestart(t *testing.T) {
	f := newFaultRun(t)
	f.stream(t, 1500, func() {
		testsvc.Services(t, "stop", "postgres")
		time.Sleep(3 * time.Second)
		testsvc.Services(t, "start", "postgres")
	})
	f.verify(t)
	if n := f.spooled("postgres"); n == 0 {
		t.Errorf("no reading went through the PostgreSQL spool: the fault did not hit the sink")
	}
}

func TestFaultBrokerRestart(t *testing.T) {
	f := newFaultRun(t)
	f.stream(t, 1500, func() {
		testsvc.Services(t, "stop", "mosquitto")
		time.Sleep(2 * time.Second)
		testsvc.Services(t, "start", "mosquitto")
	})
	f.verify(t)
	if lost := metric(f.in.Metrics(), "fieldline_ingester_mqtt_connections_lost_total", "", ""); lost == 0 {
		t.Errorf("the ingester never lost its MQTT connection: the fault did not happen")
	}
}

// TestFaultIngesterKill SIGKILLs the ingester mid-stream while InfluxDB is down (so batches sit in its spool,
// acknowledged), restarts it, then brings InfluxDB back: the spool survives the kill and is replayed.
func TestFaultIngesterKill(t *testing.T) {
	f := newFaultRun(t)
	f.stream(t, 1500, func() {
		testsvc.Services(t, "stop", "influxdb")
		time.Sleep(1500 * time.Millisecond)
		f.in.Stop(syscall.SIGKILL)
		time.Sleep(500 * time.Millisecond)
		f.in = f.e.start(f.cfg)
		time.Sleep(1500 * time.Millisecond)
		testsvc.Services(t, "start", "influxdb")
	})
	f.verify(t)
	if n := metric(f.in.Metrics(), "fieldline_ingester_readings_replayed_total", "sink", "influxdb"); n == 0 {
		t.Errorf("the restarted ingester replayed nothing from the InfluxDB spool")
	}
}

// TestFaultSpoolFullBackpressure: with InfluxDB down and a 1 MiB spool, publishing more than the spool holds
// makes the ingester stop acknowledging (the broker keeps the rest) and /readyz report it; when InfluxDB returns
// the spool drains and every reading is stored in both sinks. Nothing is dropped to make room.
func TestFaultSpoolFullBackpressure(t *testing.T) {
	e := newEnv(t, true)
	cfg := e.config(fmt.Sprintf(`    - filter: %[1]s/b/+/+
      qos: 1
      template: "%[1]s/b/{device}/{metric}"`, e.prefix))
	cfg = strings.Replace(cfg, "  dir: "+e.spoolDir+"\n", "  dir: "+e.spoolDir+"\n  max_bytes: 1048576\n", 1) // the smallest bound allowed
	in := e.start(cfg)

	testsvc.Services(t, "stop", "influxdb")
	restarted := false
	t.Cleanup(func() {
		if !restarted {
			testsvc.Services(t, "start", "influxdb")
		}
	})
	const n = 60_000 // ~2.5 MiB of spooled batches: well over the bound
	msgs := make([]pubMsg, n)
	for i := range msgs {
		msgs[i] = pubMsg{fmt.Sprintf("%s/b/node%d/temperature", e.prefix, i%5), []byte(strconv.Itoa(i))}
	}
	go newPublisher(t, e.mqttURL).publishAll(msgs, 2000)

	// The spool fills: /readyz turns 503 naming the sink, and acknowledgements stop short of n.
	var body []byte
	eventually(t, 60*time.Second, func() string {
		resp, err := http.Get("http://" + in.Addr + "/readyz")
		if err != nil {
			return err.Error()
		}
		body, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable {
			return fmt.Sprintf("/readyz %d %q with InfluxDB spool at %v bytes", resp.StatusCode, body,
				metric(in.Metrics(), "fieldline_ingester_spool_bytes", "sink", "influxdb"))
		}
		return ""
	})
	if !strings.Contains(string(body), "influxdb") {
		t.Errorf("/readyz does not name the blocked sink: %q", body)
	}
	// Batches already past the spool when it filled (up to two commit while the next fills) are still
	// acknowledged after /readyz turned 503: wait until the count settles, then it must hold.
	stalledAt := metric(in.Metrics(), "fieldline_ingester_messages_acked_total", "", "")
	for settle := time.Now().Add(10 * time.Second); time.Now().Before(settle); {
		time.Sleep(time.Second)
		now := metric(in.Metrics(), "fieldline_ingester_messages_acked_total", "", "")
		if now == stalledAt {
			break
		}
		stalledAt = now
	}
	time.Sleep(2 * time.Second)
	fams := in.Metrics()
	acked := metric(fams, "fieldline_ingester_messages_acked_total", "", "")
	if acked >= n || acked != stalledAt {
		t.Errorf("acknowledgements went on with a full spool: %v, 2 s later %v (of %d)", stalledAt, acked, n)
	}
	if sb := metric(fams, "fieldline_ingester_spool_bytes", "sink", "influxdb"); sb > 1048576 {
		t.Errorf("spool grew past its bound: %v bytes", sb)
	}
	t.Logf("spool full: %v of %d acknowledged and holding, /readyz: %s", acked, n, strings.TrimSpace(string(body)))

	testsvc.Services(t, "start", "influxdb")
	restarted = true
	eventually(t, 120*time.Second, func() string {
		if _, d := pgCount(t, e.pgURL, ""); d != n {
			return fmt.Sprintf("PostgreSQL holds %d of %d distinct values", d, n)
		}
		if _, d := influxCount(t, e.influx, "temperature"); d != n {
			return fmt.Sprintf("InfluxDB holds %d of %d distinct values", d, n)
		}
		return ""
	})
	if got := metric(in.Metrics(), "fieldline_ingester_messages_acked_total", "", ""); got < n {
		t.Errorf("after recovery %v of %d acknowledged", got, n)
	}
}
