package store

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fieldline-iot/fieldline/internal/tablemap"
)

// TableRollupRegistry lists the rollups installed on users' tables: the mapping they were built with (its
// Relation, so a data source with another mapping does not read them) and the prefix of their tables.
const TableRollupRegistry = "fieldline_table_rollups"

// TableRollups names the rollup set of a user's table: <table>_fl_1m, _fl_5m, _fl_1h and _fl_series in the
// table's schema, the trigger function <table>_fl_rollup and the trigger fieldline_rollup on the table.
type TableRollups struct {
	Levels   []Rollup // quoted, schema-qualified table names, widths as Rollups
	Series   string
	Function string
	Prefix   string // unquoted <table>_fl, the registry's key to the names above
}

// NamesFor returns the rollup names of a mapped table.
func NamesFor(t *tablemap.Table) TableRollups {
	return tableRollupsFromPrefix(t.Name + "_fl")
}

func tableRollupsFromPrefix(prefix string) TableRollups {
	schema, name := "", prefix
	if i := strings.LastIndexByte(prefix, '.'); i >= 0 {
		schema, name = tablemap.QuoteIdent(prefix[:i])+".", prefix[i+1:]
	}
	q := func(suffix string) string { return schema + tablemap.QuoteIdent(name+suffix) }
	r := TableRollups{Series: q("_series"), Function: q("_rollup"), Prefix: prefix}
	for _, l := range Rollups {
		r.Levels = append(r.Levels, Rollup{Table: q(strings.TrimPrefix(l.Table, "readings")), Width: l.Width})
	}
	return r
}

// For returns the rollup level of the set whose width divides interval, as RollupFor does for readings.
func (r TableRollups) For(interval time.Duration) *Rollup {
	l := RollupFor(interval)
	if l == nil {
		return nil
	}
	for i := range Rollups {
		if Rollups[i].Table == l.Table {
			return &r.Levels[i]
		}
	}
	return nil
}

// mergeStatement returns migration 10's merge (the statement fieldline_rollup_statement runs; migration is the
// migration's text) with the rollup
// tables of r and the mapped rows of t read from source: the trigger's transition table, or the table itself for
// the initial build. One text for both, and the same one readings' own trigger runs.
func mergeStatement(migration string, t *tablemap.Table, r TableRollups, source string) (string, error) {
	text := migration
	start := strings.Index(text, "    WITH m AS MATERIALIZED (")
	end := strings.Index(text, "    RETURN NULL;")
	if start < 0 || end < start {
		return "", errors.New("the rollup merge of migration 10 was not found")
	}
	stmt := strings.TrimSuffix(strings.TrimSpace(text[start:end]), ";")
	repl := []string{"FROM fieldline_rollup_rows", "FROM (" + t.Select(source) + ") AS fieldline_rollup_rows",
		"INTO readings_series", "INTO " + r.Series}
	for i, l := range Rollups {
		repl = append(repl, "INTO "+l.Table+" ", "INTO "+r.Levels[i].Table+" ")
	}
	for i := 0; i < len(repl); i += 2 {
		if !strings.Contains(stmt, repl[i]) {
			return "", fmt.Errorf("the rollup merge of migration 10 has no %q to replace", repl[i])
		}
	}
	if n := strings.Count(stmt, "INTO "); n != len(Rollups)+1 {
		return "", fmt.Errorf("the rollup merge of migration 10 writes %d tables, want %d", n, len(Rollups)+1)
	}
	return strings.NewReplacer(repl...).Replace(stmt), nil
}

var roleName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)

// InstallTableRollups installs Fieldline's rollups on a user's own table (the mapping t, as the data source has
// it): the three levels and the series catalogue as tables beside it, filled from every row the table holds, and a
// statement-level trigger that merges each INSERT or COPY into them in the writing transaction, exactly as
// readings' own trigger does (migrations 8 to 10). The table is locked against writes while the rollups are
// built, so no row is counted twice or missed. Installing again rebuilds them. Each role in grantTo, and
// fieldline_reader when it exists, may SELECT them. It returns the names and the rows read.
//
// On TimescaleDB the table may be a hypertable from TimescaleDB 2.18 on (statement-level triggers with
// transition tables); the rollup tables are plain tables.
func InstallTableRollups(ctx context.Context, pool *pgxpool.Pool, t *tablemap.Table, grantTo []string) (TableRollups, int64, error) {
	if err := t.Validate(); err != nil {
		return TableRollups{}, 0, fmt.Errorf("install rollups: %w", err)
	}
	for _, role := range grantTo {
		if !roleName.MatchString(role) {
			return TableRollups{}, 0, fmt.Errorf("install rollups: role %q: letters, digits and _ only", role)
		}
	}
	r := NamesFor(t)
	body, err := migrationFS.ReadFile("migrations/0010_rollup_shared_lock.sql")
	if err != nil {
		return r, 0, fmt.Errorf("read the rollup merge: %w", err)
	}
	migration := string(body)
	trigger, err := mergeStatement(migration, t, r, "fieldline_rollup_rows")
	if err != nil {
		return r, 0, err
	}
	backfill, err := mergeStatement(migration, t, r, t.QuotedName())
	if err != nil {
		return r, 0, err
	}
	lockFn := migration
	lockFn = lockFn[strings.Index(lockFn, "CREATE OR REPLACE FUNCTION fieldline_rollup_lock()"):]
	lockFn = lockFn[:strings.Index(lockFn, "END $$;")+len("END $$;")]

	var rows int64
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		var stmts []string
		stmts = append(stmts, "LOCK TABLE "+t.QuotedName()+" IN SHARE ROW EXCLUSIVE MODE")
		for _, l := range r.Levels {
			stmts = append(stmts, "CREATE TABLE IF NOT EXISTS "+l.Table+` (
    bucket    timestamptz      NOT NULL,
    device    text COLLATE "C" NOT NULL,
    metric    text COLLATE "C" NOT NULL,
    sensor    text COLLATE "C" NOT NULL DEFAULT '',
    count     bigint           NOT NULL,
    sum       double precision NOT NULL,
    min       double precision NOT NULL,
    max       double precision NOT NULL,
    last      double precision NOT NULL,
    last_time timestamptz      NOT NULL,
    PRIMARY KEY (metric, device, sensor, bucket))`,
				"CREATE INDEX IF NOT EXISTS "+tablemap.QuoteIdent(unquotedName(l.Table)+"_metric_bucket")+" ON "+l.Table+" (metric, bucket)",
				"TRUNCATE "+l.Table)
		}
		stmts = append(stmts,
			"CREATE TABLE IF NOT EXISTS "+r.Series+` (metric text COLLATE "C" NOT NULL, device text COLLATE "C" NOT NULL, sensor text COLLATE "C" NOT NULL DEFAULT '', PRIMARY KEY (metric, device, sensor))`,
			"TRUNCATE "+r.Series,
			lockFn,
			"CREATE OR REPLACE FUNCTION "+r.Function+"() RETURNS trigger LANGUAGE plpgsql AS $fl$\nBEGIN\n    PERFORM fieldline_rollup_lock();\n    "+trigger+";\n    RETURN NULL;\nEND $fl$",
			"DROP TRIGGER IF EXISTS fieldline_rollup ON "+t.QuotedName(),
			"CREATE TRIGGER fieldline_rollup AFTER INSERT ON "+t.QuotedName()+" REFERENCING NEW TABLE AS fieldline_rollup_rows FOR EACH STATEMENT EXECUTE FUNCTION "+r.Function+"()",
			"CREATE TABLE IF NOT EXISTS "+TableRollupRegistry+" (relation text PRIMARY KEY, rollup_prefix text NOT NULL, installed_at timestamptz NOT NULL DEFAULT now())",
		)
		for _, s := range stmts {
			if _, err := tx.Exec(ctx, s); err != nil {
				return fmt.Errorf("%s: %w", firstLine(s), err)
			}
		}
		if _, err := tx.Exec(ctx, backfill); err != nil {
			return fmt.Errorf("build the rollups from the table's rows: %w", err)
		}
		if err := tx.QueryRow(ctx, "SELECT coalesce(sum(count), 0)::bigint FROM "+r.Levels[0].Table).Scan(&rows); err != nil {
			return fmt.Errorf("count rolled-up rows: %w", err)
		}
		if _, err := tx.Exec(ctx, "INSERT INTO "+TableRollupRegistry+" (relation, rollup_prefix) VALUES ($1, $2) ON CONFLICT (relation) DO UPDATE SET rollup_prefix = EXCLUDED.rollup_prefix, installed_at = now()",
			t.Relation(), r.Prefix); err != nil {
			return fmt.Errorf("register the rollups: %w", err)
		}
		var reader bool
		if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'fieldline_reader')").Scan(&reader); err != nil {
			return err
		}
		if reader {
			grantTo = append(grantTo, "fieldline_reader")
		}
		for _, role := range grantTo {
			tables := []string{r.Series, TableRollupRegistry}
			for _, l := range r.Levels {
				tables = append(tables, l.Table)
			}
			if _, err := tx.Exec(ctx, "GRANT SELECT ON "+strings.Join(tables, ", ")+" TO "+tablemap.QuoteIdent(role)); err != nil {
				return fmt.Errorf("grant SELECT to %s: %w", role, err)
			}
		}
		return nil
	})
	if err != nil {
		return r, 0, fmt.Errorf("install rollups on %s: %w", t.Name, err)
	}
	return r, rows, nil
}

// RemoveTableRollups drops what InstallTableRollups made for t (the trigger, its function, the tables and the
// registry entry). The user's table and its rows are not touched.
func RemoveTableRollups(ctx context.Context, pool *pgxpool.Pool, t *tablemap.Table) error {
	r := NamesFor(t)
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		stmts := []string{"DROP TRIGGER IF EXISTS fieldline_rollup ON " + t.QuotedName(), "DROP FUNCTION IF EXISTS " + r.Function + "()", "DROP TABLE IF EXISTS " + r.Series}
		for _, l := range r.Levels {
			stmts = append(stmts, "DROP TABLE IF EXISTS "+l.Table)
		}
		for _, s := range stmts {
			if _, err := tx.Exec(ctx, s); err != nil {
				return fmt.Errorf("%s: %w", s, err)
			}
		}
		var registry bool
		if err := tx.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", TableRollupRegistry).Scan(&registry); err != nil {
			return err
		}
		if registry {
			if _, err := tx.Exec(ctx, "DELETE FROM "+TableRollupRegistry+" WHERE rollup_prefix = $1", r.Prefix); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("remove rollups from %s: %w", t.Name, err)
	}
	return nil
}

// LookupTableRollups returns the rollups installed for exactly this mapping (ok false when none are, or when
// the registry does not exist or cannot be read). q is a read-only transaction of the plugin.
func LookupTableRollups(ctx context.Context, q interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}, t *tablemap.Table) (TableRollups, bool, error) {
	r := NamesFor(t)
	var readable bool
	err := q.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL AND to_regclass($2) IS NOT NULL
		AND has_table_privilege(to_regclass($1), 'SELECT') AND has_table_privilege(to_regclass($2), 'SELECT')`,
		TableRollupRegistry, r.Levels[0].Table).Scan(&readable)
	if err != nil {
		return TableRollups{}, false, fmt.Errorf("look up the table's rollups: %w", err)
	}
	if !readable {
		return TableRollups{}, false, nil
	}
	var prefix string
	err = q.QueryRow(ctx, "SELECT rollup_prefix FROM "+TableRollupRegistry+" WHERE relation = $1", t.Relation()).Scan(&prefix)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return TableRollups{}, false, nil // installed for another mapping of the table
	case err != nil:
		return TableRollups{}, false, fmt.Errorf("look up the table's rollups: %w", err)
	case prefix != r.Prefix:
		return TableRollups{}, false, nil
	}
	return r, true, nil
}

func unquotedName(quoted string) string {
	if i := strings.LastIndex(quoted, `."`); i >= 0 {
		quoted = quoted[i+1:]
	}
	return strings.ReplaceAll(strings.Trim(quoted, `"`), `""`, `"`)
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
