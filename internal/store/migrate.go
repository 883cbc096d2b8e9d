// Package store holds Fieldline's PostgreSQL/TimescaleDB schema (versioned, embedded migrations), the batch
// writer (COPY + rollup + one NOTIFY per batch) and the NOTIFY payload format the plugin's listener decodes.
//
// It does not import the Grafana plugin SDK, so the ingester stays small.
//
// Written by hand where pgx has it, for a measured reason: the binary COPY encoding of numeric readings
// (copybin.go; pgx's per-value encode plans were 22 % of the ingester's CPU, checked row for row against pgx on a
// real server) and the fast NOTIFY payload decoder (notify_decode.go; encoding/json is its reference and
// fallback).
package store

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Variant is the storage flavour a schema was created for.
type Variant string

const (
	// Plain is PostgreSQL 14+ without TimescaleDB: date_bin, a rollup table kept by the ingester.
	Plain Variant = "plain"
	// Timescale is PostgreSQL with the TimescaleDB extension: hypertable, compression, continuous aggregate.
	Timescale Variant = "timescale"
)

// TimescaleMode says whether to use TimescaleDB.
type TimescaleMode string

const (
	TimescaleAuto TimescaleMode = "auto" // use it when installed, or when available and creatable
	TimescaleOn   TimescaleMode = "on"   // require it
	TimescaleOff  TimescaleMode = "off"  // never use it
)

// ParseTimescaleMode accepts auto, on, off ("" = auto).
// TimescaleModes are the modes ParseTimescaleMode accepts (besides the aliases true/yes, false/no), in the order
// the editors offer them.
var TimescaleModes = []TimescaleMode{TimescaleAuto, TimescaleOn, TimescaleOff}

func ParseTimescaleMode(s string) (TimescaleMode, error) {
	switch TimescaleMode(strings.ToLower(strings.TrimSpace(s))) {
	case "", TimescaleAuto:
		return TimescaleAuto, nil
	case TimescaleOn, "true", "yes":
		return TimescaleOn, nil
	case TimescaleOff, "false", "no":
		return TimescaleOff, nil
	}
	return "", fmt.Errorf("timescale mode %q: want auto, on or off", s)
}

// Migration is one schema version; SQL depends on the variant.
type Migration struct {
	Version       int
	Name          string
	sql           map[Variant]string
	noTransaction map[Variant]bool
}

// SQL returns the statements this migration runs for a variant.
func (m Migration) SQL(v Variant) string { return m.sql[v] }

var migrationName = regexp.MustCompile(`^(\d{4})_([a-z0-9_]+?)(?:\.(plain|timescale))?\.sql$`)

// Migrations lists the embedded migrations in version order.
func Migrations() ([]Migration, error) {
	entries, err := fs.ReadDir(migrationFS, "migrations")
	if err != nil {
		return nil, fmt.Errorf("read embedded migrations: %w", err)
	}
	byVersion := map[int]*Migration{}
	for _, e := range entries {
		m := migrationName.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("embedded migration %q: name must be NNNN_name[.plain|.timescale].sql", e.Name())
		}
		version, _ := strconv.Atoi(m[1])
		body, err := migrationFS.ReadFile("migrations/" + e.Name())
		if err != nil {
			return nil, fmt.Errorf("read migration %s: %w", e.Name(), err)
		}
		mig := byVersion[version]
		if mig == nil {
			mig = &Migration{Version: version, Name: m[2], sql: map[Variant]string{}, noTransaction: map[Variant]bool{}}
			byVersion[version] = mig
		}
		if mig.Name != m[2] {
			return nil, fmt.Errorf("migration %04d has two names: %s and %s", version, mig.Name, m[2])
		}
		variants := []Variant{Plain, Timescale}
		if m[3] != "" {
			variants = []Variant{Variant(m[3])}
		}
		for _, v := range variants {
			if m[3] == "" {
				if _, specific := mig.sql[v]; specific {
					continue // a variant-specific file wins over the common one
				}
			}
			mig.sql[v] = string(body)
			mig.noTransaction[v] = strings.Contains(string(body), "fieldline:no-transaction")
		}
	}
	out := make([]Migration, 0, len(byVersion))
	for _, m := range byVersion {
		for _, v := range []Variant{Plain, Timescale} {
			if _, ok := m.sql[v]; !ok {
				return nil, fmt.Errorf("migration %04d_%s has no SQL for %s", m.Version, m.Name, v)
			}
		}
		out = append(out, *m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	for i, m := range out {
		if m.Version != i+1 {
			return nil, fmt.Errorf("migration versions must be 1..n without gaps: found %04d at position %d", m.Version, i+1)
		}
	}
	return out, nil
}

// migrationLockKey is the pg_advisory_lock key that serialises concurrent migrators ("fieldlin" in ASCII).
const migrationLockKey int64 = 0x6669656c646c696e

// SchemaInfo describes a migrated database.
type SchemaInfo struct {
	Variant Variant
	Version int
	Applied []int // versions this call applied (empty when the schema was current)
	// Warning, when set, is for the operator's log: TimescaleDB is on the server but could not be used, and why
	// (given once, when the schema is created).
	Warning string
}

// Timescale reports whether the schema uses TimescaleDB.
func (s SchemaInfo) Timescale() bool { return s.Variant == Timescale }

// Migrate brings the schema to the newest version. It is idempotent and safe when several processes run it at
// once: a session-level advisory lock serialises them and each migration is recorded in
// fieldline_schema_migrations. The variant of an existing schema is kept (a plain schema is not converted when
// TimescaleDB appears later: that is a deliberate, documented manual step).
func Migrate(ctx context.Context, pool *pgxpool.Pool, mode TimescaleMode) (SchemaInfo, error) {
	return migrateTo(ctx, pool, mode, 0)
}

// migrateTo migrates up to version upTo (0: the newest); tests use it to build older schemas.
func migrateTo(ctx context.Context, pool *pgxpool.Pool, mode TimescaleMode, upTo int) (SchemaInfo, error) {
	migs, err := Migrations()
	if err != nil {
		return SchemaInfo{}, err
	}
	if upTo > 0 && upTo < len(migs) {
		migs = migs[:upTo]
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return SchemaInfo{}, fmt.Errorf("migrate: acquire connection: %w", err)
	}
	defer conn.Release()
	c := conn.Conn()
	if _, err := c.Exec(ctx, "SELECT pg_advisory_lock($1)", migrationLockKey); err != nil {
		return SchemaInfo{}, fmt.Errorf("migrate: take advisory lock: %w", err)
	}
	defer func() {
		// Unlock with a fresh context: the caller's may be cancelled, and a held lock would block the next start.
		_, _ = c.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", migrationLockKey)
	}()

	if _, err := c.Exec(ctx, `CREATE TABLE IF NOT EXISTS fieldline_schema_migrations (
		version    integer PRIMARY KEY,
		name       text        NOT NULL,
		variant    text        NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return SchemaInfo{}, fmt.Errorf("migrate: create fieldline_schema_migrations: %w", err)
	}
	applied := map[int]bool{}
	var variant Variant
	var warning string
	rows, err := c.Query(ctx, "SELECT version, variant FROM fieldline_schema_migrations ORDER BY version")
	if err != nil {
		return SchemaInfo{}, fmt.Errorf("migrate: read applied versions: %w", err)
	}
	for rows.Next() {
		var v int
		var s string
		if err := rows.Scan(&v, &s); err != nil {
			rows.Close()
			return SchemaInfo{}, fmt.Errorf("migrate: read applied versions: %w", err)
		}
		applied[v] = true
		variant = Variant(s)
	}
	if err := rows.Err(); err != nil {
		return SchemaInfo{}, fmt.Errorf("migrate: read applied versions: %w", err)
	}
	if variant == "" {
		if variant, warning, err = chooseVariant(ctx, pool, c, mode); err != nil {
			return SchemaInfo{}, err
		}
	} else if mode == TimescaleOn && variant != Timescale {
		return SchemaInfo{}, fmt.Errorf("migrate: timescale is 'on' but this database's schema was created for plain PostgreSQL; convert it by hand (create_hypertable with migrate_data) or set timescale to auto: %w", ErrTimescaleUnavailable)
	}

	info := SchemaInfo{Variant: variant, Warning: warning}
	for _, m := range migs {
		info.Version = m.Version
		if applied[m.Version] {
			continue
		}
		if err := apply(ctx, c, m, variant); err != nil {
			return info, err
		}
		info.Applied = append(info.Applied, m.Version)
	}
	// Grafana's SELECT-only role may have been created after the schema: grant it what it reads (migration 7).
	if info.Version < 7 {
		return info, nil
	}
	if _, err := c.Exec(ctx, "SELECT fieldline_grant_reader()"); err != nil {
		return info, fmt.Errorf("migrate: grant SELECT to fieldline_reader: %w", err)
	}
	return info, nil
}

func apply(ctx context.Context, c *pgx.Conn, m Migration, v Variant) error {
	record := "INSERT INTO fieldline_schema_migrations (version, name, variant) VALUES ($1, $2, $3)"
	if m.noTransaction[v] {
		// One statement per round trip: several statements in one simple query form an implicit transaction.
		for i, stmt := range strings.Split(m.SQL(v), "\n-- fieldline:split\n") {
			if _, err := c.Exec(ctx, stmt); err != nil {
				return fmt.Errorf("migration %04d_%s (%s), statement %d: %w", m.Version, m.Name, v, i+1, err)
			}
		}
		if _, err := c.Exec(ctx, record, m.Version, m.Name, string(v)); err != nil {
			return fmt.Errorf("record migration %04d: %w", m.Version, err)
		}
		return nil
	}
	err := pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, m.SQL(v)); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, record, m.Version, m.Name, string(v))
		return err
	})
	if err != nil {
		return fmt.Errorf("migration %04d_%s (%s): %w", m.Version, m.Name, v, err)
	}
	return nil
}

// ErrTimescaleUnavailable is returned (wrapped) when timescale is 'on' but TimescaleDB cannot be used: the
// ingester treats it as a configuration error (exit status 2).
var ErrTimescaleUnavailable = errors.New("TimescaleDB is not usable")

// notPreloaded is the advice given when the extension is installed but the server does not load its library.
const notPreloaded = "the timescaledb extension is installed on the server but not loaded: add timescaledb to " +
	"shared_preload_libraries in postgresql.conf (timescaledb-tune does it) and restart PostgreSQL"

// chooseVariant picks the variant of a new schema. Whether TimescaleDB can be created is probed on a connection
// of its own: CREATE EXTENSION on a server that does not preload the library ends the session (FATAL), which must
// not take the migration's connection with it. With mode auto, a TimescaleDB that is there but unusable gives
// plain PostgreSQL and a warning (returned) that says how to enable it.
func chooseVariant(ctx context.Context, pool *pgxpool.Pool, c *pgx.Conn, mode TimescaleMode) (Variant, string, error) {
	if mode == TimescaleOff {
		return Plain, "", nil
	}
	// A preloaded TimescaleDB registers its settings (timescaledb.disable_load, the loader's) in every session; reading
	// shared_preload_libraries itself needs pg_read_all_settings.
	var installed, available, preloaded bool
	if err := c.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'),
		EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'),
		current_setting('timescaledb.disable_load', true) IS NOT NULL`).
		Scan(&installed, &available, &preloaded); err != nil {
		return "", "", fmt.Errorf("migrate: look for the timescaledb extension: %w", err)
	}
	unusable := func(reason string) (Variant, string, error) {
		if mode == TimescaleOn {
			return "", "", fmt.Errorf("migrate: timescale is 'on' and cannot be used: %s: %w", reason, ErrTimescaleUnavailable)
		}
		return Plain, "TimescaleDB not used (plain PostgreSQL schema created): " + reason, nil
	}
	switch {
	case !available && !installed:
		if mode == TimescaleOn {
			return unusable("the timescaledb extension is not available on this server")
		}
		return Plain, "", nil
	case !preloaded:
		return unusable(notPreloaded)
	case installed:
		return Timescale, "", nil
	}
	probe, err := pgx.ConnectConfig(ctx, pool.Config().ConnConfig.Copy())
	if err != nil {
		return "", "", fmt.Errorf("migrate: connect to probe TimescaleDB: %w", err)
	}
	defer func() { _ = probe.Close(context.WithoutCancel(ctx)) }()
	if _, err := probe.Exec(ctx, "CREATE EXTENSION IF NOT EXISTS timescaledb"); err != nil {
		return unusable("CREATE EXTENSION timescaledb failed: " + err.Error())
	}
	return Timescale, "", nil
}

// Inspect reads what a database holds without changing it (for readers such as the plugin): whether the readings
// table exists, the schema version and variant.
func Inspect(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}) (info SchemaInfo, readingsExists bool, err error) {
	if err = q.QueryRow(ctx, "SELECT to_regclass('readings') IS NOT NULL").Scan(&readingsExists); err != nil {
		return info, false, fmt.Errorf("look for the readings table: %w", err)
	}
	var hasMigrations bool
	if err = q.QueryRow(ctx, "SELECT to_regclass('fieldline_schema_migrations') IS NOT NULL").Scan(&hasMigrations); err != nil {
		return info, readingsExists, fmt.Errorf("look for fieldline_schema_migrations: %w", err)
	}
	if hasMigrations {
		var variant *string
		if err = q.QueryRow(ctx, "SELECT coalesce(max(version), 0), (array_agg(variant ORDER BY version DESC))[1] FROM fieldline_schema_migrations").
			Scan(&info.Version, &variant); err != nil {
			return info, readingsExists, fmt.Errorf("read fieldline_schema_migrations: %w", err)
		}
		if variant != nil {
			info.Variant = Variant(*variant)
		}
	}
	if info.Variant == "" {
		var ts bool
		if err = q.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')").Scan(&ts); err != nil {
			return info, readingsExists, fmt.Errorf("look for the timescaledb extension: %w", err)
		}
		info.Variant = Plain
		if ts {
			info.Variant = Timescale
		}
	}
	return info, readingsExists, nil
}
