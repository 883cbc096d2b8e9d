// Command livebench measures live latency: from the moment a message is published to MQTT to the moment the
// plugin's stream hands the frame carrying it to the SDK's stream sender (where it leaves the plugin for
// Grafana), for
//
//	(a) mqtt: MQTT → plugin (source "mqtt" live query, the instance's shared MQTT client)
//	(b) pg:   MQTT → fieldline-ingester → PostgreSQL (COPY + NOTIFY) → plugin (live builder query)
//
// at each -rates message rate for -duration. The publisher runs as a separate process (this binary with
// -publish) and the ingester as a subprocess, so the CPU time of this process is the plugin's (plus the
// bench's bookkeeping: it only timestamps and keeps the frame bytes; decoding happens after the run).
// Every payload is the publish time in Unix microseconds (value format), so each row carries its own
// timestamp and is unique: latency = frame send time − value; lost = published − distinct values received.
//
// -viewers N runs the query N times, as N panels do; -grpc runs every stream over the plugin's gRPC protocol
// (the SDK's stream server on loopback), called from a child process (this binary with -grpc-client) as Grafana
// calls RunStream, so each viewer's frames cross a gRPC stream and the receiving end's CPU is not the plugin's;
// latency is then measured to the frame's arrival in that process.
//
//	eval "$(scripts/services.sh env)"; go run ./bench/live [-rates 1,1000] [-duration 10s] [-paths mqtt,pg]
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/backend/log"
	"github.com/grafana/grafana-plugin-sdk-go/data"
	"github.com/grafana/grafana-plugin-sdk-go/genproto/pluginv2"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/fieldline-iot/fieldline/bench/internal/procstat"
	"github.com/fieldline-iot/fieldline/internal/store"
	"github.com/fieldline-iot/fieldline/pkg/plugin"
)

func main() {
	publishMode := flag.Bool("publish", false, "internal: run as the publisher process")
	topic := flag.String("topic", "", "internal: publisher topic")
	rate := flag.Float64("rate", 1, "internal: publisher messages per second")
	rates := flag.String("rates", "1,1000", "message rates to measure (messages/s)")
	duration := flag.Duration("duration", 10*time.Second, "measurement time per rate and path")
	minMessages := flag.Int("min-messages", 60, "measure low rates for longer: at least this many messages per run (a p99 of 10 samples is their maximum)")
	paths := flag.String("paths", "mqtt,pg", "paths to measure: mqtt (direct) and/or pg (ingester → PostgreSQL → NOTIFY)")
	frameInterval := flag.String("frame-interval", "100ms", "plugin liveFrameInterval")
	qos := flag.Int("qos", 1, "plugin mqtt.qos for path mqtt")
	ingesterBin := flag.String("ingester", "", "fieldline-ingester binary (default: go build ./ingester into a temp dir)")
	viewers := flag.Int("viewers", 1, "panels watching the same query: each runs its own QueryData and streams (CPU per message covers them all)")
	overGRPC := flag.Bool("grpc", false, "run the streams over the plugin's gRPC protocol (the SDK's stream server on loopback), called from a separate process as Grafana calls RunStream")
	clientAddr := flag.String("grpc-client", "", "internal: run as the gRPC client process of -grpc, against this address")
	flag.Parse()
	backend.Logger = log.NewWithLevel(log.Warn)
	// FIELDLINE_LIVEBENCH_CPUPROFILE=file profiles the measuring process (not its publisher or ingester children).
	if path := os.Getenv("FIELDLINE_LIVEBENCH_CPUPROFILE"); path != "" && !*publishMode {
		if f, err := os.Create(path); err == nil && pprof.StartCPUProfile(f) == nil {
			defer pprof.StopCPUProfile()
		}
	}
	broker := os.Getenv("FIELDLINE_TEST_MQTT_URL")
	if broker == "" {
		broker = "tcp://127.0.0.1:1883"
	}
	if *clientAddr != "" {
		if err := grpcClient(*clientAddr, os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "grpc client:", err)
			os.Exit(1)
		}
		return
	}
	if *publishMode {
		if err := publish(broker, *topic, *rate, *duration); err != nil {
			fmt.Fprintln(os.Stderr, "publisher:", err)
			os.Exit(1)
		}
		return
	}
	var rs []float64
	for _, s := range strings.Split(*rates, ",") {
		r, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil || r <= 0 {
			fmt.Fprintln(os.Stderr, "bad -rates:", s)
			os.Exit(2)
		}
		rs = append(rs, r)
	}
	b := &bench{viewers: max(*viewers, 1), grpc: *overGRPC, qos: *qos, broker: broker, duration: *duration, minMessages: *minMessages, frameInterval: *frameInterval, ingesterBin: *ingesterBin}
	fmt.Printf("%-5s %8s %8s %9s %9s %9s %10s %9s %12s %9s\n", "path", "msg/s", "sent", "received", "p50 ms", "p99 ms", "max ms", "lost", "frames/s", "CPU µs/msg")
	for _, p := range strings.Split(*paths, ",") {
		for _, r := range rs {
			res, err := b.run(strings.TrimSpace(p), r)
			if err != nil {
				fmt.Fprintln(os.Stderr, "livebench:", err)
				b.cleanup()
				pprof.StopCPUProfile()
				os.Exit(1)
			}
			fmt.Printf("%-5s %8.0f %8d %9d %9.2f %9.2f %10.2f %9d %12.1f %9.2f\n", p, r, res.published, res.received,
				res.p50, res.p99, res.max, res.lost, res.framesPerSec, res.cpuPerMsg)
		}
	}
	b.cleanup()
}

type bench struct {
	broker, frameInterval, ingesterBin string
	duration                           time.Duration
	minMessages, qos, viewers          int
	grpc                               bool
	cleanups                           []func()
}

func (b *bench) cleanup() {
	for i := len(b.cleanups) - 1; i >= 0; i-- {
		b.cleanups[i]()
	}
	b.cleanups = nil
}

type result struct {
	published, received, lost int
	p50, p99, max             float64
	framesPerSec, cpuPerMsg   float64
}

// recorder is the stream's packet sender: it keeps the bytes and the time each frame left the plugin.
type recorder struct {
	mu      sync.Mutex
	packets [][]byte
	at      []time.Time
}

func (r *recorder) Send(p *backend.StreamPacket) error {
	now := time.Now()
	r.mu.Lock()
	r.packets = append(r.packets, p.Data)
	r.at = append(r.at, now)
	r.mu.Unlock()
	return nil
}

func (r *recorder) reset() {
	r.mu.Lock()
	r.packets, r.at = nil, nil
	r.mu.Unlock()
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.packets)
}

func randomID() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (b *bench) run(path string, rate float64) (result, error) {
	defer b.cleanup()
	id := "lb" + randomID()
	jsonData := map[string]any{"liveFrameInterval": b.frameInterval, "liveSeamDelay": "2s"}
	secure := map[string]string{}
	var queryModel map[string]any
	pubTopic := id + "/dev/latency"
	switch path {
	case "mqtt":
		jsonData["mqtt"] = map[string]any{"url": b.broker, "qos": b.qos}
		queryModel = map[string]any{"source": "mqtt", "topic": id + "/+/latency", "template": id + "/{device}/{metric}", "payloadFormat": "value", "live": true}
	case "pg":
		pgURL, err := b.database()
		if err != nil {
			return result{}, err
		}
		if err := b.startIngester(pgURL, id); err != nil {
			return result{}, err
		}
		u, _ := url.Parse(pgURL)
		pw, _ := u.User.Password()
		jsonData["postgres"] = map[string]any{"host": u.Host, "database": strings.TrimPrefix(u.Path, "/"), "user": u.User.Username(), "sslMode": "disable"}
		secure["postgresPassword"] = pw
		queryModel = map[string]any{"source": "sql", "metric": "latency", "device": "dev", "live": true}
	default:
		return result{}, fmt.Errorf("unknown path %q", path)
	}
	raw, _ := json.Marshal(jsonData)
	settings := backend.DataSourceInstanceSettings{UID: "livebench", Name: "livebench", JSONData: raw, DecryptedSecureJSONData: secure}
	inst, err := plugin.NewDatasource(context.Background(), settings)
	if err != nil {
		return result{}, err
	}
	d := inst.(*plugin.Datasource)
	b.cleanups = append(b.cleanups, d.Dispose)
	var client *clientProcess
	if b.grpc {
		addr, stop, err := serveStreams(d)
		if err != nil {
			return result{}, err
		}
		b.cleanups = append(b.cleanups, stop)
		if client, err = startClient(addr); err != nil {
			return result{}, err
		}
		b.cleanups = append(b.cleanups, client.stop)
	}
	queryModel["refId"] = "A"
	qj, _ := json.Marshal(queryModel)
	// Every viewer's panel runs the query and subscribes to every channel of its frames, as Grafana does (a live
	// SQL query also has the channel of its new series); each viewer's frames go to its own recorder.
	ctx, cancel := context.WithCancel(context.Background())
	recs := make([]*recorder, b.viewers)
	streams := 0
	streamDone := make(chan error, 64*b.viewers)
	b.cleanups = append(b.cleanups, func() {
		cancel()
		for range streams {
			if err := <-streamDone; err != nil {
				fmt.Fprintln(os.Stderr, "livebench: stream:", err)
			}
		}
	})
	for v := range recs {
		now := time.Now()
		resp, err := d.QueryData(context.Background(), &backend.QueryDataRequest{Queries: []backend.DataQuery{{RefID: "A", JSON: qj,
			TimeRange: backend.TimeRange{From: now.Add(-time.Hour), To: now}, Interval: time.Second, MaxDataPoints: 1000}}})
		if err != nil || resp.Responses["A"].Error != nil {
			return result{}, fmt.Errorf("QueryData: %w %v", err, resp.Responses["A"].Error) //nolint:errorlint // one of the two is nil
		}
		recs[v] = &recorder{}
		frames := resp.Responses["A"].Frames
		if v == 0 {
			fmt.Fprintf(os.Stderr, "%s: the query has %d live channel(s), %d viewer(s)\n", path, len(frames), b.viewers)
		}
		for _, f := range frames {
			streamPath := strings.TrimPrefix(f.Meta.Channel, "ds/livebench/")
			rec := recs[v]
			if client != nil {
				client.run(v, streamPath)
				continue
			}
			streams++
			go func() {
				streamDone <- d.RunStream(ctx, &backend.RunStreamRequest{Path: streamPath}, backend.NewStreamSender(rec))
			}()
		}
	}

	// Warm up: publish until every viewer got a frame (subscriptions, LISTEN and the ingester are in place).
	warm := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(b.broker).SetClientID(id + "-warm"))
	if tok := warm.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		return result{}, fmt.Errorf("warm-up publisher: %w", tok.Error())
	}
	deadline := time.Now().Add(30 * time.Second)
	received := func(r *recorder) bool { return r.count() > 0 }
	if client != nil {
		received = func(r *recorder) bool { return client.seen(slices.Index(recs, r)) }
	}
	for slices.ContainsFunc(recs, func(r *recorder) bool { return !received(r) }) {
		if time.Now().After(deadline) {
			return result{}, fmt.Errorf("%s: no frame within 30 s of warm-up publishing", path)
		}
		warm.Publish(pubTopic, 1, false, "1").WaitTimeout(time.Second)
		time.Sleep(200 * time.Millisecond)
	}
	warm.Disconnect(100)
	time.Sleep(500 * time.Millisecond)
	if st := d.LiveStats(); b.viewers > 1 {
		fmt.Fprintf(os.Stderr, "%s: %d streams share %d source(s)\n", path, st.Streams, st.Sources)
	}
	for _, r := range recs {
		r.reset()
	}
	if client != nil {
		if err := client.reset(); err != nil {
			return result{}, err
		}
	}

	// Measure: the publisher process, this process's CPU time around it.
	self, err := os.Executable()
	if err != nil {
		return result{}, err
	}
	duration := max(b.duration, time.Duration(float64(b.minMessages)/rate*float64(time.Second)))
	pub := exec.Command(self, "-publish", "-topic", pubTopic, "-rate", fmt.Sprint(rate), "-duration", duration.String())
	pub.Env = os.Environ()
	pub.Stderr = os.Stderr
	out, err := pub.StdoutPipe()
	if err != nil {
		return result{}, err
	}
	rows0 := d.LiveStats().Rows
	cpu0 := procstat.SelfCPU()
	if err := pub.Start(); err != nil {
		return result{}, err
	}
	published := 0
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if n, ok := strings.CutPrefix(sc.Text(), "published "); ok {
			published, _ = strconv.Atoi(n)
		}
	}
	if err := pub.Wait(); err != nil {
		return result{}, fmt.Errorf("publisher: %w", err)
	}
	// Drain: until every message arrived at every viewer or 5 s passed.
	drainUntil := time.Now().Add(5 * time.Second)
	for time.Now().Before(drainUntil) {
		if int(d.LiveStats().Rows-rows0) >= published*b.viewers {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	cpu := procstat.SelfCPU() - cpu0
	if client != nil {
		if err := client.dump(recs); err != nil {
			return result{}, err
		}
	}
	return analyse(recs, published, duration, cpu)
}

// serveStreams serves the instance's streams over the SDK's gRPC adapter on a loopback listener (the protocol
// Grafana speaks to the plugin process) and returns its address.
func serveStreams(d *plugin.Datasource) (string, func(), error) {
	opts, err := backend.GRPCServeOpts(backend.ServeOpts{StreamHandler: d})
	if err != nil {
		return "", nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := grpc.NewServer()
	pluginv2.RegisterStreamServer(srv, opts.StreamServer)
	go func() { _ = srv.Serve(l) }()
	return l.Addr().String(), srv.Stop, nil
}

// clientProcess is the -grpc client: this binary with -grpc-client, as Grafana's side of the streams, so that
// its CPU is not counted as the plugin's. Commands on its stdin: "run <viewer> <path>", "reset", "dump"; on its
// stdout: "seen <viewer>" when a viewer gets its first frame, "reset" when reset, and on dump one line per frame
// ("<viewer> <unix ns> <base64>") then "end".
type clientProcess struct {
	cmd   *exec.Cmd
	in    io.WriteCloser
	lines chan string
	mu    sync.Mutex
	seenV map[int]bool
}

func startClient(addr string) (*clientProcess, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	c := &clientProcess{cmd: exec.Command(self, "-grpc-client", addr), lines: make(chan string, 1024), seenV: map[int]bool{}}
	c.cmd.Stderr = os.Stderr
	if c.in, err = c.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	out, err := c.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := c.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 64<<20)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "seen "); ok {
				n, _ := strconv.Atoi(v)
				c.mu.Lock()
				c.seenV[n] = true
				c.mu.Unlock()
				continue
			}
			c.lines <- sc.Text()
		}
		close(c.lines)
	}()
	return c, nil
}

func (c *clientProcess) run(viewer int, path string) { fmt.Fprintf(c.in, "run %d %s\n", viewer, path) }

func (c *clientProcess) seen(viewer int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.seenV[viewer]
}

func (c *clientProcess) reset() error {
	fmt.Fprintln(c.in, "reset")
	if l := <-c.lines; l != "reset" {
		return fmt.Errorf("grpc client: %q, want reset", l)
	}
	return nil
}

// dump moves the client's frames into the viewers' recorders.
func (c *clientProcess) dump(recs []*recorder) error {
	fmt.Fprintln(c.in, "dump")
	for l := range c.lines {
		if l == "end" {
			return nil
		}
		f := strings.SplitN(l, " ", 3)
		if len(f) != 3 {
			return fmt.Errorf("grpc client: bad line %q", l)
		}
		v, _ := strconv.Atoi(f[0])
		ns, _ := strconv.ParseInt(f[1], 10, 64)
		data, err := base64.StdEncoding.DecodeString(f[2])
		if err != nil || v < 0 || v >= len(recs) {
			return fmt.Errorf("grpc client: bad line %q", l)
		}
		recs[v].packets = append(recs[v].packets, data)
		recs[v].at = append(recs[v].at, time.Unix(0, ns))
	}
	return errors.New("grpc client ended before its dump")
}

func (c *clientProcess) stop() {
	_ = c.in.Close()
	_ = c.cmd.Wait()
}

// grpcClient is the -grpc client process: it runs the streams it is told to over gRPC and records what arrives
// (the time each frame arrived, as Grafana would see it).
func grpcClient(addr string, in io.Reader, out io.Writer) error {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	client := pluginv2.NewStreamClient(conn)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	type frame struct {
		viewer int
		at     time.Time
		data   []byte
	}
	var frames []frame
	seen := map[int]bool{}
	w := bufio.NewWriter(out)
	say := func(format string, args ...any) {
		mu.Lock()
		fmt.Fprintf(w, format+"\n", args...)
		_ = w.Flush()
		mu.Unlock()
	}
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 3 && f[0] == "run":
			viewer, _ := strconv.Atoi(f[1])
			s, err := client.RunStream(ctx, &pluginv2.RunStreamRequest{Path: f[2], PluginContext: &pluginv2.PluginContext{OrgId: 1,
				PluginId: plugin.PluginID, DataSourceInstanceSettings: &pluginv2.DataSourceInstanceSettings{Uid: "livebench", Name: "livebench"}}})
			if err != nil {
				return err
			}
			go func() {
				for {
					p, err := s.Recv()
					if err != nil {
						return
					}
					now := time.Now()
					mu.Lock()
					frames = append(frames, frame{viewer, now, p.Data})
					first := !seen[viewer]
					seen[viewer] = true
					mu.Unlock()
					if first {
						say("seen %d", viewer)
					}
				}
			}()
		case len(f) == 1 && f[0] == "reset":
			mu.Lock()
			frames = nil
			mu.Unlock()
			say("reset")
		case len(f) == 1 && f[0] == "dump":
			mu.Lock()
			for _, fr := range frames {
				fmt.Fprintf(w, "%d %d %s\n", fr.viewer, fr.at.UnixNano(), base64.StdEncoding.EncodeToString(fr.data))
			}
			fmt.Fprintln(w, "end")
			_ = w.Flush()
			mu.Unlock()
		}
	}
	return sc.Err()
}

// analyse turns the viewers' frames into the result: latency over every frame of every viewer (each value once
// per viewer), lost = the most any one viewer missed, CPU per published message (all viewers together).
func analyse(recs []*recorder, published int, duration, cpu time.Duration) (result, error) {
	var lat []float64
	received := published
	frames := 0
	var first, last time.Time
	for _, rec := range recs {
		rec.mu.Lock()
		seen := map[int64]bool{}
		for i, p := range rec.packets {
			var f data.Frame
			if err := json.Unmarshal(p, &f); err != nil {
				rec.mu.Unlock()
				return result{}, err
			}
			vi := len(f.Fields) - 1
			for j := 0; j < f.Rows(); j++ {
				v, err := f.Fields[vi].FloatAt(j)
				if err != nil {
					rec.mu.Unlock()
					return result{}, err
				}
				us := int64(v)
				if seen[us] {
					continue
				}
				seen[us] = true
				lat = append(lat, float64(rec.at[i].Sub(time.UnixMicro(us)).Microseconds())/1000)
			}
		}
		received = min(received, len(seen))
		frames += len(rec.packets)
		if n := len(rec.at); n > 0 {
			if first.IsZero() || rec.at[0].Before(first) {
				first = rec.at[0]
			}
			if rec.at[n-1].After(last) {
				last = rec.at[n-1]
			}
		}
		rec.mu.Unlock()
	}
	sort.Float64s(lat)
	q := func(p float64) float64 {
		if len(lat) == 0 {
			return math.NaN()
		}
		return lat[min(len(lat)-1, int(math.Ceil(p*float64(len(lat))))-1)]
	}
	res := result{published: published, received: received, lost: max(0, published-received),
		p50: q(0.50), p99: q(0.99), framesPerSec: float64(frames) / duration.Seconds()}
	if frames > 2 {
		// Frames per second while the streams were busy: the frames over the time they span (all viewers).
		if span := last.Sub(first).Seconds(); span > 0 {
			res.framesPerSec = float64(frames-1) / span
		}
	}
	if len(lat) > 0 && received > 0 {
		res.max = lat[len(lat)-1]
		res.cpuPerMsg = float64(cpu.Microseconds()) / float64(received)
	}
	return res, nil
}

// publish is the publisher process: rate messages per second for duration, QoS 1, payload = publish time in
// Unix microseconds.
func publish(broker, topic string, rate float64, duration time.Duration) error {
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker).SetClientID("livebench-pub-" + randomID()).
		SetMaxResumePubInFlight(10000).SetWriteTimeout(10 * time.Second))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		return fmt.Errorf("connect: %w", tok.Error())
	}
	defer c.Disconnect(250)
	n := int(rate * duration.Seconds())
	period := time.Duration(float64(time.Second) / rate)
	start := time.Now().Add(50 * time.Millisecond)
	toks := make([]mqtt.Token, 0, n)
	for i := 0; i < n; i++ {
		if wait := time.Until(start.Add(time.Duration(i) * period)); wait > 0 {
			time.Sleep(wait)
		}
		toks = append(toks, c.Publish(topic, 1, false, strconv.FormatInt(time.Now().UnixMicro(), 10)))
	}
	ok := 0
	for _, t := range toks {
		if t.WaitTimeout(30*time.Second) && t.Error() == nil {
			ok++
		}
	}
	fmt.Printf("published %d\n", ok)
	return nil
}

// database creates a fresh database with the schema on the server of FIELDLINE_TEST_POSTGRES_URL.
func (b *bench) database() (string, error) {
	base := os.Getenv("FIELDLINE_TEST_POSTGRES_URL")
	if base == "" {
		return "", fmt.Errorf("FIELDLINE_TEST_POSTGRES_URL is not set: eval \"$(scripts/services.sh env)\"")
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	name := "fieldline_livebench_" + randomID()
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", err
	}
	b.cleanups = append(b.cleanups, func() {
		if c, err := pgx.Connect(ctx, base); err == nil {
			_, _ = c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
			_ = c.Close(ctx)
		}
	})
	u, _ := url.Parse(base)
	u.Path = "/" + name
	pool, err := pgxpool.New(ctx, u.String())
	if err != nil {
		return "", err
	}
	defer pool.Close()
	if _, err := store.Migrate(ctx, pool, store.TimescaleAuto); err != nil {
		return "", err
	}
	// One row of history, so that the live query has a series (its own channel) and the channel of new series,
	// as on a dashboard; it is older than the seam, so it is never streamed.
	if _, err := pool.Exec(ctx, "INSERT INTO readings (time, device, metric, sensor, value) VALUES (now() - interval '1 minute', 'dev', 'latency', '', 0)"); err != nil {
		return "", err
	}
	return u.String(), nil
}

// startIngester builds (once) and starts fieldline-ingester subscribed to <id>/+/+, writing to pgURL with
// NOTIFY, and waits for /readyz.
func (b *bench) startIngester(pgURL, id string) error {
	if b.ingesterBin == "" {
		dir, err := os.MkdirTemp("", "livebench-")
		if err != nil {
			return err
		}
		b.ingesterBin = filepath.Join(dir, "fieldline-ingester")
		if out, err := exec.Command("go", "build", "-o", b.ingesterBin, "github.com/fieldline-iot/fieldline/ingester").CombinedOutput(); err != nil {
			return fmt.Errorf("build ingester: %w\n%s", err, out)
		}
	}
	dir, err := os.MkdirTemp("", "livebench-ingester-")
	if err != nil {
		return err
	}
	cfg := fmt.Sprintf(`mqtt:
  url: %s
  client_id: %s-ingester
  clean_session: true
  subscriptions:
    - filter: %s/+/+
      qos: 1
      template: "%s/{device}/{metric}"
      format: value
postgres:
  url: %s
  notify: true
spool:
  dir: %s
log:
  level: warn
`, b.broker, id, id, id, pgURL, filepath.Join(dir, "spool"))
	cfgPath := filepath.Join(dir, "ingester.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(b.ingesterBin, "-config", cfgPath, "-http-addr", addr)
	cmd.Env = os.Environ()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	b.cleanups = append(b.cleanups, func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		_ = os.RemoveAll(dir)
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("ingester not ready within 30 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
