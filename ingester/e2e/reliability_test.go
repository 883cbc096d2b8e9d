package e2e

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fieldline-iot/fieldline/internal/ingesterproc"
	"github.com/fieldline-iot/fieldline/internal/testsvc"
)

// valueSubs subscribes <prefix>/+/+ in value format.
func (e *env) valueSubs() string {
	return fmt.Sprintf("    - {filter: '%s/+/+', qos: 1, template: '%s/{device}/{metric}', format: value}", e.prefix, e.prefix)
}

// messages makes n value messages on <prefix>/dev/temp with distinct values from offset.
func (e *env) messages(n, offset int) []pubMsg {
	out := make([]pubMsg, n)
	for i := range out {
		out[i] = pubMsg{e.prefix + "/dev/temp", []byte(fmt.Sprint(offset + i))}
	}
	return out
}

// TestTwoIngestersOneSpoolDir: a second ingester on a spool directory in use exits 2 naming spool.dir (it
// would overwrite the first one's batch files); two instances with different client ids and the default
// spool directory both run, each in its own directory.
func TestTwoIngestersOneSpoolDir(t *testing.T) {
	e := newEnv(t, false)
	first := e.start(e.config(e.valueSubs()))

	second := newEnv(t, false)
	second.spoolDir = e.spoolDir
	p := ingesterproc.Launch(t, ingesterBin, second.config(second.valueSubs()), os.Environ())
	select {
	case <-p.Done:
	case <-time.After(20 * time.Second):
		t.Fatal("the second ingester on a locked spool directory kept running")
	}
	var exit *exec.ExitError
	if !errors.As(p.ExitErr, &exit) || exit.ExitCode() != 2 || !strings.Contains(p.Logs.String(), "spool.dir") {
		t.Fatalf("second ingester: exit %v, want status 2 naming spool.dir; logs:\n%s", p.ExitErr, p.Logs.String())
	}
	if code, body := first.Readyz(); code != 200 {
		t.Fatalf("the first ingester suffered: /readyz %d %s", code, body)
	}

	// Default spool directories: one per client id.
	state := t.TempDir()
	var procs []*ingesterproc.Process
	for range 2 {
		o := newEnv(t, false)
		cfg := strings.Replace(o.config(o.valueSubs()), "spool:\n  dir: "+o.spoolDir+"\n", "", 1)
		if strings.Contains(cfg, "spool:") {
			t.Fatalf("config still sets the spool: %s", cfg)
		}
		procs = append(procs, ingesterproc.Start(t, ingesterBin, cfg, append(os.Environ(), "XDG_STATE_HOME="+state)))
	}
	dirs, _ := filepath.Glob(filepath.Join(state, "fieldline", "spool", "*", ".lock"))
	if len(dirs) != 2 {
		t.Errorf("default spool directories %v: want one per client id", dirs)
	}
	for _, p := range procs {
		if code, body := p.Readyz(); code != 200 {
			t.Errorf("/readyz %d %s", code, body)
		}
	}
}

// proxiedPostgres puts a TCP proxy in front of the test database, so PostgreSQL can "go away" for this test only.
func proxiedPostgres(t *testing.T, e *env) *testsvc.Proxy {
	t.Helper()
	u, err := url.Parse(e.pgURL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := testsvc.NewProxy(t, u.Host)
	u.Host = proxy.Addr
	e.pgURL = u.String()
	return proxy
}

// TestReadyOnlyOnceMigrated: while PostgreSQL cannot be reached at start, /readyz says 503 naming the schema;
// when it answers, the ingester migrates on its own (no message needed) and becomes ready.
func TestReadyOnlyOnceMigrated(t *testing.T) {
	e := newEnv(t, false)
	realURL := e.pgURL
	proxy := proxiedPostgres(t, e)
	p := ingesterproc.Launch(t, ingesterBin, e.config(e.valueSubs()), os.Environ())
	eventually(t, 20*time.Second, func() string {
		code, body := p.Readyz()
		if code == 503 && strings.Contains(body, "schema not migrated") {
			return ""
		}
		return fmt.Sprintf("/readyz %d %q, want 503 naming the schema", code, body)
	})
	proxy.Up()
	p.WaitReady(60 * time.Second)
	pgCount(t, realURL, "") // the schema exists
}

// TestStoreFailureDoesNotWedge: PostgreSQL down, so batches go to the spool; then the spool cannot be written
// either (its directory replaced by a file: ENOSPC or EIO in the field). The ingester acknowledges nothing it
// has not stored, says why on /readyz and in store_failures_total, and once the spool is writable again and
// PostgreSQL back, every message is acknowledged and stored. (The landed code stopped acknowledging for good
// after one failed batch, silently, with /readyz 200.)
func TestStoreFailureDoesNotWedge(t *testing.T) {
	e := newEnv(t, false)
	realURL := e.pgURL
	proxy := proxiedPostgres(t, e)
	proxy.Up()
	in := e.start(e.config(e.valueSubs()))
	pub := newPublisher(t, e.mqttURL)
	acked := func() float64 { return metric(in.Metrics(), "fieldline_ingester_messages_acked_total", "", "") }

	proxy.Down()
	pub.publishAll(e.messages(50, 0), 10)
	eventually(t, 30*time.Second, func() string {
		if n := acked(); n < 50 {
			return fmt.Sprintf("acked %v of 50 (spooled while PostgreSQL is down)", n)
		}
		return ""
	})

	spoolDir := filepath.Join(e.spoolDir, "postgres")
	if err := os.Rename(spoolDir, spoolDir+".away"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(spoolDir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	pub.publishAll(e.messages(50, 50), 10)
	eventually(t, 30*time.Second, func() string {
		code, body := in.Readyz()
		if code == 503 && strings.Contains(body, "cannot store batches") {
			return ""
		}
		return fmt.Sprintf("/readyz %d %q, want 503 naming the store failure", code, body)
	})
	if n := acked(); n != 50 {
		t.Fatalf("acked %v while nothing could store the messages, want 50", n)
	}
	if n := metric(in.Metrics(), "fieldline_ingester_store_failures_total", "sink", "postgres"); n == 0 {
		t.Error("store_failures_total did not count the failed tries")
	}

	if err := os.Remove(spoolDir); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(spoolDir+".away", spoolDir); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, func() string {
		if n := acked(); n < 100 {
			return fmt.Sprintf("acked %v of 100 after the spool was repaired", n)
		}
		return ""
	})
	proxy.Up()
	eventually(t, 60*time.Second, func() string {
		if rows, distinct := pgCount(t, realURL, ""); distinct < 100 {
			return fmt.Sprintf("PostgreSQL has %d rows, %d distinct of 100", rows, distinct)
		}
		return ""
	})
	in.WaitReady(30 * time.Second)
}

// TestShareGroupScaleDown: three ingesters share the load in one share group with persistent sessions; one is
// stopped for good. The broker keeps routing its share to its session, so the others miss those messages, until
// `fieldline-ingester -leave` with the departed member's configuration stores what was queued for it and ends
// its session: then every message is stored, and later ones all reach the remaining members.
func TestShareGroupScaleDown(t *testing.T) {
	broker := testsvc.PrivateMosquitto(t, testsvc.MosquittoOptions{})
	brokerURL := "tcp://127.0.0.1:" + broker.Port
	base := newEnv(t, false)
	var members []*env
	var procs []*ingesterproc.Process
	for range 3 {
		m := newEnv(t, false)
		m.mqttURL, m.pgURL, m.prefix = brokerURL, base.pgURL, base.prefix
		t.Cleanup(func() { dropSession(brokerURL, m.clientID) })
		subs := fmt.Sprintf("    - {filter: '%s/+/+', share_group: fieldline, qos: 1, template: '%s/{device}/{metric}', format: value}", m.prefix, m.prefix)
		members = append(members, m)
		procs = append(procs, m.start(m.config(subs)))
	}
	pub := newPublisher(t, brokerURL)
	stored := func(want int64) func() string {
		return func() string {
			if _, distinct := pgCount(t, base.pgURL, ""); distinct < want {
				return fmt.Sprintf("%d of %d distinct readings stored", distinct, want)
			}
			return ""
		}
	}
	pub.publishAll(base.messages(60, 0), 10)
	eventually(t, 30*time.Second, stored(60))

	gone := members[2]
	procs[2].Stop(syscall.SIGTERM)
	pub.publishAll(base.messages(60, 60), 10)
	time.Sleep(2 * time.Second)
	_, distinct := pgCount(t, base.pgURL, "")
	t.Logf("with one member stopped, the other two stored %d of 120 (the broker queues the rest for the stopped session)", distinct)

	subs := fmt.Sprintf("    - {filter: '%s/+/+', share_group: fieldline, qos: 1, template: '%s/{device}/{metric}', format: value}", gone.prefix, gone.prefix)
	leave := ingesterproc.Launch(t, ingesterBin, gone.config(subs), os.Environ(), "-leave")
	select {
	case <-leave.Done:
	case <-time.After(60 * time.Second):
		t.Fatal("fieldline-ingester -leave did not finish")
	}
	if leave.ExitErr != nil || !strings.Contains(leave.Logs.String(), "persistent session ended") {
		t.Fatalf("-leave: %v\n%s", leave.ExitErr, leave.Logs.String())
	}
	eventually(t, 30*time.Second, stored(120))

	pub.publishAll(base.messages(60, 120), 10)
	eventually(t, 30*time.Second, stored(180))
	if rows, distinct := pgCount(t, base.pgURL, ""); rows != distinct {
		t.Logf("%d rows for %d readings (at-least-once: a redelivery is a duplicate, never a loss)", rows, distinct)
	}
}

// TestBrokerPasswordNotLogged: a broker URL with a password in it (tcp://user:pass@host) is logged and reported
// with the password replaced, on every connection attempt.
func TestBrokerPasswordNotLogged(t *testing.T) {
	e := newEnv(t, false)
	e.mqttURL = "tcp://fieldline:Broker-Secret-42@" + testsvc.FreeAddr(t) // nothing listens: attempts are logged
	p := ingesterproc.Launch(t, ingesterBin, e.config(e.valueSubs()), os.Environ())
	eventually(t, 20*time.Second, func() string {
		if !strings.Contains(p.Logs.String(), "MQTT connect failed") {
			return "no connection attempt logged yet"
		}
		return ""
	})
	logs := p.Logs.String()
	if strings.Contains(logs, "Broker-Secret-42") {
		t.Fatalf("the broker password is in the logs:\n%s", logs)
	}
	if !strings.Contains(logs, "fieldline:xxxxx@") {
		t.Errorf("the logs do not name the broker (redacted):\n%s", logs)
	}
}
