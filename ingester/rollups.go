package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fieldline-iot/fieldline/internal/redact"
	"github.com/fieldline-iot/fieldline/internal/store"
	"github.com/fieldline-iot/fieldline/internal/tablemap"
)

const rollupsUsage = `usage: fieldline-ingester rollups install|remove -table '<mapping JSON>' [-postgres-url URL] [-grant role,...]

Installs Fieldline's rollups (1 m, 5 m, 1 h and the series catalogue) on a table you already have, or removes
them. The mapping is the data source's postgres.table, e.g.
  '{"name":"readings","timeColumn":"ts","valueColumn":"value","topicColumn":"topic","topicTemplate":"{device}/{metric}/{sensor}"}'
A trigger on the table keeps the rollups for every INSERT or COPY; the data source reads them for aggregated
queries once installed for the same mapping. The password comes from PGPASSWORD or the URL.
`

// runRollups is `fieldline-ingester rollups …` (exit status 0, 1 on a database error, 2 on a usage error).
func runRollups(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) == 0 || (args[0] != "install" && args[0] != "remove") {
		fmt.Fprint(stderr, rollupsUsage)
		return 2
	}
	action := args[0]
	fs := flag.NewFlagSet("fieldline-ingester rollups "+action, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, rollupsUsage); fs.PrintDefaults() }
	pgURL := getenv("FIELDLINE_POSTGRES_URL")
	if pgURL == "" {
		pgURL = "postgres://fieldline@127.0.0.1:5432/fieldline"
	}
	fs.StringVar(&pgURL, "postgres-url", pgURL, "PostgreSQL URL (default $FIELDLINE_POSTGRES_URL)")
	mapping := fs.String("table", "", "the table mapping, as the data source's jsonData.postgres.table (JSON)")
	grant := fs.String("grant", "", "comma-separated roles that may SELECT the rollups (fieldline_reader is granted when it exists)")
	timeout := fs.Duration("timeout", 30*time.Minute, "give up after this long (building the rollups reads the whole table)")
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *mapping == "" {
		fmt.Fprintln(stderr, "fieldline-ingester rollups: -table is required")
		return 2
	}
	t, _, err := tablemap.ParseJSON([]byte(*mapping))
	if err != nil {
		fmt.Fprintln(stderr, "fieldline-ingester rollups:", err)
		return 2
	}
	var roles []string
	for _, r := range strings.Split(*grant, ",") {
		if r = strings.TrimSpace(r); r != "" {
			roles = append(roles, r)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	pool, err := pgxpool.New(ctx, pgURL)
	if err != nil {
		fmt.Fprintln(stderr, "fieldline-ingester rollups: postgres-url:", redactURL(err.Error(), pgURL))
		return 2
	}
	defer pool.Close()
	start := time.Now()
	if action == "remove" {
		if err := store.RemoveTableRollups(ctx, pool, t); err != nil {
			fmt.Fprintln(stderr, "fieldline-ingester rollups:", redactURL(err.Error(), pgURL))
			return 1
		}
		fmt.Fprintf(stdout, "removed the rollups of %s\n", t.Name)
		return 0
	}
	r, rows, err := store.InstallTableRollups(ctx, pool, t, roles)
	if err != nil {
		fmt.Fprintln(stderr, "fieldline-ingester rollups:", redactURL(err.Error(), pgURL))
		return 1
	}
	names := []string{}
	for _, l := range r.Levels {
		names = append(names, l.Table)
	}
	fmt.Fprintf(stdout, "installed rollups on %s: %s and %s, trigger fieldline_rollup; %d rows rolled up in %s\n",
		t.Name, strings.Join(names, ", "), r.Series, rows, time.Since(start).Round(time.Millisecond))
	return 0
}

// redactURL keeps the URL's password out of a message (internal/redact).
func redactURL(msg, raw string) string {
	pw := ""
	if u, err := url.Parse(raw); err == nil && u.User != nil {
		pw, _ = u.User.Password()
	}
	return redact.NewReplacer(map[string]string{"password": pw}).Replace(msg)
}
