package testsvc

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// postgresBin is where scripts/services.sh's PostgreSQL (Debian package, version FIELDLINE_PG_VERSION, default
// 15) keeps its programs.
func postgresBin() string {
	v := os.Getenv("FIELDLINE_PG_VERSION")
	if v == "" {
		v = "15"
	}
	return filepath.Join("/usr/lib/postgresql", v, "bin")
}

// Postgres is a private PostgreSQL server for one test with ssl=on and certificates made by the test: for what
// the shared server of scripts/services.sh (plain connections) cannot show. Plain (non-TLS) connections over TCP
// are refused.
type Postgres struct {
	Addr     string // 127.0.0.1:port
	Database string // owned by PasswordRole
	Certs    Certs  // CA, server certificate (localhost, 127.0.0.1, ServerName), client certificate of CertRole
	Files    CertFiles

	// PasswordRole logs in with its password (scram-sha-256) over TLS; CertRole with its client certificate
	// only (pg_hba method cert). Both can read every table (pg_read_all_data); PasswordRole owns Database.
	PasswordRole, Password, CertRole string
}

// URL addresses Database as role (password may be empty) with the given sslmode and no TLS file parameters.
func (p *Postgres) URL(role, password, sslMode string) string {
	u := url.URL{Scheme: "postgres", Host: p.Addr, Path: "/" + p.Database, RawQuery: "sslmode=" + sslMode}
	if password != "" {
		u.User = url.UserPassword(role, password)
	} else {
		u.User = url.User(role)
	}
	return u.String()
}

// PostgresOptions tune the private PostgreSQL.
type PostgresOptions struct {
	// CertRoleWrites makes CertRole a member of PasswordRole (the database's owner): it can migrate the schema
	// and write, as the ingester does. Otherwise it only reads.
	CertRoleWrites bool
}

// PrivatePostgres initialises a cluster in a temporary directory, starts it on a free loopback port and stops it
// at cleanup. PostgreSQL refuses to run as root: as root the cluster belongs to the OS user postgres (as the
// Debian package's cluster of scripts/services.sh does).
func PrivatePostgres(t testing.TB, o PostgresOptions) *Postgres {
	t.Helper()
	bin := postgresBin()
	if _, err := os.Stat(filepath.Join(bin, "postgres")); err != nil {
		if InCI() {
			t.Fatalf("PostgreSQL not installed in %s (scripts/services.sh installs it)", bin)
		}
		t.Skipf("PostgreSQL not installed in %s", bin)
	}
	run := runAs(t)
	// A short directory of its own: the Unix socket path must stay under about 100 bytes.
	dir, err := os.MkdirTemp("", "fl-pg")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	p := &Postgres{Addr: "127.0.0.1:" + freePort(t), Database: "fieldline", PasswordRole: "fieldline",
		Password: RandomName("pw"), CertRole: "fieldline_cert"}
	p.Certs = MakeCerts(t, p.CertRole)
	p.Files = p.Certs.Write(t, dir)
	data := filepath.Join(dir, "data")
	run.chown(dir, p.Files.ServerKey, p.Files.ServerCert, p.Files.CA)
	if out, err := run.cmd(filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync").CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	_, port, _ := net.SplitHostPort(p.Addr)
	conf := fmt.Sprintf("listen_addresses = '127.0.0.1'\nport = %s\nunix_socket_directories = '%s'\nssl = on\n"+
		"ssl_cert_file = '%s'\nssl_key_file = '%s'\nssl_ca_file = '%s'\nfsync = off\nlog_min_messages = warning\n",
		port, dir, p.Files.ServerCert, p.Files.ServerKey, p.Files.CA)
	appendFile(t, filepath.Join(data, "postgresql.conf"), conf)
	hba := "local all postgres trust\n" +
		"hostssl all " + p.CertRole + " 127.0.0.1/32 cert\n" +
		"hostssl all all 127.0.0.1/32 scram-sha-256\n"
	if err := os.WriteFile(filepath.Join(data, "pg_hba.conf"), []byte(hba), 0o600); err != nil {
		t.Fatal(err)
	}
	run.chown(filepath.Join(data, "pg_hba.conf"))
	logFile := filepath.Join(dir, "postgres.log")
	pgctl := func(args ...string) ([]byte, error) {
		return run.cmd(filepath.Join(bin, "pg_ctl"), append([]string{"-D", data}, args...)...).CombinedOutput()
	}
	if out, err := pgctl("-l", logFile, "-w", "-t", "60", "start"); err != nil {
		log, _ := os.ReadFile(logFile)
		t.Fatalf("start private PostgreSQL: %v\n%s\n%s", err, out, log)
	}
	t.Cleanup(func() { _, _ = pgctl("-m", "immediate", "-w", "stop") })

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, fmt.Sprintf("host=%s port=%s user=postgres dbname=postgres sslmode=disable", dir, port))
	if err != nil {
		t.Fatalf("connect to private PostgreSQL over its socket: %v", err)
	}
	defer conn.Close(ctx)
	setup := []string{
		"SET password_encryption = 'scram-sha-256'",
		fmt.Sprintf("CREATE ROLE %s LOGIN CREATEDB PASSWORD '%s'", p.PasswordRole, p.Password),
		"CREATE ROLE " + p.CertRole + " LOGIN",
		"GRANT pg_read_all_data TO " + p.PasswordRole + ", " + p.CertRole,
		"CREATE DATABASE " + p.Database + " OWNER " + p.PasswordRole,
	}
	if o.CertRoleWrites {
		setup = append(setup, "GRANT "+p.PasswordRole+" TO "+p.CertRole)
	}
	for _, q := range setup {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("set up private PostgreSQL: %v", err)
		}
	}
	return p
}

// InfluxTLS is a private InfluxDB 1.8 that serves HTTPS only, with certificates made by the test.
type InfluxTLS struct {
	Influx           // URL (https://127.0.0.1:port), Org, Bucket (a database that exists)
	Certs  Certs     // CA and server certificate (localhost, 127.0.0.1, ServerName)
	Files  CertFiles // the same as files
}

// PrivateInflux starts influxd (scripts/services.sh builds it into the Go bin directory, on PATH) with HTTPS on
// a free loopback port, waits until /ping answers and creates the bucket; it stops the server at cleanup.
func PrivateInflux(t testing.TB) *InfluxTLS {
	t.Helper()
	bin, err := exec.LookPath("influxd")
	if err != nil {
		if InCI() {
			t.Fatal("influxd not on PATH (scripts/services.sh builds it into $(go env GOPATH)/bin)")
		}
		t.Skip("influxd not on PATH")
	}
	dir := t.TempDir()
	c := MakeCerts(t, "")
	files := c.Write(t, dir)
	addr := FreeAddr(t)
	conf := fmt.Sprintf(`reporting-disabled = true
bind-address = %q
[meta]
  dir = %q
[data]
  dir = %q
  wal-dir = %q
  query-log-enabled = false
[http]
  enabled = true
  bind-address = %q
  auth-enabled = false
  log-enabled = false
  flux-enabled = true
  https-enabled = true
  https-certificate = %q
  https-private-key = %q
[logging]
  level = "warn"
[continuous_queries]
  enabled = false
[monitor]
  store-enabled = false
[subscriber]
  enabled = false
`, FreeAddr(t), filepath.Join(dir, "meta"), filepath.Join(dir, "data"), filepath.Join(dir, "wal"), addr, files.ServerCert, files.ServerKey)
	confFile := filepath.Join(dir, "influxdb.conf")
	if err := os.WriteFile(confFile, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	log := &SyncBuffer{}
	cmd := exec.Command(bin, "run", "-config", confFile)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatalf("start influxd: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(c.CA)
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	defer hc.CloseIdleConnections()
	srv := Influx{URL: "https://" + addr, Org: "fieldline", Bucket: "fieldline"}
	for i := 0; ; i++ {
		resp, err := hc.Get(srv.URL + "/ping")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusNoContent {
				break
			}
		}
		if i > 300 {
			t.Fatalf("private influxd did not answer /ping over HTTPS: %v\n%s", err, log.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	influxQLWith(t, hc, srv, "CREATE DATABASE "+srv.Bucket)
	return &InfluxTLS{Influx: srv, Certs: c, Files: files}
}

// runner runs the PostgreSQL programs as the OS user postgres when the test runs as root.
type runner struct {
	t        testing.TB
	uid, gid int // -1: as the current user
}

func runAs(t testing.TB) runner {
	t.Helper()
	if os.Geteuid() != 0 {
		return runner{t: t, uid: -1, gid: -1}
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		t.Fatalf("running as root, PostgreSQL needs the OS user postgres: %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return runner{t: t, uid: uid, gid: gid}
}

func (r runner) cmd(name string, args ...string) *exec.Cmd {
	if r.uid < 0 {
		return exec.Command(name, args...)
	}
	return exec.Command("runuser", append([]string{"-u", "postgres", "--", name}, args...)...)
}

func (r runner) chown(paths ...string) {
	if r.uid < 0 {
		return
	}
	for _, p := range paths {
		if err := os.Chown(p, r.uid, r.gid); err != nil {
			r.t.Fatal(err)
		}
	}
}

func appendFile(t testing.TB, path, text string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
}
