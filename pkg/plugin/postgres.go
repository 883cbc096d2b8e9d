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
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/fieldline-iot/fieldline/internal/store"
	"github.com/fieldline-iot/fieldline/internal/timebucket"
	"github.com/fieldline-iot/fieldline/pkg/frames"
	"github.com/fieldline-iot/fieldline/pkg/sqlquery"
)

// postgresBackend reads PostgreSQL/TimescaleDB through one pool per data-source instance. Every session is
// read-only (default_transaction_read_only=on, set at connect) with a statement_timeout, and every statement
// additionally runs in its own READ ONLY transaction that is rolled back: a code query that changes session
// settings (SET, set_config) cannot carry the change over to the next query on the same connection.
//
// Code SQL (a Viewer's own statement) runs on a pool of its own, codePool, whose connections no builder,
// discovery or live read-back query ever uses: whatever session state a code query leaves (prepared statements,
// advisory locks, settings, temp tables, LISTEN, cursors) cannot reach them. pgx's statement cache names derive
// from the SQL text, which every frame shows, so a code query sharing their connections could DEALLOCATE and
// re-PREPARE them (measured: 30 of 30 later builder queries returned the attacker's value). On codePool, every
// connection is reset with DISCARD ALL when it goes back to the pool (destroyed when that fails), statements
// run unnamed (QueryExecModeExec: nothing to predict or poison even within one query's connection), and every
// byte it reads is counted against the query's budget (budget.go).
type postgresBackend struct {
	cfg      *PostgresSettings
	pool     *pgxpool.Pool // builder, discovery, live read-back, health
	codePool *pgxpool.Pool // code SQL only
	db       *sql.DB       // database/sql view of codePool, for the SDK's sqlutil.FrameFromRows
	budgets  *budgets

	mu     sync.Mutex
	schema *store.SchemaInfo // detected once per instance
	// The rollups installed on the user's own table for this mapping (nil: none), looked up at most every
	// tableRollupsTTL, so rollups installed while Grafana runs are used within a minute.
	tableRollups   *store.TableRollups
	tableRollupsAt time.Time
}

// tableRollupsTTL is how long a lookup of the own table's rollups is kept.
const tableRollupsTTL = time.Minute

// ownTableRollups returns the rollups installed on the user's table for this mapping, nil when there are none
// (or useRollup is off).
func (p *postgresBackend) ownTableRollups(ctx context.Context) (*store.TableRollups, error) {
	if p.cfg.Table == nil || p.cfg.NoRollup {
		return nil, nil
	}
	p.mu.Lock()
	if time.Since(p.tableRollupsAt) < tableRollupsTTL {
		r := p.tableRollups
		p.mu.Unlock()
		return r, nil
	}
	p.mu.Unlock()
	var found *store.TableRollups
	err := p.readOnly(ctx, func(tx pgx.Tx) error {
		r, ok, err := store.LookupTableRollups(ctx, tx, p.cfg.Table)
		if ok {
			found = &r
		}
		return err
	})
	if err != nil {
		return nil, downstream(fmt.Errorf("PostgreSQL: %w", err))
	}
	p.mu.Lock()
	p.tableRollups, p.tableRollupsAt = found, time.Now()
	p.mu.Unlock()
	return found, nil
}

func newPostgresBackend(cfg *PostgresSettings, statementTimeout time.Duration, b *budgets, socks secureSocks) (*postgresBackend, error) {
	host, port, _ := net.SplitHostPort(cfg.Host)
	u := url.URL{Scheme: "postgres", Host: net.JoinHostPort(host, port), Path: "/" + cfg.Database, User: url.User(cfg.User)}
	u.RawQuery = url.Values{"sslmode": {cfg.SSLMode}}.Encode()
	pc, err := pgxpool.ParseConfig(u.String())
	if err != nil {
		return nil, fmt.Errorf("postgres settings: %w", err)
	}
	pc.ConnConfig.Password = cfg.Password // never part of a string that could end up in an error
	// TLS from the PEM settings, not from files: pgx's TLS configuration (and its fallbacks for allow/prefer)
	// is replaced by one with the custom CA and client certificate, with sslMode's meaning.
	if err := store.ApplyTLS(&pc.ConnConfig.Config, cfg.SSLMode, cfg.TLS); err != nil {
		return nil, fmt.Errorf("postgres TLS settings: %w", err)
	}
	socks.postgres(&pc.ConnConfig.Config)
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
	cc := codePoolConfig(pc, b.perQuery)
	pool, err := pgxpool.NewWithConfig(context.Background(), pc) // lazy: connects on first use
	if err != nil {
		return nil, fmt.Errorf("postgres pool: %w", err)
	}
	codePool, err := pgxpool.NewWithConfig(context.Background(), cc)
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres pool: %w", err)
	}
	return &postgresBackend{cfg: cfg, pool: pool, codePool: codePool, db: stdlib.OpenDBFromPool(codePool), budgets: b}, nil
}

// codePoolConfig derives the code-SQL pool from the builder pool's configuration.
func codePoolConfig(pc *pgxpool.Config, maxResponseBytes int64) *pgxpool.Config {
	cc := pc.Copy()
	cc.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeExec // unnamed statements only
	cc.ConnConfig.StatementCacheCapacity = 0
	cc.ConnConfig.DescriptionCacheCapacity = 0
	cc.ConnConfig.RuntimeParams["application_name"] = "fieldline-grafana-code"
	dial := cc.ConnConfig.DialFunc
	cc.ConnConfig.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &budgetConn{Conn: c}, nil
	}
	cc.AfterConnect = func(_ context.Context, c *pgx.Conn) error {
		// One message (a row) larger than the whole budget is refused before it is allocated.
		c.PgConn().Frontend().SetMaxBodyLen(int(maxResponseBytes))
		return nil
	}
	cc.PrepareConn = func(ctx context.Context, c *pgx.Conn) (bool, error) {
		bc, ok := budgetConnOf(c.PgConn().Conn())
		if !ok {
			return false, errors.New("code SQL connection without a byte budget")
		}
		bc.arm(budgetFrom(ctx))
		return true, nil
	}
	cc.AfterRelease = func(c *pgx.Conn) bool {
		if bc, ok := budgetConnOf(c.PgConn().Conn()); ok {
			bc.arm(nil)
		}
		// What a code query left in its session goes: prepared statements, advisory locks, settings, temp
		// tables, LISTEN, cursors (DISCARD ALL; the connection's startup settings are its defaults and stay).
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := c.Exec(ctx, "DISCARD ALL")
		return err == nil
	}
	return cc
}

func (p *postgresBackend) close() {
	_ = p.db.Close()
	p.codePool.Close()
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
	if p.cfg.Table != nil {
		// The user's own table: no Fieldline schema to inspect; date_bin unless timescale is on.
		info := store.SchemaInfo{Variant: store.Plain}
		if p.cfg.Timescale == store.TimescaleOn {
			info.Variant = store.Timescale
		}
		p.schema = &info
		return info, nil
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

// statement is the builder statement for a request on this database (its variant and rollups).
func (p *postgresBackend) statement(ctx context.Context, req sqlquery.Request) (sqlquery.Statement, error) {
	info, err := p.schemaInfo(ctx)
	if err != nil {
		return sqlquery.Statement{}, err
	}
	rollups, err := p.ownTableRollups(ctx)
	if err != nil {
		return sqlquery.Statement{}, err
	}
	st, err := sqlquery.Build(req, sqlquery.Options{Timescale: info.Timescale(), NoRollup: p.cfg.NoRollup, Table: p.cfg.Table, TableRollups: rollups})
	if err != nil {
		return st, downstream(err)
	}
	return st, nil
}

// builder runs a builder query and returns its series.
func (p *postgresBackend) builder(ctx context.Context, req sqlquery.Request) (*frames.Collector, sqlquery.Statement, error) {
	st, err := p.statement(ctx, req)
	if err != nil {
		return nil, st, err
	}
	c := frames.NewCollector()
	if req.Aggregation != sqlquery.None {
		// One point per bucket in each series, and no series has more than the statement's rows.
		c.ExpectPoints(int(min(timebucket.Count(st.From, st.To, req.Interval), req.Limit+1)))
	}
	err = p.readOnly(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, st.SQL, st.Args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		truncated, err := st.ReadRows(rows, c.Add)
		c.Truncated = truncated
		return err
	})
	if err != nil {
		return nil, st, downstream(fmt.Errorf("PostgreSQL: builder query: %w", err))
	}
	return c, st, nil
}

// code runs a code query (macros already expanded) on the code pool, within the instance's byte budget, and
// returns the SDK's frame for its rows.
func (p *postgresBackend) code(ctx context.Context, query string, rowLimit int64) (*data.Frame, error) {
	budget, release, err := p.budgets.acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	frame, err := p.codeRows(withBudget(ctx, budget), query, rowLimit)
	var tooLong *pgproto3.ExceededMaxBodyLenErr
	if err != nil && (budget.exceeded.Load() || errors.As(err, &tooLong)) {
		return nil, budget.err()
	}
	return frame, err
}

func (p *postgresBackend) codeRows(ctx context.Context, query string, rowLimit int64) (*data.Frame, error) {
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

// mappedDiscoveryScan bounds the rows a picker or variable reads from a mapped table (its newest rows): such a
// table has no series catalogue or series index to walk.
const mappedDiscoveryScan = 200_000

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
	case d.States: // the states table's own series index
	case p.cfg.Table != nil:
		d.Table, d.MaxScan = p.cfg.Table, mappedDiscoveryScan
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
	if p.cfg.Table != nil {
		return p.tableHealth(ctx)
	}
	var info store.SchemaInfo
	var exists bool
	var readOnly, version string
	var risks []string
	err := p.readOnly(ctx, func(tx pgx.Tx) error {
		var err error
		if info, exists, err = store.Inspect(ctx, tx); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, "SHOW default_transaction_read_only").Scan(&readOnly); err != nil {
			return fmt.Errorf("read default_transaction_read_only: %w", err)
		}
		if err := tx.QueryRow(ctx, "SELECT current_setting('server_version')").Scan(&version); err != nil {
			return err
		}
		risks, err = roleRisks(ctx, tx)
		return err
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
	return fmt.Sprintf("PostgreSQL %s ok: %s, schema v%d, readings present, read-only session", version, variant, info.Version) + roleWarning(ctx, risks), nil
}

// tableHealth checks a mapped table: readable through the mapping, and the newest row's time.
func (p *postgresBackend) tableHealth(ctx context.Context) (string, error) {
	var readOnly string
	var newest *time.Time
	var risks []string
	err := p.readOnly(ctx, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, "SHOW default_transaction_read_only").Scan(&readOnly); err != nil {
			return fmt.Errorf("read default_transaction_read_only: %w", err)
		}
		if err := tx.QueryRow(ctx, "SELECT max(time) FROM (SELECT time FROM "+p.cfg.Table.Relation()+" ORDER BY time DESC LIMIT 1) s").Scan(&newest); err != nil {
			return fmt.Errorf("read table %s through the mapping: %w", p.cfg.Table.Name, err)
		}
		var err error
		risks, err = roleRisks(ctx, tx)
		return err
	})
	if err != nil {
		return "", err
	}
	if readOnly != "on" {
		return "", errors.New("connected, but the session is not read-only")
	}
	last := "no rows yet"
	if newest != nil {
		last = "newest row " + newest.UTC().Format(time.RFC3339)
	}
	live := "no live (set postgres.table.notifyChannel)"
	if p.cfg.NotifyChannel != "" {
		live = "live on NOTIFY " + p.cfg.NotifyChannel
	}
	return fmt.Sprintf("PostgreSQL ok: table %s mapped (%s), %s, read-only session", p.cfg.Table.Name, last, live) + roleWarning(ctx, risks), nil
}

// downstreamError marks database and network faults (the SDK's ErrorSourceDownstream).
func downstream(err error) error {
	if err == nil || backend.IsDownstreamError(err) {
		return err
	}
	return backend.DownstreamError(err)
}
