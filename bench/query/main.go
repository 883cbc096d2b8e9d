// Command bench measures the plugin's builder queries, query to frames, on a generated dataset: 7 days of
// 10-second readings for 20 series (1 209 600 rows) written with store.Writer (COPY + rollup) in batches of
// 10 000, then builder 24 h @ 1 m and 7 d @ 10 m over all 20 series and 24 h raw for one series. It prints
// p50 and p95 in milliseconds, in process (QueryData in this process) and end to end: the plugin runs as a process
// of its own, as Grafana runs it (this binary started again with -plugin-process, serving the SDK's gRPC adapter on
// a unix socket, hashicorp/go-plugin's transport on Linux), and this process plays Grafana: QueryData over gRPC,
// the Arrow frames decoded and the response streamed as JSON with the SDK's encoders, what Grafana does for
// /api/ds/query. It prints Grafana's part of that, the Arrow and JSON sizes, the CPU time per end-to-end query of
// each process, and the plugin process's peak RSS. FIELDLINE_CPUPROFILE=file writes a CPU profile of this process,
// FIELDLINE_PLUGIN_CPUPROFILE=file one of the plugin process.
//
//	eval "$(scripts/services.sh env)"; go run ./bench/query [-n 30] [-keep] [-db name]
//
// The database (fieldline_bench_* on the server of FIELDLINE_TEST_POSTGRES_URL) is dropped afterwards unless
// -keep; -db reuses a kept one without regenerating.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"net/url"
	"os"
	"os/signal"
	"runtime/pprof"
	"sort"
	"strings"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/data"
	"github.com/grafana/grafana-plugin-sdk-go/genproto/pluginv2"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	jsoniter "github.com/json-iterator/go"

	"github.com/fieldline-iot/fieldline/bench/internal/procstat"
	"github.com/fieldline-iot/fieldline/internal/store"
	"github.com/fieldline-iot/fieldline/internal/telemetry"
	"github.com/fieldline-iot/fieldline/pkg/plugin"
)

const (
	days      = 7
	step      = 10 * time.Second
	devices   = 10
	batchSize = 10_000
)

var sensors = []string{"a", "b"}

func main() {
	n := flag.Int("n", 30, "measured runs per query (after 3 warm-up runs)")
	keep := flag.Bool("keep", false, "keep the generated database")
	dbName := flag.String("db", "", "reuse this (kept) database instead of generating one")
	pluginSocket := flag.String("plugin-process", "", "internal: be the plugin process, serving QueryData on this unix socket for -db")
	flag.Parse()
	// FIELDLINE_CPUPROFILE=file profiles the bench process (data generation excluded when -db reuses a
	// database), FIELDLINE_PLUGIN_CPUPROFILE=file the plugin process.
	profile := os.Getenv("FIELDLINE_CPUPROFILE")
	if *pluginSocket != "" {
		profile = os.Getenv("FIELDLINE_PLUGIN_CPUPROFILE")
	}
	if profile != "" {
		if f, err := os.Create(profile); err == nil && pprof.StartCPUProfile(f) == nil {
			defer pprof.StopCPUProfile()
		}
	}
	var err error
	if *pluginSocket != "" {
		err = pluginProcessMain(*dbName, *pluginSocket)
	} else {
		err = run(*n, *keep, *dbName)
	}
	if err != nil {
		pprof.StopCPUProfile()
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(n int, keep bool, dbName string) error {
	ctx := context.Background()
	baseURL := os.Getenv("FIELDLINE_TEST_POSTGRES_URL")
	if baseURL == "" {
		return fmt.Errorf("FIELDLINE_TEST_POSTGRES_URL is not set (eval \"$(scripts/services.sh env)\")")
	}
	u, err := url.Parse(baseURL)
	if err != nil {
		return fmt.Errorf("parse FIELDLINE_TEST_POSTGRES_URL: %w", err)
	}
	end := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)
	if dbName == "" {
		var b [6]byte
		_, _ = rand.Read(b[:])
		dbName = "fieldline_bench_" + hex.EncodeToString(b[:])
		admin, err := pgx.Connect(ctx, baseURL)
		if err != nil {
			return fmt.Errorf("connect: %w", err)
		}
		if _, err := admin.Exec(ctx, "CREATE DATABASE "+dbName); err != nil {
			return fmt.Errorf("create database: %w", err)
		}
		if !keep {
			defer func() {
				_, _ = admin.Exec(context.Background(), "DROP DATABASE IF EXISTS "+dbName+" WITH (FORCE)")
				_ = admin.Close(context.Background())
			}()
		}
		u.Path = "/" + dbName
		if err := generate(ctx, u.String(), end); err != nil {
			return err
		}
	}
	ds, err := newDatasource(ctx, u, dbName)
	if err != nil {
		return err
	}
	defer ds.Dispose()
	proc, err := startPluginProcess(dbName)
	if err != nil {
		return err
	}
	defer proc.stop()

	cases := []struct {
		name      string
		from      time.Time
		interval  time.Duration
		model     map[string]any
		target    float64 // p50 in process
		e2eTarget float64 // p50 end to end (0: none)
	}{
		{"builder 24h @ 1m, 20 series (avg)", end.Add(-24 * time.Hour), time.Minute,
			map[string]any{"metric": "temperature", "aggregation": "avg", "interval": "1m"}, 20, 15},
		{"builder 7d @ 10m, 20 series (avg)", end.Add(-days * 24 * time.Hour), 10 * time.Minute,
			map[string]any{"metric": "temperature", "aggregation": "avg", "interval": "10m"}, 35, 20},
		{"builder 24h raw, 1 series", end.Add(-24 * time.Hour), time.Minute,
			map[string]any{"metric": "temperature", "device": "dev03", "sensor": "a"}, 30, 0},
	}
	fmt.Printf("database %s: %d rows, %d series; %d runs per query after 3 warm-ups\n", dbName, days*24*360*devices*len(sensors), devices*len(sensors), n)
	for _, c := range cases {
		c.model["refId"] = "A"
		c.model["source"] = "sql"
		raw, _ := json.Marshal(c.model)
		req := &backend.QueryDataRequest{Queries: []backend.DataQuery{{RefID: "A", JSON: raw, Interval: c.interval, MaxDataPoints: 2000,
			TimeRange: backend.TimeRange{From: c.from, To: end}}}}
		var times []float64
		rows, frames := 0, 0
		for i := 0; i < n+3; i++ {
			start := time.Now()
			resp, err := ds.QueryData(ctx, req)
			elapsed := float64(time.Since(start).Microseconds()) / 1000
			if err != nil {
				return err
			}
			r := resp.Responses["A"]
			if r.Error != nil {
				return fmt.Errorf("%s: %w", c.name, r.Error)
			}
			if i >= 3 {
				times = append(times, elapsed)
			}
			rows, frames = 0, len(r.Frames)
			for _, f := range r.Frames {
				rows += f.Rows() * max(1, len(f.Fields)-1) // values: a wide frame has one value field per series
			}
		}
		sort.Float64s(times)
		p50, p95 := percentile(times, 0.50), percentile(times, 0.95)
		verdict := "ok"
		if p50 > c.target {
			verdict = "OVER TARGET"
		}
		fmt.Printf("%-36s frames=%-3d points=%-6d p50=%7.2f ms  p95=%7.2f ms  (target p50 <= %.0f ms: %s)\n",
			c.name, frames, rows, p50, p95, c.target, verdict)
		e2e, err := endToEnd(ctx, proc, raw, c.from, end, c.interval, n)
		if err != nil {
			return fmt.Errorf("%s end to end: %w", c.name, err)
		}
		verdict = ""
		if c.e2eTarget > 0 {
			verdict = fmt.Sprintf("  (target p50 <= %.0f ms: ok)", c.e2eTarget)
			if percentile(e2e.times, 0.5) > c.e2eTarget {
				verdict = fmt.Sprintf("  (target p50 <= %.0f ms: OVER TARGET)", c.e2eTarget)
			}
		}
		fmt.Printf("%-36s end to end (gRPC + Grafana's JSON): p50=%7.2f ms  p95=%7.2f ms, Grafana's part p50=%.2f ms%s\n",
			"", percentile(e2e.times, 0.5), percentile(e2e.times, 0.95), percentile(e2e.grafana, 0.5), verdict)
		fmt.Printf("%-36s Arrow %d KiB, JSON %d KiB, CPU per end-to-end query: plugin process %.2f ms, Grafana's side %.2f ms\n",
			"", e2e.arrowBytes>>10, e2e.jsonBytes>>10, e2e.pluginCPU, e2e.grafanaCPU)
	}
	fmt.Printf("plugin process peak RSS %.1f MB\n", float64(proc.peakRSS())/1e6)
	// Discovery resources on the large table (loose index scan).
	for _, path := range []string{"devices?metric=temperature", "sensors?device=dev03", "metrics"} {
		var times []float64
		for i := 0; i < n+3; i++ {
			start := time.Now()
			var status int
			err := ds.CallResource(ctx, &backend.CallResourceRequest{Path: strings.SplitN(path, "?", 2)[0], Method: "GET", URL: path},
				backend.CallResourceResponseSenderFunc(func(r *backend.CallResourceResponse) error { status = r.Status; return nil }))
			if err != nil || status != 200 {
				return fmt.Errorf("/%s: status %d, %w", path, status, err)
			}
			if i >= 3 {
				times = append(times, float64(time.Since(start).Microseconds())/1000)
			}
		}
		sort.Float64s(times)
		fmt.Printf("resource /%-27s p50=%7.2f ms  p95=%7.2f ms\n", path, percentile(times, 0.5), percentile(times, 0.95))
	}
	return nil
}

// e2eResult is what endToEnd measured: wall times of the measured runs (sorted), the sizes of the last answer
// as Arrow (what the plugin sends Grafana) and as JSON (what Grafana sends the browser), and the process's CPU
// time per measured run (plugin, gRPC and Grafana's part together; PostgreSQL's is not in it).
type e2eResult struct {
	times                 []float64
	grafana               []float64 // of times: Grafana's part (Arrow decoded, JSON encoded)
	jsonBytes, arrowBytes int
	grafanaCPU, pluginCPU float64 // milliseconds per query: this process's (gRPC client, Grafana's part) and the plugin process's
}

// endToEnd times a query as a panel gets it: QueryData over gRPC (Arrow frames), then what Grafana does to
// answer /api/ds/query: the frames decoded and the response streamed as JSON with the SDK's encoders.
func endToEnd(ctx context.Context, proc *pluginProcess, raw []byte, from, to time.Time, interval time.Duration, n int) (e2eResult, error) {
	req := &pluginv2.QueryDataRequest{PluginContext: &pluginv2.PluginContext{OrgId: 1, PluginId: plugin.PluginID},
		Queries: []*pluginv2.DataQuery{{RefId: "A", Json: raw, IntervalMS: interval.Milliseconds(), MaxDataPoints: 2000,
			TimeRange: &pluginv2.TimeRange{FromEpochMS: from.UnixMilli(), ToEpochMS: to.UnixMilli()}}}}
	var res e2eResult
	var cpu0, pluginCPU0 time.Duration
	for i := 0; i < n+3; i++ {
		if i == 3 {
			cpu0, pluginCPU0 = procstat.SelfCPU(), proc.cpu()
		}
		start := time.Now()
		resp, err := proc.client.QueryData(ctx, req)
		if err != nil {
			return res, err
		}
		answered := time.Now()
		out := backend.NewQueryDataResponse()
		arrowBytes := 0
		for refID, r := range resp.Responses {
			for _, f := range r.Frames {
				arrowBytes += len(f)
			}
			frames, err := data.UnmarshalArrowFrames(r.Frames)
			if err != nil {
				return res, err
			}
			out.Responses[refID] = backend.DataResponse{Frames: frames}
		}
		// Grafana's /api/ds/query answers with response.JSONStreaming: jsoniter's standard-library-compatible
		// encoder, which uses the SDK's registered encoders for the response and its frames, streamed to the
		// client (here: counted and discarded).
		var body countingWriter
		if err := jsoniter.ConfigCompatibleWithStandardLibrary.NewEncoder(&body).Encode(out); err != nil {
			return res, err
		}
		if i >= 3 {
			res.times = append(res.times, float64(time.Since(start).Microseconds())/1000)
			res.grafana = append(res.grafana, float64(time.Since(answered).Microseconds())/1000)
		}
		res.jsonBytes, res.arrowBytes = int(body), arrowBytes
	}
	res.grafanaCPU = float64((procstat.SelfCPU() - cpu0).Microseconds()) / 1000 / float64(n)
	res.pluginCPU = float64((proc.cpu() - pluginCPU0).Microseconds()) / 1000 / float64(n)
	sort.Float64s(res.times)
	sort.Float64s(res.grafana)
	return res, nil
}

// countingWriter counts the bytes written to it.
type countingWriter int64

func (w *countingWriter) Write(p []byte) (int, error) {
	*w += countingWriter(len(p))
	return len(p), nil
}

// generate writes the dataset with the project's writer and analyzes the tables.
// newDatasource is the plugin's data-source instance for database dbName on the server of u.
func newDatasource(ctx context.Context, u *url.URL, dbName string) (*plugin.Datasource, error) {
	pw, _ := u.User.Password()
	jsonData, _ := json.Marshal(map[string]any{"postgres": map[string]any{
		"host": u.Host, "database": dbName, "user": u.User.Username(), "sslMode": "disable"}})
	inst, err := plugin.NewDatasource(ctx, backend.DataSourceInstanceSettings{ID: 1, UID: "bench", JSONData: jsonData,
		DecryptedSecureJSONData: map[string]string{"postgresPassword": pw}})
	if err != nil {
		return nil, err
	}
	return inst.(*plugin.Datasource), nil
}

// pluginProcessMain is the plugin process (startPluginProcess): the instance for dbName, served on socket.
func pluginProcessMain(dbName, socket string) error {
	u, err := url.Parse(os.Getenv("FIELDLINE_TEST_POSTGRES_URL"))
	if err != nil {
		return fmt.Errorf("parse FIELDLINE_TEST_POSTGRES_URL: %w", err)
	}
	if dbName == "" {
		return errors.New("-plugin-process needs -db")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ds, err := newDatasource(ctx, u, dbName)
	if err != nil {
		return err
	}
	defer ds.Dispose()
	return servePluginProcess(ctx, ds, socket)
}

func generate(ctx context.Context, dbURL string, end time.Time) error {
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer pool.Close()
	info, err := store.Migrate(ctx, pool, store.TimescaleAuto)
	if err != nil {
		return err
	}
	w := store.NewWriter(pool, info, false)
	start := end.Add(-days * 24 * time.Hour)
	t0 := time.Now()
	batch := make([]telemetry.Reading, 0, batchSize)
	total := 0
	for t := start; t.Before(end); t = t.Add(step) {
		i := float64(t.Sub(start) / step)
		for d := 0; d < devices; d++ {
			for s, sensor := range sensors {
				v := 20 + float64(d) + 5*math.Sin(i/360+float64(s)) + math.Mod(i*0.37, 1)
				batch = append(batch, telemetry.Reading{Time: t, Device: fmt.Sprintf("dev%02d", d), Metric: "temperature", Sensor: sensor, Unit: "°C", Value: v})
				if len(batch) == batchSize {
					if err := w.Write(ctx, batch); err != nil {
						return err
					}
					total += len(batch)
					batch = batch[:0]
				}
			}
		}
	}
	if err := w.Write(ctx, batch); err != nil {
		return err
	}
	total += len(batch)
	// The steady state autovacuum reaches (readings is tuned to vacuum every ~1 % of new rows): visibility map
	// set, so series reads are index-only, and fresh statistics. One statement each: VACUUM cannot run inside
	// the implicit transaction of a multi-statement string.
	for _, table := range []string{"readings", "readings_1m", "readings_5m", "readings_1h"} {
		if _, err := pool.Exec(ctx, "VACUUM ANALYZE "+table); err != nil {
			return fmt.Errorf("vacuum %s: %w", table, err)
		}
	}
	fmt.Printf("generated %d rows with store.Writer in batches of %d in %v (%s)\n", total, batchSize, time.Since(t0).Round(time.Millisecond), info.Variant)
	return nil
}

func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}
