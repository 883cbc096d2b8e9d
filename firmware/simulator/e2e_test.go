package main

// The simulator driving the real ingester: fieldline-sim and fieldline-ingester run as subprocesses against the
// real Mosquitto and a fresh PostgreSQL database (scripts/services.sh; skipped outside CI when they are not
// up), each test with its own topic prefix and client ids, so tests and other users of the broker do not mix.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/jackc/pgx/v5"

	"github.com/fieldline-iot/fieldline/firmware/simulator/internal/sim"
	"github.com/fieldline-iot/fieldline/internal/ingesterproc"
	"github.com/fieldline-iot/fieldline/internal/testsvc"
)

var (
	buildOnce           sync.Once
	buildErr            error
	simBin, ingesterBin string
)

// binaries builds fieldline-sim and fieldline-ingester once per test binary (only when an e2e test runs).
func binaries(t *testing.T) (sim, ingester string) {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "fieldline-sim-e2e-")
		if err != nil {
			buildErr = err
			return
		}
		simBin, ingesterBin = filepath.Join(dir, "fieldline-sim"), filepath.Join(dir, "fieldline-ingester")
		for bin, pkg := range map[string]string{
			simBin:      "github.com/fieldline-iot/fieldline/firmware/simulator",
			ingesterBin: "github.com/fieldline-iot/fieldline/ingester",
		} {
			if out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("go build %s: %w\n%s", pkg, err, out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return simBin, ingesterBin
}

// cleanEnv is the environment without FIELDLINE_* settings (they would override the test's configuration).
func cleanEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "FIELDLINE_") && !strings.HasPrefix(kv, "FIELDLINE_TEST_") {
			continue
		}
		out = append(out, kv)
	}
	return out
}

// ingesterConfig subscribes the simulator's topic families under prefix as deploy/ingester.yaml does: the
// retained status topics as text states, value topics of both reports and the Pico W firmware's JSON mode (used
// by the late fault). No two filters overlap (a broker may deliver a message once per matching subscription).
func ingesterConfig(broker, clientID, pgURL, spool, prefix string) string {
	return fmt.Sprintf(`mqtt:
  url: %[1]s
  client_id: %[2]s
  subscriptions:
    - filter: %[5]spico/status
      qos: 1
      template: "{device}/{metric}"
      format: value
      value_type: text
    - filter: %[5]siiot/status
      qos: 1
      template: "%[5]siiot/{metric}"
      labels: {device: gateway}
      format: value
      value_type: text
    - filter: %[5]spico/+/+
      qos: 1
      template: "{device}/{metric}/{sensor}"
      format: value
    - filter: %[5]spico/json
      qos: 1
      template: "{device}/json"
      format: json
      json:
        time_field: ts
        time_format: unix
        fields:
          t:  {metric: temperature, sensor: dht22}
          h:  {metric: humidity, sensor: dht22}
          tc: {metric: temperature, sensor: internal}
    - filter: %[5]siiot/+/+
      qos: 1
      template: "%[5]siiot/{device}/{metric}"
      format: value
postgres:
  url: %[3]s
spool:
  dir: %[4]s
`, broker, clientID, pgURL, spool, prefix)
}

// ingester is the ingester subprocess (internal/ingesterproc, shared with ingester/e2e).
type ingester struct{ *ingesterproc.Process }

// startIngester runs the ingester with its own database, client id and spool, and waits for /readyz.
func startIngester(t *testing.T, broker, pgURL, prefix string) ingester {
	t.Helper()
	_, bin := binaries(t)
	clientID := testsvc.RandomName("fieldline-sim-e2e-ingester-")
	t.Cleanup(func() { ingesterproc.DropSession(broker, clientID) })
	return ingester{ingesterproc.Start(t, bin, ingesterConfig(broker, clientID, pgURL, t.TempDir(), prefix), cleanEnv())}
}

// metric sums a counter family, optionally only the series with label name=value.
func (in ingester) metric(t *testing.T, name, label, value string) float64 {
	t.Helper()
	return ingesterproc.Metric(in.Metrics(), name, label, value)
}

// runSim runs fieldline-sim to completion (or until signal is sent after signalAfter) and decodes its JSON summary.
func runSim(t *testing.T, broker string, signalAfter time.Duration, args ...string) (*sim.Summary, int) {
	t.Helper()
	bin, _ := binaries(t)
	args = append([]string{"-broker", broker, "-summary", "json", "-client-id", testsvc.RandomName("fieldline-sim-e2e-")}, args...)
	cmd := exec.Command(bin, args...)
	cmd.Env = cleanEnv()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	if signalAfter > 0 {
		time.Sleep(signalAfter)
		_ = cmd.Process.Signal(syscall.SIGTERM)
	}
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("fieldline-sim %q did not exit within 60s\n%s", args, stderr.String())
	}
	var sum sim.Summary
	if err := json.Unmarshal(stdout.Bytes(), &sum); err != nil {
		t.Fatalf("fieldline-sim summary: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	return &sum, cmd.ProcessState.ExitCode()
}

func pgQuery(t *testing.T, url string, f func(ctx context.Context, c *pgx.Conn) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	if err := f(ctx, c); err != nil {
		t.Fatal(err)
	}
}

// states returns the states table as "device|metric|sensor|value" rows, per device in time order.
func states(t *testing.T, url string) []string {
	t.Helper()
	var out []string
	pgQuery(t, url, func(ctx context.Context, c *pgx.Conn) error {
		rows, err := c.Query(ctx, "SELECT device, metric, sensor, value FROM states ORDER BY device, time")
		if err != nil {
			return err
		}
		for rows.Next() {
			var d, m, s, v string
			if err := rows.Scan(&d, &m, &s, &v); err != nil {
				return err
			}
			out = append(out, d+"|"+m+"|"+s+"|"+v)
		}
		return rows.Err()
	})
	return out
}

// waitStates waits until the states table holds want (per device in time order), then checks that no duplicate
// follows.
func waitStates(t *testing.T, url string, want []string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := states(t, url)
		if slices.Equal(got, want) {
			break
		}
		if len(got) > len(want) || time.Now().After(deadline) {
			t.Fatalf("states:\n got %q\nwant %q", got, want)
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(time.Second)
	if got := states(t, url); !slices.Equal(got, want) {
		t.Fatalf("states a second after reaching %q: %q", want, got)
	}
}

func countRows(t *testing.T, url, where string) (n int64) {
	t.Helper()
	pgQuery(t, url, func(ctx context.Context, c *pgx.Conn) error {
		return c.QueryRow(ctx, "SELECT count(*) FROM readings WHERE "+where).Scan(&n)
	})
	return n
}

// waitRows waits until the table holds want rows, then checks it stays there (no late duplicates).
func waitRows(t *testing.T, url string, want int64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		n := countRows(t, url, "true")
		if n == want {
			break
		}
		if n > want || time.Now().After(deadline) {
			t.Fatalf("readings: %d rows, want exactly %d", n, want)
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(time.Second)
	if n := countRows(t, url, "true"); n != want {
		t.Fatalf("readings: %d rows a second after reaching %d", n, want)
	}
}

// series maps a simulator topic (under prefix) to the (device, metric, sensor) the ingester stores it as.
func series(prefix, topic string) string {
	parts := strings.Split(topic, "/")
	if parts[0] == prefix+"iiot" {
		return parts[1] + "|" + parts[2] + "|"
	}
	return parts[0] + "|" + parts[1] + "|" + parts[2]
}

// TestSimulatorDrivesIngester: 3 nodes × 3 s at 10 readings/s per topic, QoS 1, both reports' topic trees →
// exactly the readings the simulator reports as sent, per series, in PostgreSQL; and the status topics'
// "online" at connect and "offline" at exit as states, nothing rejected.
func TestSimulatorDrivesIngester(t *testing.T) {
	broker, pgURL := testsvc.MQTTURL(t), testsvc.NewPostgresDB(t)
	prefix := testsvc.RandomName("sim") + "-"
	testsvc.ClearRetained(t, broker, prefix+"pico/status", prefix+"iiot/status")
	in := startIngester(t, broker, pgURL, prefix)

	sum, code := runSim(t, broker, 0, "-prefix", prefix, "-nodes", "3", "-rate", "10", "-duration", "3s", "-qos", "1", "-seed", "7")
	if code != 0 || sum.Errors != 0 {
		t.Fatalf("fieldline-sim exit %d, %d errors: %+v", code, sum.Errors, sum)
	}
	// 3 s at 100 ms = 30 ticks; per tick 3 Pico topics + node1..3 (2 + gas on node1 and node3 = 8) + 4 gateway;
	// and two status topics, "online" once (one connect) and "offline" once (the clean exit).
	const ticks, perTick, status = 30, 3 + 8 + 4, 2
	if sum.Ticks != ticks || sum.Valid != ticks*perTick || sum.States != 2*status || sum.Sent != sum.Valid+sum.States ||
		sum.Readings != sum.Valid || len(sum.PerTopic) != perTick+status {
		t.Fatalf("summary: ticks %d valid %d states %d sent %d readings %d topics %d; want %d ticks × %d topics + %d status topics × 2",
			sum.Ticks, sum.Valid, sum.States, sum.Sent, sum.Readings, len(sum.PerTopic), ticks, perTick, status)
	}
	for _, tp := range []string{prefix + "pico/status", prefix + "iiot/status"} {
		if st := sum.PerTopic[tp]; st == nil || st.Sent != 2 || st.States != 2 {
			t.Errorf("summary for %s: %+v, want online and offline sent", tp, st)
		}
	}
	waitRows(t, pgURL, sum.Readings)
	waitStates(t, pgURL, []string{"gateway|status||online", "gateway|status||offline", prefix + "pico|status||online", prefix + "pico|status||offline"})

	want := map[string]int64{}
	for topic, st := range sum.PerTopic {
		if st.Readings > 0 {
			want[series(prefix, topic)] += st.Readings
		}
	}
	got := map[string]int64{}
	pgQuery(t, pgURL, func(ctx context.Context, c *pgx.Conn) error {
		rows, err := c.Query(ctx, "SELECT device, metric, sensor, count(*) FROM readings GROUP BY 1, 2, 3")
		if err != nil {
			return err
		}
		for rows.Next() {
			var d, m, s string
			var n int64
			if err := rows.Scan(&d, &m, &s, &n); err != nil {
				return err
			}
			got[d+"|"+m+"|"+s] = n
		}
		return rows.Err()
	})
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("rows per series\n got %v\nwant %v", got, want)
	}
	if acked := in.metric(t, "fieldline_ingester_messages_acked_total", "", ""); acked != float64(sum.Sent) {
		t.Errorf("ingester acked %v messages, simulator sent %d", acked, sum.Sent)
	}
	if rej := in.metric(t, "fieldline_ingester_messages_rejected_total", "", ""); rej != 0 {
		t.Errorf("ingester rejected %v messages, want 0", rej)
	}
	// Values are the reports' kind: node1's temperature and humidity are plausible room values.
	pgQuery(t, pgURL, func(ctx context.Context, c *pgx.Conn) error {
		var lo, hi float64
		if err := c.QueryRow(ctx, "SELECT min(value), max(value) FROM readings WHERE device = 'node1' AND metric = 'humidity'").Scan(&lo, &hi); err != nil {
			return err
		}
		if lo < 5 || hi > 100 {
			t.Errorf("node1 humidity in [%v, %v]", lo, hi)
		}
		return nil
	})
}

// TestSimulatorFaultsThroughIngester: bursts, bad payloads and late timestamps. Every valid reading is stored,
// every bad payload is rejected for the reason the simulator names, late readings keep their old time.
func TestSimulatorFaultsThroughIngester(t *testing.T) {
	broker, pgURL := testsvc.MQTTURL(t), testsvc.NewPostgresDB(t)
	prefix := testsvc.RandomName("simf") + "-"
	testsvc.ClearRetained(t, broker, prefix+"pico/status", prefix+"iiot/status")
	in := startIngester(t, broker, pgURL, prefix)

	sum, code := runSim(t, broker, 0, "-prefix", prefix, "-nodes", "2", "-rate", "10", "-duration", "2s", "-seed", "11",
		"-fault", "burst,bad,late", "-bad-rate", "0.2", "-burst-every", "5", "-burst-size", "10", "-late-by", "1h")
	if code != 0 || sum.Errors != 0 || sum.Bad == 0 || sum.Late == 0 || sum.Valid == 0 {
		t.Fatalf("fieldline-sim exit %d: %+v", code, sum)
	}
	// 20 ticks, 4 of them bursts of 1+10 samplings: 20 + 4×10 = 60 samplings of 12 value topics + 1 JSON message;
	// and "online" and "offline" on the two status topics (never replaced by a bad payload).
	if sum.Sent != 60*13+4 || sum.States != 4 || sum.Late != 60 || sum.Readings != sum.Valid+3*sum.Late {
		t.Fatalf("summary: sent %d (want %d), states %d, late %d, readings %d", sum.Sent, 60*13+4, sum.States, sum.Late, sum.Readings)
	}
	waitRows(t, pgURL, sum.Readings)

	if n := countRows(t, pgURL, "time < now() - interval '50 minutes'"); n != 3*sum.Late {
		t.Errorf("%d rows an hour old, want %d (3 per late message)", n, 3*sum.Late)
	}
	var total float64
	for reason, n := range sum.Rejected {
		got := in.metric(t, "fieldline_ingester_messages_rejected_total", "reason", reason)
		if got != float64(n) {
			t.Errorf("rejected{reason=%q} = %v, simulator sent %d", reason, got, n)
		}
		total += got
	}
	if all := in.metric(t, "fieldline_ingester_messages_rejected_total", "", ""); all != total || all != float64(sum.Bad) {
		t.Errorf("rejected total %v, by the simulator's reasons %v, bad sent %d", all, total, sum.Bad)
	}
	if acked := in.metric(t, "fieldline_ingester_messages_acked_total", "", ""); acked != float64(sum.Sent) {
		t.Errorf("ingester acked %v, simulator sent %d (bad ones are acknowledged too)", acked, sum.Sent)
	}
}

// TestSimulatorSIGTERM: without -duration the simulator runs until SIGTERM, then drains and prints its summary;
// it leaves a retained "offline" on its status topic (the pico tree only: no gateway status).
func TestSimulatorSIGTERM(t *testing.T) {
	broker := testsvc.MQTTURL(t)
	binaries(t)
	prefix := testsvc.RandomName("simt") + "-"
	testsvc.ClearRetained(t, broker, prefix+"pico/status", prefix+"iiot/status")
	start := time.Now()
	sum, code := runSim(t, broker, 1500*time.Millisecond, "-prefix", prefix, "-rate", "20", "-topics", "pico")
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("exit took %v after SIGTERM", took)
	}
	if code != 0 || sum.Errors != 0 || sum.Ticks < 10 || sum.States != 2 || sum.Sent != int64(sum.Ticks)*3+2 {
		t.Errorf("exit %d, summary %+v", code, sum)
	}
	if got := testsvc.Retained(t, broker, prefix+"pico/status"); got != "offline" {
		t.Errorf("after SIGTERM, %spico/status retains %q, want offline", prefix, got)
	}
	if got := testsvc.Retained(t, broker, prefix+"iiot/status"); got != "" {
		t.Errorf("-topics pico published %q on the gateway's status topic", got)
	}
}

// TestSimulatorWillOnKill: while fieldline-sim runs, its status topics retain "online"; killed (SIGKILL: no
// DISCONNECT, no "offline" of its own), the broker publishes its last will, a retained "offline" on
// <prefix>pico/status. The gateway's status keeps "online": MQTT gives a connection one will, the Pico's.
func TestSimulatorWillOnKill(t *testing.T) {
	broker := testsvc.MQTTURL(t)
	bin, _ := binaries(t)
	prefix := testsvc.RandomName("simk") + "-"
	pico, gw := prefix+"pico/status", prefix+"iiot/status"
	testsvc.ClearRetained(t, broker, pico, gw)
	offline := make(chan string, 4)
	subscribe(t, broker, pico, func(payload string, retained bool) {
		if payload == "offline" && !retained {
			offline <- payload
		}
	})

	cmd := exec.Command(bin, "-broker", broker, "-client-id", testsvc.RandomName("fieldline-sim-e2e-"), "-prefix", prefix, "-rate", "10", "-nodes", "1")
	cmd.Env = cleanEnv()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	t.Cleanup(func() {
		if !killed {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for testsvc.Retained(t, broker, pico) != "online" || testsvc.Retained(t, broker, gw) != "online" {
		if time.Now().After(deadline) {
			t.Fatalf("no retained online on %s and %s within 15s\n%s", pico, gw, stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}

	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	killed = true
	select {
	case <-offline:
	case <-time.After(10 * time.Second):
		t.Fatalf("no last will on %s within 10s of SIGKILL\n%s", pico, stderr.String())
	}
	if got := testsvc.Retained(t, broker, pico); got != "offline" {
		t.Errorf("after SIGKILL, %s retains %q, want the will, offline", pico, got)
	}
	if got := testsvc.Retained(t, broker, gw); got != "online" {
		t.Errorf("after SIGKILL, %s retains %q, want online (no will of its own)", gw, got)
	}
}

// subscribe subscribes a test client to topic (disconnected at cleanup) and calls f for every message.
func subscribe(t *testing.T, broker, topic string, f func(payload string, retained bool)) {
	t.Helper()
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker).SetClientID(testsvc.RandomName("fieldline-sim-e2e-sub-")).
		SetCleanSession(true).SetAutoReconnect(false))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect %s: %v", broker, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	tok := c.Subscribe(topic, 1, func(_ mqtt.Client, m mqtt.Message) { f(string(m.Payload()), m.Retained()) })
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe %s: %v", topic, tok.Error())
	}
}
