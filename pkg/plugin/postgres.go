package plugin

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/data"
	"github.com/grafana/grafana-plugin-sdk-go/data/sqlutil"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/fieldline-iot/fieldline/pkg/sqlquery"
	"github.com/fieldline-iot/fieldline/pkg/store"
)

// postgresBackend reads PostgreSQL/TimescaleDB through one pool per data-source instance. Every session is
// read-only (default_transaction_read_only=on, set at connect) with a statement_timeout, and every statement
// additionally runs in its own READ ONLY transaction that is rolled back: a code query that changes session
// settings (SET, set_config) cannot carry the change over to the next query on the same connection.
type postgresBackend struct {
	cfg  *PostgresSettings
	pool *pgxpool.Pool
	db   *sql.DB // database/sql view of pool, for the SDK's sqlutil.FrameFromRows

	mu     sync.Mutex
	schema *store.SchemaInfo // detected once per instance
}

func newPostgresBackend(cfg *PostgresSettings, statementTimeout time.Duration) (*postgresBackend, error) {
	host, port, _ := net.SplitHostPort(cfg.Host)
	u := url.URL{Scheme: "postgres", Host: net.JoinHostPort(host, port), Path: "/" + cfg.Database, User: url.User(cfg.User)}
	u.RawQuery = url.Values{"sslmode": {cfg.SSLMode}}.Encode()
	pc, err := pgxpool.ParseConfig(u.String())
	if err != nil {
		return nil, fmt.Errorf("postgres settings: %w", err)
	}
	pc.ConnConfig.Password = cfg.Password // never part of a string that could end up in an error
	pc.ConnConfig.RuntimeParams["default_transaction_read_only"] = "on"
	pc.ConnConfig.RuntimeParams["statement_timeout"] = strconv.FormatInt(statementTimeout.Milliseconds(), 10)
	pc.ConnConfig.RuntimeParams["idle_in_transaction_session_timeout"] = strconv.FormatInt((statementTimeout + time.Minute).Milliseconds(), 10)
	pc.ConnConfig.RuntimeParams["application_name"] = "fieldline-grafana"
	// Builder statements are prepared and cached per connection; a generic plan cannot see the time range or
	// the interval and picks scans for the worst case. Custom plans cost well under a millisecond to make.
	pc.ConnConfig.RuntimeParams["plan_cache_mode"] = "force_custom_plan"
	pc.ConnConfig.ConnectTimeout = 10 * time.Second
	pc.MaxConns = cfg.MaxConns
	pc.MinConns = 0
	pc.MaxConnIdleTime = 5 * time.Minute
	pc.MaxConnLifetime = time.Hour
	pool, err := pgxpool.NewWithConfig(context.Background(), pc) // lazy: connects on first use
	if err != nil {
		return nil, fmt.Errorf("postgres pool: %w", err)
	}
	return &postgresBackend{cfg: cfg, pool: pool, db: stdlib.OpenDBFromPool(pool)}, nil
}

func (p *postgresBackend) close() {
	_ = p.db.Close()
	p.pool.Close() // waits for connections in use: in-flight queries end first (bounded by statement_timeout)
}

// readOnly runs fn in a READ ONLY transaction that is always rolled back.
func (p *postgresBackend) readOnly(ctx context.Context, fn func(pgx.Tx) error) error {
	tx, err := p.pool.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly})
	if err != nil {
		return downstream(fmt.Errorf("PostgreSQL: begin read-only transaction: %w", err))
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	return fn(tx)
}

// schemaInfo detects the storage variant (cached). postgres.timescale on/off overrides detection.
func (p *postgresBackend) schemaInfo(ctx context.Context) (store.SchemaInfo, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.schema != nil {
		return *p.schema, nil
	}
	var info store.SchemaInfo
	var exists bool
	err := p.readOnly(ctx, func(tx pgx.Tx) error {
		var err error
		info, exists, err = store.Inspect(ctx, tx)
		return err
	})
	if err != nil {
		return info, downstream(fmt.Errorf("PostgreSQL: inspect schema: %w", err))
	}
	if !exists {
		return info, downstream(errors.New("PostgreSQL: table readings does not exist (run fieldline-ingester once to create the schema)"))
	}
	switch p.cfg.Timescale {
	case store.TimescaleOn:
		info.Variant = store.Timescale
	case store.TimescaleOff:
		info.Variant = store.Plain
	}
	p.schema = &info
	return info, nil
}

// builder runs a builder query and returns its series.
func (p *postgresBackend) builder(ctx context.Context, req sqlquery.Request) (*seriesCollector, sqlquery.Statement, error) {
	info, err := p.schemaInfo(ctx)
	if err != nil {
		return nil, sqlquery.Statement{}, err
	}
	st, err := sqlquery.Build(req, sqlquery.Options{Timescale: info.Timescale(), NoRollup: p.cfg.NoRollup})
	if err != nil {
		return nil, st, err
	}
	c := newSeriesCollector()
	err = p.readOnly(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, st.SQL, st.Args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		var t time.Time
		var device, sensor string
		var v float64
		for rows.Next() {
			if err := rows.Scan(&t, &device, &sensor, &v); err != nil {
				return err
			}
			c.add(t, device, sensor, v)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, st, downstream(fmt.Errorf("PostgreSQL: builder query: %w", err))
	}
	return c, st, nil
}

// code runs a code query (macros already expanded) and returns the SDK's frame for its rows.
func (p *postgresBackend) code(ctx context.Context, query string, rowLimit int64) (*data.Frame, error) {
	tx, err := p.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, downstream(fmt.Errorf("PostgreSQL: begin read-only transaction: %w", err))
	}
	defer func() { _ = tx.Rollback() }()
	rows, err := tx.QueryContext(ctx, query)
	if err != nil {
		return nil, downstream(fmt.Errorf("PostgreSQL: %w", err))
	}
	defer func() { _ = rows.Close() }()
	frame, err := sqlutil.FrameFromRows(rows, rowLimit)
	if err != nil {
		return nil, downstream(fmt.Errorf("PostgreSQL: read rows: %w", err))
	}
	return frame, nil
}

// seriesCatalogueVersion is the schema version from which readings_series is complete (created by store
// migration 8, filled and kept by the trigger from migration 9 on).
const seriesCatalogueVersion = 9

// discover lists label values from the series catalogue (or, on older schemas, with the loose index scan of
// sqlquery.DiscoverySQL).
func (p *postgresBackend) discover(ctx context.Context, d sqlquery.Discovery) ([]string, error) {
	info, err := p.schemaInfo(ctx)
	if err != nil {
		return nil, err
	}
	switch {
	case info.Version >= seriesCatalogueVersion:
		d.Catalogue = true // every series ever written, on both variants
	case info.Timescale() && d.Recent == "":
		// Schemas before the catalogue: stay in uncompressed chunks (compressed after 7 days).
		d.Recent = "7 days"
	}
	q, args, err := sqlquery.DiscoverySQL(d)
	if err != nil {
		return nil, err
	}
	out := []string{}
	err = p.readOnly(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, q, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				return err
			}
			if s != "" {
				out = append(out, s)
			}
		}
		return rows.Err()
	})
	if err != nil {
		return nil, downstream(fmt.Errorf("PostgreSQL: list %ss: %w", d.Label, err))
	}
	return out, nil
}

// health reports reachability, schema and the read-only session.
func (p *postgresBackend) health(ctx context.Context) (string, error) {
	var info store.SchemaInfo
	var exists bool
	var readOnly, version string
	err := p.readOnly(ctx, func(tx pgx.Tx) error {
		var err error
		if info, exists, err = store.Inspect(ctx, tx); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, "SHOW default_transaction_read_only").Scan(&readOnly); err != nil {
			return fmt.Errorf("read default_transaction_read_only: %w", err)
		}
		return tx.QueryRow(ctx, "SELECT current_setting('server_version')").Scan(&version)
	})
	if err != nil {
		return "", err
	}
	if !exists {
		return "", errors.New("connected, but table readings does not exist (run fieldline-ingester once to create the schema)")
	}
	if readOnly != "on" {
		return "", errors.New("connected, but the session is not read-only")
	}
	variant := "plain PostgreSQL"
	if info.Timescale() {
		variant = "TimescaleDB"
	}
	if p.cfg.Timescale == store.TimescaleOn && !info.Timescale() {
		return "", errors.New("connected, but timescale is 'on' and the schema is plain PostgreSQL")
	}
	return fmt.Sprintf("PostgreSQL %s ok: %s, schema v%d, readings present, read-only session", version, variant, info.Version), nil
}

// downstreamError marks database and network faults (the SDK's ErrorSourceDownstream).
func downstream(err error) error {
	if err == nil || backend.IsDownstreamError(err) {
		return err
	}
	return backend.DownstreamError(err)
}
