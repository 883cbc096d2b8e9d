package deploy

import (
	"context"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fieldline-iot/fieldline/internal/store"
	"github.com/fieldline-iot/fieldline/internal/testsvc"
)

// TestInitdbRoles runs deploy/initdb/10-fieldline-roles.sh as the timescaledb image does on an empty volume (as
// the bootstrap superuser, against a database the superuser owns), then the ingester's migrations as
// "fieldline": the database ends up owned by the ingester's role, which can migrate it, and fieldline_reader
// can read every table and write none. (The roles already exist in the test cluster, created by services:up
// with the same attributes, so the script's CREATE ROLE branch is skipped here; its ALTER and GRANT run.)
func TestInitdbRoles(t *testing.T) {
	if _, err := exec.LookPath("psql"); err != nil {
		t.Fatal("psql is not installed: services:up installs it")
	}
	ctx := context.Background()
	owned := testsvc.NewPostgresDB(t) // a name and a cleanup; recreated below as the superuser's
	adminURL := testsvc.RoleURL(t, "FIELDLINE_TEST_POSTGRES_ADMIN_URL", owned)
	u, _ := url.Parse(adminURL)
	db := strings.TrimPrefix(u.Path, "/")
	admin, err := pgx.Connect(ctx, strings.Replace(adminURL, "/"+db, "/postgres", 1))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "DROP DATABASE "+db+" WITH (FORCE)"); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+db+" OWNER "+u.User.Username()); err != nil {
		t.Fatal(err)
	}

	pw, _ := u.User.Password()
	script := filepath.Join(root, "deploy", "initdb", "10-fieldline-roles.sh")
	run := func(extra ...string) (string, error) {
		cmd := exec.Command("sh", script)
		cmd.Env = append(withoutPassword(), "PGHOST="+u.Hostname(), "PGPORT="+u.Port(), "PGPASSWORD="+pw,
			"POSTGRES_USER="+u.User.Username(), "POSTGRES_DB="+db)
		cmd.Env = append(cmd.Env, extra...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := run(); err == nil || !strings.Contains(out, "FIELDLINE_PG_PASSWORD") {
		t.Errorf("without passwords the script must stop naming the variable: %v\n%s", err, out)
	}
	if out, err := run("FIELDLINE_PG_PASSWORD=unused-here", "FIELDLINE_PG_READER_PASSWORD=unused-here"); err != nil {
		t.Fatalf("init script: %v\n%s", err, out)
	}
	var owner string
	if err := admin.QueryRow(ctx, "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = $1", db).Scan(&owner); err != nil || owner != "fieldline" {
		t.Fatalf("database owner %q (%v), want fieldline", owner, err)
	}

	// The ingester's role migrates the database it now owns.
	ingesterURL := *u
	ingester, _ := url.Parse(os.Getenv("FIELDLINE_TEST_POSTGRES_URL"))
	ingesterURL.User = ingester.User
	pool, err := pgxpool.New(ctx, ingesterURL.String())
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := store.Migrate(ctx, pool, store.TimescaleAuto); err != nil {
		t.Fatalf("migrate as fieldline: %v", err)
	}
	reader, err := pgx.Connect(ctx, testsvc.RoleURL(t, "FIELDLINE_TEST_POSTGRES_READER_URL", owned))
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close(ctx)
	rows, err := reader.Query(ctx, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || len(tables) < 4 {
		t.Fatalf("tables %v (%v)", tables, err)
	}
	for _, table := range tables {
		if _, err := reader.Exec(ctx, "SELECT * FROM "+pgx.Identifier{table}.Sanitize()+" LIMIT 1"); err != nil {
			t.Errorf("fieldline_reader cannot read %s: %v", table, err)
		}
		_, err := reader.Exec(ctx, "BEGIN READ WRITE; DELETE FROM "+pgx.Identifier{table}.Sanitize())
		_, _ = reader.Exec(ctx, "ROLLBACK")
		if err == nil || !strings.Contains(err.Error(), "permission denied") {
			t.Errorf("fieldline_reader may delete from %s: %v", table, err)
		}
	}
}
