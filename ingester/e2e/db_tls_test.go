package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	influxdb2 "github.com/influxdata/influxdb-client-go/v2"

	"github.com/fieldline-iot/fieldline/internal/ingesterproc"
	"github.com/fieldline-iot/fieldline/internal/testsvc"
	"github.com/fieldline-iot/fieldline/internal/tlsconf"
)

// TestDatabaseTLS runs the ingester against a private PostgreSQL with ssl=on (plain connections refused; the
// ingester logs in with a client certificate, no password) and a private InfluxDB serving HTTPS only, both with
// certificates made here, through the postgres.tls and influx.tls blocks; a message published to the shared
// broker is stored in both. A CA that did not sign the server's certificate keeps the ingester from becoming
// ready, and the log says why.
func TestDatabaseTLS(t *testing.T) {
	pg := testsvc.PrivatePostgres(t, testsvc.PostgresOptions{CertRoleWrites: true})
	ix := testsvc.PrivateInflux(t)
	pwURL := pg.URL(pg.PasswordRole, pg.Password, "verify-full") + "&sslrootcert=" + pg.Files.CA

	prefix, clientID := testsvc.RandomName("e2etls"), testsvc.RandomName("fieldline-ingester-test-")
	mqttURL := testsvc.MQTTURL(t)
	t.Cleanup(func() { dropSession(mqttURL, clientID) })
	config := func(clientID, pgCA string) string {
		return fmt.Sprintf(`mqtt:
  url: %s
  client_id: %s
  subscriptions:
    - filter: %s/+/+
      qos: 1
      template: "%s/{device}/{metric}"
postgres:
  url: %s
  tls:
    ca_file: %s
    cert_file: %s
    key_file: %s
    server_name: %s
influx:
  url: %s
  org: %s
  bucket: %s
  tls:
    ca_file: %s
spool:
  dir: %s
`, mqttURL, clientID, prefix, prefix, pg.URL(pg.CertRole, "", "verify-full"), pgCA, pg.Files.ClientCert, pg.Files.ClientKey,
			testsvc.ServerName, ix.URL, ix.Org, ix.Bucket, ix.Files.CA, t.TempDir())
	}
	in := ingesterproc.Start(t, ingesterBin, config(clientID, pg.Files.CA), os.Environ())
	pub := exec.Command("mosquitto_pub", "-L", strings.Replace(mqttURL, "tcp://", "mqtt://", 1)+"/"+prefix+"/pico/temperature", "-q", "1", "-m", "22.4")
	if out, err := pub.CombinedOutput(); err != nil {
		t.Fatalf("mosquitto_pub: %v %s", err, out)
	}
	eventually(t, 20*time.Second, func() string {
		if n, _ := pgCount(t, pwURL, "device = 'pico' AND value = 22.4"); n != 1 {
			return fmt.Sprintf("%d rows in PostgreSQL over TLS", n)
		}
		if n := influxTLSCount(t, ix); n != 1 {
			return fmt.Sprintf("%d points in InfluxDB over HTTPS", n)
		}
		return ""
	})
	in.Stop(9)

	// A CA that did not sign the server's certificate: never ready, and the log says why.
	other := testsvc.MakeCerts(t, "").Write(t, t.TempDir())
	bad := clientID + "-bad"
	t.Cleanup(func() { dropSession(mqttURL, bad) })
	path := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(path, []byte(config(bad, other.CA)), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(ingesterBin, "-config", path, "-http-addr", freeAddr(t))
	var logs syncBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second)
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	if !strings.Contains(logs.String(), "PostgreSQL not ready") || !strings.Contains(logs.String(), "unknown authority") {
		t.Errorf("the refused server certificate is not explained in the logs:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), "PRIVATE KEY") {
		t.Errorf("key material in the logs:\n%s", logs.String())
	}
}

// influxTLSCount counts the points of measurement temperature in the private InfluxDB (over HTTPS).
func influxTLSCount(t *testing.T, ix *testsvc.InfluxTLS) int64 {
	t.Helper()
	tc, err := tlsconf.Config(tlsconf.Options{CA: ix.Certs.CA})
	if err != nil {
		t.Fatal(err)
	}
	c := influxdb2.NewClientWithOptions(ix.URL, ix.Token, influxdb2.DefaultOptions().SetTLSConfig(tc))
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := c.QueryAPI(ix.Org).Query(ctx, fmt.Sprintf(`from(bucket: %q) |> range(start: 0) |> filter(fn: (r) => r._measurement == "temperature") |> group() |> count()`, ix.Bucket))
	if err != nil {
		t.Fatalf("flux over HTTPS: %v", err)
	}
	var n int64
	for res.Next() {
		if v, ok := res.Record().Value().(int64); ok {
			n += v
		}
	}
	return n
}
