package main

import (
	"bytes"
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/fieldline-iot/fieldline/internal/testsvc"
)

const reportMapping = `{"name":"readings","timeColumn":"ts","valueColumn":"value","topicColumn":"topic","topicTemplate":"{device}/{metric}/{sensor}"}`

// TestRollupsCommand: `fieldline-ingester rollups install|remove` on the first report's table: usage errors exit 2
// and say what is wrong, a wrong password is not echoed, install builds the rollups from the rows the table has,
// remove drops them.
func TestRollupsCommand(t *testing.T) {
	noEnv := func(string) string { return "" }
	for _, args := range [][]string{
		nil, {"frobnicate"}, {"install"}, {"install", "-table", "{"}, {"install", "-table", `{"name":"readings","extra":1}`},
		{"install", "-table", `{"name":"readings; DROP TABLE x","timeColumn":"ts","valueColumn":"value","deviceColumn":"d","metricName":"m"}`},
	} {
		var out, errOut bytes.Buffer
		if code := runRollups(args, noEnv, &out, &errOut); code != 2 || errOut.Len() == 0 {
			t.Errorf("%q: exit %d, stderr %q; want 2 and a message", args, code, errOut.String())
		}
	}
	dbURL := testsvc.NewPostgresDB(t)
	ctx := context.Background()
	c, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, `CREATE TABLE readings (ts timestamptz NOT NULL DEFAULT now(), topic text NOT NULL, value double precision NOT NULL);
INSERT INTO readings (ts, topic, value) SELECT now() - i * interval '10 seconds', 'pico/temperature/dht22', i FROM generate_series(1, 500) i;
INSERT INTO readings (topic, value) VALUES ('pico/status', 1);`); err != nil {
		t.Fatal(err)
	}

	u, _ := url.Parse(dbURL)
	u.User = url.UserPassword(u.User.Username(), "s3cret-wrong-pw")
	var out, errOut bytes.Buffer
	if code := runRollups([]string{"install", "-table", reportMapping, "-postgres-url", u.String()}, noEnv, &out, &errOut); code == 0 {
		t.Errorf("wrong password: exit 0")
	} else if strings.Contains(errOut.String(), "s3cret-wrong-pw") {
		t.Errorf("the password is echoed: %s", errOut.String())
	}

	out.Reset()
	errOut.Reset()
	env := func(k string) string {
		if k == "FIELDLINE_POSTGRES_URL" {
			return dbURL
		}
		return ""
	}
	if code := runRollups([]string{"install", "-table", reportMapping}, env, &out, &errOut); code != 0 {
		t.Fatalf("install: exit %d: %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "500 rows rolled up") {
		t.Errorf("install output %q, want 500 rows rolled up", out.String())
	}
	var rolled int
	if err := c.QueryRow(ctx, "SELECT sum(count) FROM readings_fl_1h").Scan(&rolled); err != nil || rolled != 500 {
		t.Errorf("readings_fl_1h counts %d (err %v), want 500", rolled, err)
	}
	if code := runRollups([]string{"remove", "-table", reportMapping}, env, &out, &errOut); code != 0 {
		t.Fatalf("remove: exit %d: %s", code, errOut.String())
	}
	var left bool
	if err := c.QueryRow(ctx, "SELECT to_regclass('readings_fl_1m') IS NOT NULL").Scan(&left); err != nil || left {
		t.Errorf("readings_fl_1m still exists after remove (err %v)", err)
	}
}
