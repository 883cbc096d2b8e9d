package sink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fieldline-iot/fieldline/internal/retry"
	"github.com/fieldline-iot/fieldline/internal/store"
	"github.com/fieldline-iot/fieldline/internal/telemetry"
	"github.com/fieldline-iot/fieldline/internal/tlsconf"
)

// Postgres writes batches with store.Writer (COPY, rollup, one NOTIFY per batch). It migrates the schema on
// its first successful contact with the server, so the ingester starts (and spools) while PostgreSQL is down.
type Postgres struct {
	pool          *pgxpool.Pool
	mode          store.TimescaleMode
	notify        bool
	notifyTrigger bool
	log           *slog.Logger

	mu      sync.Mutex
	writer  *store.Writer
	info    store.SchemaInfo
	lastErr error // of the last failed Prepare
}

// PostgresOptions configure the PostgreSQL sink.
type PostgresOptions struct {
	URL           string
	Timescale     store.TimescaleMode
	Notify        bool
	NotifyTrigger bool
	MaxConns      int32
	// TLS, when set, replaces the URL's TLS settings (store.ApplyTLS, with SSLMode: the URL's sslmode).
	TLS     *tlsconf.Options
	SSLMode string
}

// NewPostgres prepares the pool; it does not connect yet.
func NewPostgres(opts PostgresOptions, log *slog.Logger) (*Postgres, error) {
	pc, err := pgxpool.ParseConfig(opts.URL)
	if err != nil {
		return nil, fmt.Errorf("postgres sink: parse URL: %w", err)
	}
	if opts.TLS != nil {
		if err := store.ApplyTLS(&pc.ConnConfig.Config, opts.SSLMode, *opts.TLS); err != nil {
			return nil, fmt.Errorf("postgres sink: TLS: %w", err)
		}
	}
	pc.AfterConnect = store.WriterSessionSetup
	pc.MaxConns = max(opts.MaxConns, 2)
	pc.ConnConfig.RuntimeParams["application_name"] = "fieldline-ingester"
	pool, err := pgxpool.NewWithConfig(context.Background(), pc)
	if err != nil {
		return nil, fmt.Errorf("postgres sink: %w", err)
	}
	return &Postgres{pool: pool, mode: opts.Timescale, notify: opts.Notify, notifyTrigger: opts.NotifyTrigger, log: log}, nil
}

// Name implements Sink.
func (p *Postgres) Name() string { return "postgres" }

// Pool exposes the connection pool (tests, health).
func (p *Postgres) Pool() *pgxpool.Pool { return p.pool }

// Prepare migrates the schema once; later calls return at once.
func (p *Postgres) Prepare(ctx context.Context) (store.SchemaInfo, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.writer != nil {
		return p.info, nil
	}
	info, err := store.Migrate(ctx, p.pool, p.mode)
	if err == nil && info.Warning != "" {
		p.log.Warn(info.Warning)
	}
	if err == nil {
		err = store.SetNotifyTrigger(ctx, p.pool, info, p.notifyTrigger)
	}
	if err != nil {
		p.lastErr = fmt.Errorf("postgres sink: %w", err)
		return info, p.lastErr
	}
	p.log.Info("PostgreSQL schema ready", "variant", info.Variant, "version", info.Version, "applied", info.Applied,
		"notify_trigger", p.notifyTrigger)
	p.info, p.writer = info, store.NewWriter(p.pool, info, p.notify)
	return info, nil
}

// Ready is nil once the schema is migrated; before, it says why not (readiness: the ingester must not look
// ready while every batch goes to the spool because the schema could not be created).
func (p *Postgres) Ready() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.writer != nil {
		return nil
	}
	if p.lastErr != nil {
		return fmt.Errorf("PostgreSQL schema not migrated yet: %w", p.lastErr)
	}
	return errors.New("PostgreSQL schema not migrated yet")
}

// PrepareLoop retries Prepare with backoff (1 s → 30 s) until it succeeds or ctx ends, so the schema is migrated
// (and readiness reached) as soon as PostgreSQL answers, even when no batch arrives to trigger it.
func (p *Postgres) PrepareLoop(ctx context.Context) {
	delay := retry.New(time.Second, 30*time.Second)
	for ctx.Err() == nil {
		pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		_, err := p.Prepare(pctx)
		cancel()
		if err == nil {
			return
		}
		backoff := delay.Next()
		p.log.Warn("PostgreSQL schema not migrated yet; retrying (batches are spooled meanwhile, /readyz says 503)", "err", err, "retry_in", backoff)
		retry.Wait(ctx, backoff)
	}
}

// Write implements Sink.
func (p *Postgres) Write(ctx context.Context, batch []telemetry.Reading) error {
	if _, err := p.Prepare(ctx); err != nil {
		return err
	}
	return p.writer.Write(ctx, batch)
}

// Close implements Sink.
func (p *Postgres) Close() { p.pool.Close() }
