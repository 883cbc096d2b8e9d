package plugin

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"

	"github.com/fieldline-iot/fieldline/internal/store"
)

// Attacks a Viewer can make with code SQL (issue: "A Viewer cannot hurt other users, the ingester or the
// hosts"), each run against the real PostgreSQL. They failed on the plugin before code SQL got a pool of its own.

func codeQuery(t *testing.T, d *Datasource, refID, sql string) backend.DataResponse {
	t.Helper()
	return runOne(t, d, dq(t, refID, map[string]any{"source": "sql", "mode": "code", "rawSql": sql, "format": "table"},
		base, base.Add(2*time.Hour), time.Minute))
}

// TestCodeSQLCannotPoisonBuilderStatements: pgx names its cached statements after the SQL text, which every
// frame shows (ExecutedQueryString). A code query that DEALLOCATEs that name and PREPAREs its own under it used
// to make every later builder query of every user on that connection return the attacker's value.
func TestCodeSQLCannotPoisonBuilderStatements(t *testing.T) {
	pgURL, _ := newPostgres(t, dataset())
	d := newDS(t, settingsFor(t, pgURL, nil, map[string]any{"postgres": map[string]any{"maxConns": 2}}))
	builder := dq(t, "B", map[string]any{"source": "sql", "mode": "builder", "metric": "temperature", "device": "pico", "sensor": "dht22"},
		base, base.Add(2*time.Hour), time.Minute)
	first := runOne(t, d, builder)
	if first.Error != nil || len(first.Frames) == 0 {
		t.Fatalf("builder: %v", first.Error)
	}
	sql := first.Frames[0].Meta.ExecutedQueryString
	digest := sha256.Sum256([]byte(sql))
	name := "stmtcache_" + hex.EncodeToString(digest[:24])
	attack := fmt.Sprintf(`DO $attack$ BEGIN
  EXECUTE 'DEALLOCATE ALL';
  EXECUTE %s;
END $attack$`, "'PREPARE "+name+" AS SELECT t, d, s, 666::float8 FROM (' || "+dollarQuote(sql)+" || ') q(t, d, s, v)'")
	for i := range 6 { // every pooled connection
		r := codeQuery(t, d, fmt.Sprintf("A%d", i), attack)
		if r.Error != nil {
			t.Logf("attack query: %v", r.Error)
		}
	}
	for i := range 20 {
		r := runOne(t, d, builder)
		if r.Error != nil {
			t.Fatalf("builder query %d after the attack failed: %v", i, r.Error)
		}
		for _, f := range r.Frames {
			for j := 0; j < f.Rows(); j++ {
				if v, _ := f.Fields[1].NullableFloatAt(j); v != nil && *v == 666 {
					t.Fatalf("builder query %d returned the attacker's value 666", i)
				}
			}
		}
	}
}

func dollarQuote(s string) string { return "$q$" + s + "$q$" }

// TestCodeSQLLeavesNoSessionState: an advisory lock a code query takes (here the ingester's migration lock)
// is released when the query ends: the ingester's store.Migrate, which takes it, still runs.
func TestCodeSQLLeavesNoSessionState(t *testing.T) {
	pgURL, pool := newPostgres(t, dataset())
	d := newDS(t, settingsFor(t, pgURL, nil, map[string]any{"postgres": map[string]any{"maxConns": 1}}))
	const migrationLock = 0x6669656c646c696e // store.migrationLockKey
	for _, q := range []string{
		fmt.Sprintf("SELECT pg_advisory_lock(%d)", migrationLock),
		"SELECT 1 FROM pg_prepared_statements", // a harmless statement after it, on the same connection
	} {
		if r := codeQuery(t, d, "L", q); r.Error != nil {
			t.Fatalf("%s: %v", q, r.Error)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := store.Migrate(ctx, pool, store.TimescaleAuto); err != nil {
		t.Fatalf("the ingester's migration is blocked by a Viewer's advisory lock: %v", err)
	}
	// Prepared statements and settings do not survive either (DISCARD ALL between code queries).
	if r := codeQuery(t, d, "P", "DO $$ BEGIN EXECUTE 'PREPARE viewer_stmt AS SELECT 1'; END $$"); r.Error != nil {
		t.Fatal(r.Error)
	}
	r := codeQuery(t, d, "C", "SELECT count(*)::float8 AS n FROM pg_prepared_statements WHERE name = 'viewer_stmt'")
	if r.Error != nil {
		t.Fatal(r.Error)
	}
	if n, _ := r.Frames[0].Fields[0].NullableFloatAt(0); n == nil || *n != 0 {
		t.Errorf("a prepared statement of an earlier code query is still there (%v)", n)
	}
}

// TestCodeSQLByteBudget: `SELECT repeat('x', 300000000)` used to be read whole (peak RSS 1.7 GB). Now the
// query fails past maxResponseBytes with an error naming the setting, and the process stays small. The query
// runs in a child process so that its peak RSS (VmHWM) is its own.
func TestCodeSQLByteBudget(t *testing.T) {
	if os.Getenv("FIELDLINE_BYTE_BUDGET_CHILD") == "1" {
		pgURL, _ := newPostgres(t, nil)
		d := newDS(t, settingsFor(t, pgURL, nil, nil))
		r := codeQuery(t, d, "Big", "SELECT now() AS time, repeat('x', 300000000) AS v")
		fmt.Printf("\nRESULT err=%q hwm_kb=%d\n", fmt.Sprint(r.Error), vmHWM(t))
		return
	}
	newPostgres(t, nil) // skip or fail like the others when PostgreSQL is missing
	cmd := exec.Command(os.Args[0], "-test.run=^TestCodeSQLByteBudget$", "-test.v")
	cmd.Env = append(os.Environ(), "FIELDLINE_BYTE_BUDGET_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	var errMsg string
	var hwm int64
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "RESULT err="); ok {
			q, tail, _ := strings.Cut(rest, " hwm_kb=")
			errMsg, _ = strconv.Unquote(q)
			hwm, _ = strconv.ParseInt(tail, 10, 64)
		}
	}
	t.Logf("300 MB value: error %q, peak RSS %d MiB", errMsg, hwm/1024)
	if !strings.Contains(errMsg, "maxResponseBytes") {
		t.Errorf("want an error naming maxResponseBytes, got %q", errMsg)
	}
	if hwm == 0 || hwm > 400*1024 {
		t.Errorf("peak RSS %d KiB: the response was not bounded", hwm)
	}
}

func vmHWM(t *testing.T) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skip("no /proc/self/status")
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return n
		}
	}
	return 0
}

// TestBytesInFlightBound: code queries of one instance wait for each other's budgets (maxBytesInFlight) and
// give up with a clear error when their request ends first.
func TestBytesInFlightBound(t *testing.T) {
	b := newBudgets(1<<20, 2<<20)
	_, rel1, err := b.acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	_, rel2, err := b.acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, _, err := b.acquire(ctx); err == nil || !strings.Contains(err.Error(), "maxBytesInFlight") {
		t.Fatalf("third query past the bound: %v", err)
	}
	rel1()
	_, rel3, err := b.acquire(context.Background())
	if err != nil {
		t.Fatalf("after a release: %v", err)
	}
	rel2()
	rel3()
}

// TestRedactionIsNoOracle: the database's reply to a Viewer's query is passed on as it is, so a guess that
// equals the data source's password gets the same answer as any other guess (it used to come back
// "[redacted]", confirming the guess); errors of our own making are still redacted.
func TestRedactionIsNoOracle(t *testing.T) {
	pgURL, _ := newPostgres(t, nil)
	s := settingsFor(t, pgURL, nil, nil)
	password := s.DecryptedSecureJSONData["postgresPassword"]
	d := newDS(t, s)
	answer := func(guess string) string {
		r := codeQuery(t, d, "G", "SELECT ('"+guess+"')::int AS n")
		if r.Error == nil {
			t.Fatalf("guess %q: no error", guess)
		}
		return strings.ReplaceAll(r.Error.Error(), guess, "<guess>")
	}
	right, wrong := answer(password), answer("not-the-password")
	if right != wrong {
		t.Fatalf("the answer tells the password from another guess:\n right: %s\n wrong: %s", right, wrong)
	}
	// A connection error carrying the secret is still redacted.
	if got := d.errorResponse(context.Background(), "X", fmt.Errorf("dial: %s", password)).Error.Error(); strings.Contains(got, password) {
		t.Errorf("plugin error not redacted: %s", got)
	}
}

// TestCredentialsInTheWrongField: a URL with a password pasted into postgres.host (or mqtt.url, influx.url)
// is refused with an error that names the field and does not echo the value, in health and in every query.
func TestCredentialsInTheWrongField(t *testing.T) {
	const secret = "Pasted-Secret-77"
	for field, jd := range map[string]string{
		"postgres.host":     `{"postgres":{"host":"postgres://admin:` + secret + `@127.0.0.1:5432/x","database":"x","user":"u"}}`,
		"postgres.user":     `{"postgres":{"host":"127.0.0.1:5432","database":"x","user":"admin:` + secret + `"}}`,
		"postgres.database": `{"postgres":{"host":"127.0.0.1:5432","database":"postgres://admin:` + secret + `@127.0.0.1/x","user":"u"}}`,
		"mqtt.url":          `{"mqtt":{"url":"tcp://user:` + secret + `@127.0.0.1:1883"}}`,
		"influx.url":        `{"influx":{"url":"http://user:` + secret + `@127.0.0.1:8086","bucket":"b"}}`,
	} {
		d := newDS(t, backend.DataSourceInstanceSettings{UID: "x", JSONData: []byte(jd)})
		h, _ := d.CheckHealth(context.Background(), &backend.CheckHealthRequest{})
		q := codeQuery(t, d, "A", "SELECT 1")
		for what, msg := range map[string]string{"health": h.Message, "query error": fmt.Sprint(q.Error)} {
			if strings.Contains(msg, secret) || !strings.Contains(msg, field) {
				t.Errorf("%s: %s %q: want the field named and the value not shown", field, what, msg)
			}
		}
	}
}

// TestTableFormatKeepsNotices: the row-limit notice reaches a table-format code query (it was dropped).
func TestTableFormatKeepsNotices(t *testing.T) {
	pgURL, _ := newPostgres(t, dataset())
	d := newDS(t, settingsFor(t, pgURL, nil, map[string]any{"rowLimit": 3}))
	r := codeQuery(t, d, "T", "SELECT time, value FROM readings ORDER BY time LIMIT 10")
	if r.Error != nil || len(r.Frames) != 1 {
		t.Fatalf("%v", r.Error)
	}
	f := r.Frames[0]
	if f.Rows() != 3 || f.Meta == nil || len(f.Meta.Notices) == 0 || !strings.Contains(f.Meta.Notices[0].Text, "limit") {
		t.Fatalf("rows %d, meta %+v: want 3 rows and the row-limit notice", f.Rows(), f.Meta)
	}
}
