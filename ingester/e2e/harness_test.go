// Package e2e runs the real fieldline-ingester binary against the real services (PostgreSQL, Mosquitto,
// InfluxDB from scripts/services.sh): the field reports' messages, 100 000 messages with poison, and the fault
// tests (TestFault*, run alone by `go tool mage testFaults` because they restart services).
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	influxdb2 "github.com/influxdata/influxdb-client-go/v2"
	"github.com/jackc/pgx/v5"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/fieldline-iot/fieldline/internal/testsvc"
)

var ingesterBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "fieldline-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ingesterBin = filepath.Join(dir, "fieldline-ingester")
	out, err := exec.Command("go", "build", "-o", ingesterBin, "github.com/fieldline-iot/fieldline/ingester").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build fieldline-ingester: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// env is one test's isolated world: its own database, bucket, topic prefix, client id and spool.
type env struct {
	t        *testing.T
	pgURL    string
	influx   testsvc.Influx
	mqttURL  string
	prefix   string // topic prefix, unique per test
	clientID string
	spoolDir string
}

func newEnv(t *testing.T, withInflux bool) *env {
	t.Helper()
	e := &env{
		t:        t,
		pgURL:    testsvc.NewPostgresDB(t),
		mqttURL:  testsvc.MQTTURL(t),
		prefix:   testsvc.RandomName("e2e"),
		clientID: testsvc.RandomName("fieldline-ingester-test-"),
		spoolDir: t.TempDir(),
	}
	if withInflux {
		e.influx = testsvc.NewInfluxBucket(t)
	}
	t.Cleanup(func() { dropSession(e.mqttURL, e.clientID) })
	return e
}

// dropSession removes a persistent session from the broker (connect with clean session, disconnect).
func dropSession(broker, clientID string) {
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker).SetClientID(clientID).SetCleanSession(true))
	if tok := c.Connect(); tok.WaitTimeout(5*time.Second) && tok.Error() == nil {
		c.Disconnect(100)
	}
}

// config renders a YAML configuration for this env with the given subscriptions block (already indented).
func (e *env) config(subs string) string {
	influx := ""
	if e.influx.URL != "" {
		influx = fmt.Sprintf("influx:\n  url: %s\n  token: %q\n  org: %s\n  bucket: %s\n", e.influx.URL, e.influx.Token, e.influx.Org, e.influx.Bucket)
	}
	if subs != "" {
		subs = "  subscriptions:\n" + subs + "\n"
	}
	return fmt.Sprintf(`mqtt:
  url: %s
  client_id: %s
%spostgres:
  url: %s
%sspool:
  dir: %s
log:
  level: info
`, e.mqttURL, e.clientID, subs, e.pgURL, influx, e.spoolDir)
}

// ingester is a running fieldline-ingester subprocess.
type ingester struct {
	t       *testing.T
	cmd     *exec.Cmd
	addr    string
	logs    *syncBuffer
	done    chan struct{}
	exitErr error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// start runs the ingester with the YAML config and waits until /readyz answers 200.
func (e *env) start(yaml string, extraEnv ...string) *ingester {
	t := e.t
	t.Helper()
	path := filepath.Join(t.TempDir(), "ingester.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	in := &ingester{t: t, addr: freeAddr(t), logs: &syncBuffer{}, done: make(chan struct{})}
	in.cmd = exec.Command(ingesterBin, "-config", path, "-http-addr", in.addr)
	in.cmd.Env = append(os.Environ(), extraEnv...)
	in.cmd.Stdout, in.cmd.Stderr = in.logs, in.logs
	if err := in.cmd.Start(); err != nil {
		t.Fatalf("start ingester: %v", err)
	}
	go func() { in.exitErr = in.cmd.Wait(); close(in.done) }()
	t.Cleanup(func() {
		in.stop(syscall.SIGKILL)
		if t.Failed() {
			t.Logf("ingester logs:\n%s", in.logs.String())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + in.addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return in
			}
		}
		select {
		case <-in.done:
			t.Fatalf("ingester exited early: %v\n%s", in.exitErr, in.logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("ingester not ready within 30s\n%s", in.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop sends sig and waits for exit (up to 15 s); it returns how long the exit took.
func (in *ingester) stop(sig syscall.Signal) time.Duration {
	select {
	case <-in.done:
		return 0
	default:
	}
	start := time.Now()
	_ = in.cmd.Process.Signal(sig)
	select {
	case <-in.done:
	case <-time.After(15 * time.Second):
		_ = in.cmd.Process.Kill()
		<-in.done
		in.t.Errorf("ingester did not exit within 15s of %v", sig)
	}
	return time.Since(start)
}

// metrics scrapes /metrics.
func (in *ingester) metrics() map[string]*dto.MetricFamily {
	in.t.Helper()
	resp, err := http.Get("http://" + in.addr + "/metrics")
	if err != nil {
		in.t.Fatalf("scrape metrics: %v", err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		in.t.Fatalf("parse metrics: %v", err)
	}
	return fams
}

// metric returns the value of a counter/gauge family with the given label (name=value, or "" for none).
func metric(fams map[string]*dto.MetricFamily, name, label, value string) float64 {
	f := fams[name]
	if f == nil {
		return 0
	}
	total := 0.0
	for _, m := range f.Metric {
		if label != "" {
			match := false
			for _, l := range m.Label {
				if l.GetName() == label && l.GetValue() == value {
					match = true
				}
			}
			if !match {
				continue
			}
		}
		switch {
		case m.Counter != nil:
			total += m.Counter.GetValue()
		case m.Gauge != nil:
			total += m.Gauge.GetValue()
		}
	}
	return total
}

// publisher publishes QoS-1 messages and retries each until the broker acknowledged it, so a broker restart
// mid-stream loses nothing on the publishing side (a retried message may arrive twice: counted as duplicate).
type publisher struct {
	t *testing.T
	c mqtt.Client
}

func newPublisher(t *testing.T, broker string) *publisher {
	t.Helper()
	id := testsvc.RandomName("fieldline-test-pub-")
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker).SetClientID(id).SetCleanSession(true).
		SetAutoReconnect(true).SetMaxReconnectInterval(time.Second).SetConnectRetry(true).SetConnectRetryInterval(200 * time.Millisecond).
		SetMaxResumePubInFlight(1000))
	tok := c.Connect()
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publisher connect: %v", tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return &publisher{t: t, c: c}
}

type pubMsg struct {
	topic   string
	payload []byte
}

// publishAll sends the messages with up to window in flight; each message is retried until acknowledged.
func (p *publisher) publishAll(msgs []pubMsg, window int) {
	p.t.Helper()
	type pending struct {
		i   int
		tok mqtt.Token
	}
	queue := make(chan pending, window)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for pd := range queue {
			for {
				if pd.tok.WaitTimeout(30*time.Second) && pd.tok.Error() == nil {
					break
				}
				time.Sleep(100 * time.Millisecond)
				m := msgs[pd.i]
				pd.tok = p.c.Publish(m.topic, 1, false, m.payload)
			}
		}
	}()
	for i, m := range msgs {
		queue <- pending{i: i, tok: p.c.Publish(m.topic, 1, false, m.payload)}
	}
	close(queue)
	wg.Wait()
}

// pgCount returns count(*) and count(DISTINCT value) of readings matching the where clause.
func pgCount(t *testing.T, url, where string, args ...any) (rows, distinct int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer c.Close(ctx)
	q := "SELECT count(*), count(DISTINCT value) FROM readings"
	if where != "" {
		q += " WHERE " + where
	}
	if err := c.QueryRow(ctx, q, args...).Scan(&rows, &distinct); err != nil {
		t.Fatalf("count readings: %v", err)
	}
	return rows, distinct
}

// influxCount returns the number of points and distinct values of one measurement in the bucket.
func influxCount(t *testing.T, ix testsvc.Influx, measurement string) (points, distinct int64) {
	t.Helper()
	c := influxdb2.NewClient(ix.URL, ix.Token)
	defer c.Close()
	q := c.QueryAPI(ix.Org)
	run := func(flux string) int64 {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		res, err := q.Query(ctx, flux)
		if err != nil {
			t.Fatalf("flux %s: %v", flux, err)
		}
		var n int64
		for res.Next() {
			if v, ok := res.Record().Value().(int64); ok {
				n += v
			}
		}
		if res.Err() != nil {
			t.Fatalf("flux: %v", res.Err())
		}
		return n
	}
	base := fmt.Sprintf(`from(bucket: %q) |> range(start: 0) |> filter(fn: (r) => r._measurement == %q and r._field == "value") |> group()`, ix.Bucket, measurement)
	return run(base + ` |> count()`), run(base + ` |> distinct(column: "_value") |> count()`)
}

// eventually polls cond every 200 ms until it returns "" or the timeout passes (then fails with its message).
func eventually(t *testing.T, timeout time.Duration, cond func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		msg := cond()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", timeout, msg)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func lines(s string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out
}
