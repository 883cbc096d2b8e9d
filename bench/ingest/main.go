// Command ingest (bench/ingest) measures fieldline-ingester's drain throughput: it queues N QoS-1 messages for the
// ingester's persistent session at the broker, starts the ingester, and prints how fast it drains them,
// its CPU per message, its peak RSS and PostgreSQL's CPU per stored reading — PostgreSQL only, then PostgreSQL +
// InfluxDB. Mode "limit" drains the same queue to mosquitto_sub (a C subscriber that does nothing), what one
// subscriber connection gets out of this broker, and every later mode is printed as a share of it; mode "json50"
// queues gateway-style JSON messages of -json-readings readings each (PostgreSQL only) and prints readings/s; mode
// "telegraf" drains the same value messages with Telegraf (inputs.mqtt_consumer → outputs.postgresql, batch 5 000,
// max_undelivered_messages 10 000) when a telegraf binary is on the PATH; modes "share2" and "share4" drain the queue
// through 2 or 4 ingesters in one MQTT share group (one connection each; CPU and RSS summed over the members) (it is skipped otherwise). Telegraf
// installs from the module proxy with just those two plugins:
//
//	go install -tags custom,inputs.mqtt_consumer,outputs.postgresql,parsers.value github.com/influxdata/telegraf/cmd/telegraf@latest
//
// It reads the services from FIELDLINE_TEST_* (see scripts/services.sh env); `go tool mage bench:ingest` runs it.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/jackc/pgx/v5"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/fieldline-iot/fieldline/bench/internal/procstat"
)

func main() {
	bin := flag.String("ingester", "bin/fieldline-ingester", "path of the fieldline-ingester binary")
	n := flag.Int("n", envInt("FIELDLINE_BENCH_MESSAGES", 200_000), "messages to queue and drain")
	series := flag.Int("series", 20, "distinct devices the messages spread over")
	modes := flag.String("modes", "limit,postgres,telegraf,share2,share4,postgres+influxdb,json50",
		"comma-separated runs: limit, postgres, telegraf, share2, share4 (PostgreSQL through 2 or 4 ingesters in one MQTT share group), postgres+influxdb, json50")
	flag.IntVar(&jsonReadings, "json-readings", 50, "readings per message in mode json50 (it queues n/json-readings messages)")
	maxRows := flag.Int("batch", 0, "batch.max_rows for the ingester (0: its default)")
	flag.IntVar(&brokerPID, "broker-pid", 0, "PID of the local broker, to print its CPU use during the drain (0: skip)")
	flag.Parse()
	limit := 0.0 // msg/s of mode limit in this run
	for _, mode := range strings.Split(*modes, ",") {
		msgs := *n
		if mode == "json50" {
			msgs = max(*n/jsonReadings, 1)
		}
		if mode == "limit" {
			d, err := drainLimit(msgs, *series)
			if err != nil {
				log.Fatalf("limit: %v", err)
			}
			limit = float64(msgs) / d.Seconds()
			fmt.Printf("ingest %-18s %7d msgs  drain %6.2f s  %8.0f msg/s  (mosquitto_sub, one QoS-1 connection: the broker's limit)\n", mode, msgs, d.Seconds(), limit)
			continue
		}
		var r result
		var err error
		if mode == "telegraf" {
			tg, lookErr := exec.LookPath("telegraf")
			if lookErr != nil {
				fmt.Printf("ingest %-18s skipped: no telegraf on the PATH\n", mode)
				continue
			}
			r, err = runTelegraf(tg, msgs, *series)
		} else {
			r, err = run(*bin, mode, msgs, *series, *maxRows)
		}
		if err != nil {
			log.Fatalf("%s: %v", mode, err)
		}
		rate := float64(msgs) / r.drain.Seconds()
		share := ""
		if limit > 0 && mode != "json50" {
			share = fmt.Sprintf(" = %.0f%% of the limit", rate/limit*100)
		}
		batches := fmt.Sprintf("batches %d, avg %.0f rows; ", r.batches, float64(msgs)/float64(max(r.batches, 1)))
		if mode == "telegraf" {
			batches = "no rollups or indexes: Telegraf's own table; "
		}
		fmt.Printf("ingest %-18s %7d msgs  drain %6.2f s  %8.0f msg/s%s  CPU %.2f µs/msg  peak RSS %5.1f MB  PostgreSQL CPU %.2f µs/reading  (%sbroker CPU %.0f%% of a core)\n",
			mode, msgs, r.drain.Seconds(), rate, share, r.cpu/float64(msgs)*1e6, r.rssMB, r.pgCPU/float64(r.readings)*1e6, batches,
			r.brokerCPU/r.drain.Seconds()*100)
		if mode == "json50" {
			fmt.Printf("ingest %-18s %7d readings/s (%d readings per message)\n", mode, int(float64(r.readings)/r.drain.Seconds()), jsonReadings)
		}
	}
}

var (
	brokerPID    int
	jsonReadings int
)

// drainLimit queues n messages for a persistent session and times mosquitto_sub draining them (it exits after n):
// what one QoS-1 subscriber connection gets out of the broker, with nothing stored.
func drainLimit(n, series int) (time.Duration, error) {
	stamp := strconv.FormatInt(time.Now().UnixNano(), 36)
	broker := must("FIELDLINE_TEST_MQTT_URL")
	u, err := url.Parse(broker)
	if err != nil {
		return 0, err
	}
	clientID, prefix := "fieldline-bench-limit-"+stamp, "benchlimit"+stamp
	if err := queue(broker, clientID, prefix, n, series, func(int) string { return "21.5" }); err != nil {
		return 0, err
	}
	defer dropSession(broker, clientID)
	cmd := exec.Command("mosquitto_sub", "-h", u.Hostname(), "-p", u.Port(), "-i", clientID, "-c", "-q", "1",
		"-t", prefix+"/+/+", "-C", strconv.Itoa(n))
	cmd.Stdout, cmd.Stderr = nil, os.Stderr
	t0 := time.Now()
	if err := cmd.Run(); err != nil {
		return 0, fmt.Errorf("mosquitto_sub: %w", err)
	}
	return time.Since(t0), nil
}

// queue creates a persistent session subscribed to prefix/+/+ and publishes n QoS-1 messages for it.
func queue(broker, clientID, prefix string, n, series int, payload func(i int) string) error {
	return queueShared(broker, []string{clientID}, "", prefix, n, series, payload)
}

// queueShared creates a persistent session per client id, subscribed to prefix/+/+ (as $share/<group>/… when
// group is set: the broker then spreads the messages over the sessions' queues), and publishes n QoS-1 messages.
func queueShared(broker string, clientIDs []string, group, prefix string, n, series int, payload func(i int) string) error {
	filter := prefix + "/+/+"
	if group != "" {
		filter = "$share/" + group + "/" + filter
	}
	for _, id := range clientIDs {
		sess := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker).SetClientID(id).SetCleanSession(false))
		if t := sess.Connect(); !t.WaitTimeout(10*time.Second) || t.Error() != nil {
			return fmt.Errorf("session connect: %w", t.Error())
		}
		if t := sess.Subscribe(filter, 1, nil); !t.WaitTimeout(10*time.Second) || t.Error() != nil {
			return fmt.Errorf("subscribe: %w", t.Error())
		}
		sess.Disconnect(100)
	}
	clientID := clientIDs[0]
	pub := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker).SetClientID(clientID + "-pub").SetCleanSession(true))
	if t := pub.Connect(); !t.WaitTimeout(10*time.Second) || t.Error() != nil {
		return fmt.Errorf("publisher connect: %w", t.Error())
	}
	defer pub.Disconnect(100)
	start := time.Now()
	window := make(chan mqtt.Token, 1000)
	done := make(chan error, 1)
	go func() {
		for t := range window {
			if !t.WaitTimeout(30*time.Second) || t.Error() != nil {
				done <- fmt.Errorf("publish: %w", t.Error())
				return
			}
		}
		done <- nil
	}()
	for i := 0; i < n; i++ {
		window <- pub.Publish(fmt.Sprintf("%s/node%d/temperature", prefix, i%series), 1, false, payload(i))
	}
	close(window)
	if err := <-done; err != nil {
		return err
	}
	log.Printf("queued %d messages in %s", n, time.Since(start).Round(time.Millisecond))
	return nil
}

func dropSession(broker, clientID string) {
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker).SetClientID(clientID).SetCleanSession(true))
	if t := c.Connect(); t.WaitTimeout(5 * time.Second) {
		c.Disconnect(100)
	}
}

// gatewayJSON is a gateway-style message: k readings of one node, {"r00": 21.37, …}.
func gatewayJSON(i, k int) string {
	var b strings.Builder
	b.WriteByte('{')
	for j := 0; j < k; j++ {
		if j > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"r%02d":%s`, j, strconv.FormatFloat(20+float64((i+j)%1000)/100, 'f', 2, 64))
	}
	b.WriteByte('}')
	return b.String()
}

// postgresCPU sums the CPU seconds of every PostgreSQL process (the server and its backends).
func postgresCPU() float64 {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	total := 0.0
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		if err != nil || strings.TrimSpace(string(comm)) != "postgres" {
			continue
		}
		if cpu, _, err := procStats(pid); err == nil {
			total += cpu
		}
	}
	return total
}

type result struct {
	pgCPU     float64 // PostgreSQL's CPU seconds during the drain
	readings  int     // readings stored
	brokerCPU float64
	drain     time.Duration
	cpu       float64
	rssMB     float64
	batches   int
}

func envInt(k string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(k)); err == nil {
		return v
	}
	return def
}

func must(k string) string {
	v := os.Getenv(k)
	if v == "" {
		log.Fatalf("%s is not set: run `go tool mage services:up` and eval \"$(scripts/services.sh env)\"", k)
	}
	return v
}

func run(bin, mode string, n, series, maxRows int) (result, error) {
	ctx := context.Background()
	stamp := strconv.FormatInt(time.Now().UnixNano(), 36)
	broker := must("FIELDLINE_TEST_MQTT_URL")
	clientID := "fieldline-bench-" + stamp
	prefix := "bench" + stamp

	// A fresh database (and bucket) per run.
	db := "fieldline_bench_" + stamp
	u, drop, err := freshDatabase(ctx, db)
	if err != nil {
		return result{}, err
	}
	defer drop()

	influx := ""
	if strings.Contains(mode, "influx") {
		ix := must("FIELDLINE_TEST_INFLUX_URL")
		if err := influxQL(ix, "CREATE DATABASE "+db); err != nil {
			return result{}, err
		}
		defer influxQL(ix, "DROP DATABASE "+db) //nolint:errcheck
		influx = fmt.Sprintf("influx:\n  url: %s\n  bucket: %s\n  org: fieldline\n", ix, db)
	}

	// 1. Persistent sessions subscribed to prefix/+/+ (one, or one per share-group member), with n QoS-1
	// messages queued for them.
	members, group := 1, ""
	if k, ok := strings.CutPrefix(mode, "share"); ok {
		members, group = int(k[0]-'0'), "bench"
	}
	var clientIDs []string
	for i := 0; i < members; i++ {
		clientIDs = append(clientIDs, fmt.Sprintf("%s-%d", clientID, i))
	}
	filter := prefix + "/+/+"
	payload := func(i int) string { return strconv.FormatFloat(20+float64(i%1000)/100, 'f', 2, 64) }
	if mode == "json50" {
		payload = func(i int) string { return gatewayJSON(i, jsonReadings) }
	}
	if err := queueShared(broker, clientIDs, group, prefix, n, series, payload); err != nil {
		return result{}, err
	}
	for _, id := range clientIDs {
		defer dropSession(broker, id)
	}

	// 2. Start the ingesters and time the drain.
	dir, err := os.MkdirTemp("", "ingestbench-")
	if err != nil {
		return result{}, err
	}
	defer os.RemoveAll(dir)
	metric, format := "{metric}", "value"
	if mode == "json50" {
		metric, format = "+", "json" // every numeric leaf a reading, its metric the field name
	}
	batch := ""
	if maxRows > 0 {
		batch = fmt.Sprintf("batch:\n  max_rows: %d\n", maxRows)
	}
	share := ""
	if group != "" {
		share = "\n      share_group: " + group
	}
	var cmds []*exec.Cmd
	var addrs []string
	defer func() {
		for _, cmd := range cmds {
			_ = cmd.Process.Kill()
		}
	}()
	b0, pg0 := brokerCPU(), postgresCPU()
	t0 := time.Now()
	for i, id := range clientIDs {
		cfg := fmt.Sprintf(`mqtt:
  url: %s
  client_id: %s
  subscriptions:
    - filter: %s
      qos: 1%s
      template: "%s/{device}/%s"
      format: %s
postgres:
  url: %s
%s%sspool:
  dir: %s
log:
  level: warn
`, broker, id, filter, share, prefix, metric, format, u.String(), influx, batch, filepath.Join(dir, fmt.Sprintf("spool%d", i)))
		cfgPath := filepath.Join(dir, fmt.Sprintf("ingester%d.yaml", i))
		if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
			return result{}, err
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return result{}, err
		}
		addr := ln.Addr().String()
		ln.Close()
		cmd := exec.Command(bin, "-config", cfgPath, "-http-addr", addr)
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			return result{}, err
		}
		cmds, addrs = append(cmds, cmd), append(addrs, addr)
	}
	var acked, batches float64
	for acked < float64(n) {
		time.Sleep(100 * time.Millisecond)
		acked, batches = 0, 0
		for _, addr := range addrs {
			a, b := scrape(addr)
			acked, batches = acked+a, batches+b
		}
		if time.Since(t0) > 10*time.Minute {
			return result{}, fmt.Errorf("drained %v of %d in 10 minutes", acked, n)
		}
	}
	drain := time.Since(t0)
	b1, pg1 := brokerCPU(), postgresCPU()
	var cpu, rss float64
	for i, cmd := range cmds {
		log.Printf("%s member %d: %s", mode, i, meanWrite(addrs[i]))
		c, r, err := procStats(cmd.Process.Pid)
		if err != nil {
			return result{}, err
		}
		cpu, rss = cpu+c, rss+r // RSS: every member's peak, summed
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}

	var stored int
	c, err := pgx.Connect(ctx, u.String())
	if err != nil {
		return result{}, err
	}
	defer c.Close(ctx)
	if err := c.QueryRow(ctx, "SELECT count(*) FROM readings").Scan(&stored); err != nil {
		return result{}, err
	}
	want := n
	if mode == "json50" {
		want = n * jsonReadings
	}
	if stored < want {
		return result{}, fmt.Errorf("PostgreSQL holds %d of %d readings", stored, want)
	}
	return result{drain: drain, cpu: cpu, rssMB: rss, batches: int(batches), brokerCPU: b1 - b0, pgCPU: pg1 - pg0, readings: stored}, nil
}

func brokerCPU() float64 {
	if brokerPID == 0 {
		// scripts/services.sh keeps Mosquitto's pid file in its state directory
		b, err := os.ReadFile(filepath.Join(os.Getenv("FIELDLINE_STATE_DIR"), "mosquitto", "mosquitto.pid"))
		if err != nil {
			return 0
		}
		brokerPID, _ = strconv.Atoi(strings.TrimSpace(string(b)))
	}
	cpu, _, err := procStats(brokerPID)
	if err != nil {
		return 0
	}
	return cpu
}

// meanWrite returns the mean batch write time per sink from the batch_write_seconds histogram.
func meanWrite(addr string) string {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil || fams["fieldline_ingester_batch_write_seconds"] == nil {
		return ""
	}
	var parts []string
	for _, m := range fams["fieldline_ingester_batch_write_seconds"].Metric {
		h := m.GetHistogram()
		if h.GetSampleCount() == 0 {
			continue
		}
		parts = append(parts, fmt.Sprintf("%s %.1f ms", m.Label[0].GetValue(), h.GetSampleSum()/float64(h.GetSampleCount())*1000))
	}
	return "mean batch write: " + strings.Join(parts, ", ")
}

func scrape(addr string) (acked, batches float64) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0, 0
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return 0, 0
	}
	get := func(name string) float64 {
		if f := fams[name]; f != nil && len(f.Metric) > 0 && f.Metric[0].Counter != nil {
			return f.Metric[0].Counter.GetValue()
		}
		return 0
	}
	return get("fieldline_ingester_messages_acked_total"), get("fieldline_ingester_batches_total")
}

// procStats returns CPU seconds (user+system) and peak RSS (VmHWM, MB) of a running process.
func procStats(pid int) (cpu, rssMB float64, err error) {
	d, err := procstat.CPU(pid)
	if err != nil {
		return 0, 0, err
	}
	rss, err := procstat.PeakRSS(pid)
	if err != nil {
		return 0, 0, err
	}
	return d.Seconds(), float64(rss) / (1 << 20), nil
}

func influxQL(base, q string) error {
	resp, err := http.PostForm(strings.TrimRight(base, "/")+"/query", url.Values{"q": {q}})
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("influx %q: %s", q, resp.Status)
	}
	return nil
}

// runTelegraf drains n queued value messages with Telegraf into PostgreSQL, as run does with the ingester: a
// persistent session, QoS 1, Telegraf's own table (mqtt_consumer: time, topic, value). The drain ends when the
// table holds n rows (polled every 100 ms).
func runTelegraf(bin string, n, series int) (result, error) {
	ctx := context.Background()
	stamp := strconv.FormatInt(time.Now().UnixNano(), 36)
	broker := must("FIELDLINE_TEST_MQTT_URL")
	clientID, prefix := "fieldline-bench-telegraf-"+stamp, "benchtg"+stamp
	u, drop, err := freshDatabase(ctx, "fieldline_bench_"+stamp)
	if err != nil {
		return result{}, err
	}
	defer drop()
	payload := func(i int) string { return strconv.FormatFloat(20+float64(i%1000)/100, 'f', 2, 64) }
	if err := queue(broker, clientID, prefix, n, series, payload); err != nil {
		return result{}, err
	}
	defer dropSession(broker, clientID)
	dir, err := os.MkdirTemp("", "telegrafbench-")
	if err != nil {
		return result{}, err
	}
	defer os.RemoveAll(dir)
	conf := fmt.Sprintf(`[agent]
  interval = "1s"
  flush_interval = "100ms"
  metric_batch_size = 5000
  metric_buffer_limit = 100000
  omit_hostname = true
  quiet = true

[[inputs.mqtt_consumer]]
  servers = [%q]
  topics = [%q]
  qos = 1
  client_id = %q
  persistent_session = true
  max_undelivered_messages = 10000
  data_format = "value"
  data_type = "float"

[[outputs.postgresql]]
  connection = %q
`, broker, prefix+"/+/+", clientID, u.String())
	path := filepath.Join(dir, "telegraf.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		return result{}, err
	}
	cmd := exec.Command(bin, "--config", path)
	cmd.Stderr = os.Stderr
	b0, pg0 := brokerCPU(), postgresCPU()
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return result{}, err
	}
	defer cmd.Process.Kill() //nolint:errcheck
	c, err := pgx.Connect(ctx, u.String())
	if err != nil {
		return result{}, err
	}
	defer c.Close(ctx)
	stored := 0
	for stored < n {
		time.Sleep(100 * time.Millisecond)
		if err := c.QueryRow(ctx, "SELECT count(*) FROM mqtt_consumer").Scan(&stored); err != nil {
			stored = 0 // the table appears with Telegraf's first write
		}
		if time.Since(t0) > 10*time.Minute {
			return result{}, fmt.Errorf("telegraf stored %d of %d in 10 minutes", stored, n)
		}
	}
	drain := time.Since(t0)
	b1, pg1 := brokerCPU(), postgresCPU()
	cpu, rss, err := procStats(cmd.Process.Pid)
	if err != nil {
		return result{}, err
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	_ = cmd.Wait()
	return result{drain: drain, cpu: cpu, rssMB: rss, brokerCPU: b1 - b0, pgCPU: pg1 - pg0, readings: stored}, nil
}

// freshDatabase creates the database name on the test server and returns its URL and a function that drops it.
func freshDatabase(ctx context.Context, name string) (*url.URL, func(), error) {
	pgBase := must("FIELDLINE_TEST_POSTGRES_URL")
	admin, err := pgx.Connect(ctx, pgBase)
	if err != nil {
		return nil, nil, err
	}
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		admin.Close(ctx)
		return nil, nil, err
	}
	u, err := url.Parse(pgBase)
	if err != nil {
		admin.Close(ctx)
		return nil, nil, err
	}
	u.Path = "/" + name
	return u, func() {
		_, _ = admin.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
		admin.Close(ctx)
	}, nil
}
