// Command fieldline-ingester subscribes to MQTT, decodes sensor readings and writes them in batches to
// PostgreSQL/TimescaleDB and InfluxDB, acknowledging each message only once it is safely stored.
//
// Configuration: defaults < YAML file (-config) < FIELDLINE_* environment variables < flags.
// See fieldline-ingester.sample.yaml and the README. Exit status 2 means invalid configuration
// (including timescale: on when the server cannot use TimescaleDB).
//
// The ingester runs its goroutines on one OS thread at a time (GOMAXPROCS 1) unless the GOMAXPROCS environment
// variable says otherwise: its work is a chain of goroutine hand-offs (the MQTT reader, the batch loop, the
// sinks, the acker), which on several threads costs a thread wake-up, a futex and an epoll wait at many
// hand-offs. On one thread the same work runs in bursts: 2.0–2.7 µs per message against 3.4 on two
// (docs/benchmarks.md, "Ingester CPU per message"). Set GOMAXPROCS=N to give it N threads (e.g. for heavy JSON
// payloads on a many-core host).
//
// FIELDLINE_CPUPROFILE=file writes a CPU profile of the whole run (for `go tool pprof`), a debugging aid.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/fieldline-iot/fieldline/ingester/config"
	"github.com/fieldline-iot/fieldline/ingester/metrics"
	"github.com/fieldline-iot/fieldline/ingester/pipeline"
	"github.com/fieldline-iot/fieldline/ingester/sink"
	"github.com/fieldline-iot/fieldline/ingester/spool"
	"github.com/fieldline-iot/fieldline/internal/store"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "rollups" {
		os.Exit(runRollups(os.Args[2:], os.Getenv, os.Stdout, os.Stderr))
	}
	if n := maxProcs(os.Getenv); n > 0 {
		runtime.GOMAXPROCS(n)
	}
	os.Exit(run(os.Args[1:], os.Getenv, os.Stderr))
}

// maxProcs is the GOMAXPROCS the ingester sets: 1, or 0 (leave the runtime's own) when the GOMAXPROCS
// environment variable is set. See the package documentation.
func maxProcs(getenv func(string) string) int {
	if getenv("GOMAXPROCS") != "" {
		return 0
	}
	return 1
}

func run(args []string, getenv func(string) string, stderr io.Writer) int {
	cfg, err := config.Load(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "fieldline-ingester:", err)
		return 2
	}
	log := newLogger(cfg.Log, stderr)
	pipeline.WirePahoLogs(log, cfg.MQTT.Password)
	// FIELDLINE_CPUPROFILE=file writes a CPU profile of the whole run (for `go tool pprof`), a debugging aid.
	if path := getenv("FIELDLINE_CPUPROFILE"); path != "" {
		f, err := os.Create(path)
		if err == nil && pprof.StartCPUProfile(f) == nil {
			defer func() { pprof.StopCPUProfile(); f.Close() }()
		} else {
			log.Warn("cannot write CPU profile", "path", path, "err", err)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := serve(ctx, cfg, log); err != nil {
		var cerr *config.Error
		if errors.As(err, &cerr) {
			log.Error("fieldline-ingester cannot start", "key", cerr.Key, "err", err)
			return 2
		}
		log.Error("fieldline-ingester stopped", "err", err)
		return 1
	}
	return 0
}

func newLogger(c config.Log, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(strings.ToUpper(c.Level)))
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func serve(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	// One process per spool directory: a second one would number its batch files from the same sequence and
	// overwrite the first one's acknowledged batches.
	release, err := spool.Lock(cfg.Spool.Dir)
	if errors.Is(err, spool.ErrLocked) {
		return &config.Error{Key: "spool.dir", Err: fmt.Errorf("%w: give each instance its own spool.dir (or its own mqtt.client_id and the default spool.dir)", err)}
	}
	if err != nil {
		return &config.Error{Key: "spool.dir", Err: err}
	}
	defer release()
	warnLegacySpool(cfg, log)
	m := metrics.New()
	var sinks []*sink.Buffered
	var closers []func()
	defer func() {
		for _, c := range closers {
			c()
		}
	}()
	add := func(s sink.Sink, timeout time.Duration) error {
		sp, err := spool.Open(filepath.Join(cfg.Spool.Dir, s.Name()), cfg.Spool.MaxBytes)
		if err != nil {
			return err
		}
		if n := sp.Len(); n > 0 {
			log.Info("spool holds batches from an earlier run; replaying them first", "sink", s.Name(), "batches", n, "bytes", sp.Bytes())
		}
		sinks = append(sinks, sink.NewBuffered(s, sp, timeout, m, log))
		closers = append(closers, s.Close)
		return nil
	}
	if cfg.Postgres.Enabled {
		mode, _ := store.ParseTimescaleMode(cfg.Postgres.Timescale) // validated
		po := sink.PostgresOptions{URL: cfg.Postgres.URL, Timescale: mode, Notify: cfg.Postgres.Notify,
			NotifyTrigger: cfg.Postgres.NotifyTrigger, SSLMode: cfg.Postgres.SSLMode()}
		if cfg.Postgres.TLS.IsSet() {
			o, err := cfg.Postgres.TLS.Options("postgres.tls")
			if err != nil {
				return err
			}
			po.TLS = &o
		}
		pg, err := sink.NewPostgres(po, log)
		if err != nil {
			return err
		}
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		if _, err := pg.Prepare(pctx); errors.Is(err, store.ErrTimescaleUnavailable) {
			cancel()
			return &config.Error{Key: "postgres.timescale", Err: err}
		} else if err != nil {
			log.Warn("PostgreSQL not ready at start; batches are spooled, the schema is migrated when it answers, /readyz says 503 until then", "err", err)
			go pg.PrepareLoop(ctx)
		}
		cancel()
		if err := add(pg, cfg.Postgres.WriteTimeout); err != nil {
			return err
		}
	}
	if cfg.Influx.Enabled() {
		io := sink.InfluxOptions{URL: cfg.Influx.URL, Token: cfg.Influx.Token, Org: cfg.Influx.Org,
			Bucket: cfg.Influx.Bucket, Timeout: cfg.Influx.WriteTimeout}
		if cfg.Influx.TLS.IsSet() {
			tc, err := cfg.Influx.TLS.Config("influx.tls")
			if err != nil {
				return err
			}
			io.TLS = tc
		}
		if err := add(sink.NewInflux(io), cfg.Influx.WriteTimeout); err != nil {
			return err
		}
	}
	p, err := pipeline.New(cfg, sinks, m, log)
	if err != nil {
		return err
	}
	if cfg.HTTP.Addr != "" && cfg.HTTP.Addr != "off" {
		stopHTTP, addr, err := metrics.Serve(ctx, cfg.HTTP.Addr, m, p.Ready, log)
		if err != nil {
			return err
		}
		defer stopHTTP()
		log.Info("serving /metrics, /healthz, /readyz", "addr", addr)
	}
	names := make([]string, len(sinks))
	for i, s := range sinks {
		names[i] = s.Name()
	}
	log.Info("fieldline-ingester starting", "sinks", names, "subscriptions", len(cfg.MQTT.Subs), "batch_max_rows", cfg.Batch.MaxRows,
		"spool", cfg.Spool.Dir)
	if err := p.Run(ctx); err != nil {
		return err
	}
	log.Info("fieldline-ingester stopped cleanly")
	return nil
}

// warnLegacySpool warns when the default spool directory is in use and batches written by a release that
// spooled straight into the default base directory (<base>/<sink>, before per-client-id directories) are
// still there: they are not replayed from there.
func warnLegacySpool(cfg config.Config, log *slog.Logger) {
	base := config.DefaultSpoolBase()
	if filepath.Dir(cfg.Spool.Dir) != base {
		return
	}
	for _, sink := range []string{"postgres", "influxdb"} {
		if files, _ := filepath.Glob(filepath.Join(base, sink, "*.batch")); len(files) > 0 {
			log.Warn("batches spooled by an earlier release are waiting in the old default spool directory; run once with -spool-dir to replay them",
				"dir", base, "batches", len(files), "sink", sink, "command", "fieldline-ingester -spool-dir "+base)
		}
	}
}
