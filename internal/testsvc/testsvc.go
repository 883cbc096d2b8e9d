// Package testsvc gives integration tests the real services started by scripts/services.sh
// (`go tool mage services:up`): PostgreSQL, Mosquitto and InfluxDB on loopback.
//
// Addresses come from environment variables (printed by `scripts/services.sh env`). When one is missing the
// test is skipped with a message, except under CI (CI=true), where a missing service fails the test: CI must
// never pass by skipping.
package testsvc

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fieldline-iot/fieldline/internal/redact"
)

const hint = "start the services with `go tool mage services:up` and load their addresses with `eval \"$(scripts/services.sh env)\"`"

// InCI reports whether the tests run under CI, where missing services are failures.
func InCI() bool { return os.Getenv("CI") == "true" }

// Env returns the value of an environment variable the test needs; see the package doc for missing values.
func Env(t testing.TB, key string) string {
	t.Helper()
	v, ok := os.LookupEnv(key)
	if !ok || v == "" {
		missing(t, key)
	}
	return v
}

// OptionalEnv returns a variable that may legitimately be empty (an InfluxDB 1.8 token), failing only when unset.
func OptionalEnv(t testing.TB, key string) string {
	t.Helper()
	v, ok := os.LookupEnv(key)
	if !ok {
		missing(t, key)
	}
	return v
}

func missing(t testing.TB, key string) {
	t.Helper()
	if InCI() {
		t.Fatalf("%s is not set and CI=true: integration services are required in CI (%s)", key, hint)
	}
	t.Skipf("%s is not set: skipping integration test (%s)", key, hint)
}

// RandomName returns prefix plus 12 random hex characters: safe as a database, bucket, topic or client id part.
func RandomName(prefix string) string {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return prefix + hex.EncodeToString(b[:])
}

// PostgresURL is the URL of the shared `fieldline` database.
func PostgresURL(t testing.TB) string { return Env(t, "FIELDLINE_TEST_POSTGRES_URL") }

// NewPostgresDB creates an empty database for this test (dropped at cleanup) and returns its URL.
func NewPostgresDB(t testing.TB) string {
	t.Helper()
	base := PostgresURL(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("connect to PostgreSQL %s: %v", redact.URL(base), err)
	}
	defer conn.Close(ctx)
	name := RandomName("fieldline_test_")
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Logf("drop test database %s: %v", name, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Logf("drop test database %s: %v", name, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("parse FIELDLINE_TEST_POSTGRES_URL: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

// RoleURL returns dbURL (a database from NewPostgresDB) reached as another role that services:up created:
// key FIELDLINE_TEST_POSTGRES_READER_URL (fieldline_reader, SELECT only) or FIELDLINE_TEST_POSTGRES_ADMIN_URL (a
// superuser).
func RoleURL(t testing.TB, key, dbURL string) string {
	t.Helper()
	role, err := url.Parse(Env(t, key))
	if err != nil {
		t.Fatalf("parse %s: %v", key, err)
	}
	db, err := url.Parse(dbURL)
	if err != nil {
		t.Fatalf("parse database URL: %v", err)
	}
	db.User = role.User
	return db.String()
}

// MQTTURL is the broker URL (tcp://host:port).
func MQTTURL(t testing.TB) string { return Env(t, "FIELDLINE_TEST_MQTT_URL") }

// Influx addresses one InfluxDB bucket through the v2 API.
type Influx struct {
	URL, Token, Org, Bucket string
}

// InfluxServer is the shared InfluxDB with its default bucket.
func InfluxServer(t testing.TB) Influx {
	t.Helper()
	return Influx{
		URL:    Env(t, "FIELDLINE_TEST_INFLUX_URL"),
		Token:  OptionalEnv(t, "FIELDLINE_TEST_INFLUX_TOKEN"),
		Org:    Env(t, "FIELDLINE_TEST_INFLUX_ORG"),
		Bucket: Env(t, "FIELDLINE_TEST_INFLUX_BUCKET"),
	}
}

// NewInfluxBucket creates a fresh bucket for this test (an InfluxDB 1.8 database through its v1 query
// endpoint, which the v2 API addresses as a bucket), dropped at cleanup.
func NewInfluxBucket(t testing.TB) Influx {
	t.Helper()
	srv := InfluxServer(t)
	name := RandomName("fieldline_test_")
	influxQL(t, srv, "CREATE DATABASE "+name)
	t.Cleanup(func() { influxQL(t, srv, "DROP DATABASE "+name) })
	srv.Bucket = name
	return srv
}

func influxQL(t testing.TB, srv Influx, q string) {
	t.Helper()
	influxQLWith(t, http.DefaultClient, srv, q)
}

func influxQLWith(t testing.TB, hc *http.Client, srv Influx, q string) {
	t.Helper()
	form := url.Values{"q": {q}}
	req, err := http.NewRequest(http.MethodPost, strings.TrimRight(srv.URL, "/")+"/query", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatalf("influx query %q: %v", q, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if srv.Token != "" {
		req.Header.Set("Authorization", "Token "+srv.Token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("influx query %q: %v", q, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		t.Fatalf("influx query %q: HTTP %s: %s", q, resp.Status, body)
	}
	// InfluxQL reports a failed statement with 200 and {"results":[{"error":"…"}]}.
	var r struct {
		Results []struct {
			Error string `json:"error"`
		} `json:"results"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("influx query %q: %v: %s", q, err, body)
	}
	for _, res := range r.Results {
		if res.Error != "" {
			t.Fatalf("influx query %q: %s", q, res.Error)
		}
	}
}

// Services runs scripts/services.sh (from FIELDLINE_SERVICES) with args, for fault tests that stop and start
// the real services.
func Services(t testing.TB, args ...string) {
	t.Helper()
	script := Env(t, "FIELDLINE_SERVICES")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "bash", append([]string{script}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("services %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}
