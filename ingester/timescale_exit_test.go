package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/fieldline-iot/fieldline/internal/testsvc"
)

// timescale: on against a server that cannot use TimescaleDB is a configuration error: exit status 2 with the
// reason, not an ingester that spools forever.
func TestTimescaleOnWithoutTimescaleExitsTwo(t *testing.T) {
	dbURL := testsvc.NewPostgresDB(t)
	ctx := context.Background()
	c, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	var usable bool
	err = c.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb')
		AND current_setting('timescaledb.disable_load', true) IS NOT NULL`).Scan(&usable)
	c.Close(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if usable {
		t.Skip("this server can use TimescaleDB")
	}
	env := map[string]string{
		"FIELDLINE_MQTT_URL":     testsvc.MQTTURL(t),
		"FIELDLINE_POSTGRES_URL": dbURL,
		"FIELDLINE_TIMESCALE":    "on",
		"FIELDLINE_SPOOL_DIR":    t.TempDir(),
		"FIELDLINE_HTTP_ADDR":    "off",
	}
	var stderr bytes.Buffer
	if code := run(nil, func(k string) string { return env[k] }, &stderr); code != 2 {
		t.Fatalf("exit %d, want 2; log:\n%s", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), "timescale is 'on'") {
		t.Errorf("the log does not say why:\n%s", stderr.String())
	}
}
