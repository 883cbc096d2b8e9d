// Package e2e runs the real fieldline-ingester binary against the real services (PostgreSQL, Mosquitto,
// InfluxDB from scripts/services.sh): the field reports' messages, 100 000 messages with poison, and the fault
// tests (TestFault*, run alone by `go tool mage testFaults` because they restart services).
package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	influxdb2 "github.com/influxdata/influxdb-client-go/v2"
	"github.com/jackc/pgx/v5"

	"github.com/fieldline-iot/fieldline/internal/ingesterproc"
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

// The subprocess plumbing lives in internal/ingesterproc (shared with the simulator's e2e tests).
type (
	ingester   = ingesterproc.Process
	syncBuffer = ingesterproc.SyncBuffer
)

var (
	metric      = ingesterproc.Metric
	freeAddr    = ingesterproc.FreeAddr
	dropSession = ingesterproc.DropSession
)

// start runs the ingester with the YAML config (plus extraEnv) and waits until /readyz answers 200.
func (e *env) start(yaml string, extraEnv ...string) *ingester {
	e.t.Helper()
	return ingesterproc.Start(e.t, ingesterBin, yaml, append(os.Environ(), extraEnv...))
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
