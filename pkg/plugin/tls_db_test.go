package plugin

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	influxdb2 "github.com/influxdata/influxdb-client-go/v2"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fieldline-iot/fieldline/internal/store"
	"github.com/fieldline-iot/fieldline/internal/telemetry"
	"github.com/fieldline-iot/fieldline/internal/testsvc"
	"github.com/fieldline-iot/fieldline/internal/tlsconf"
)

// tlsRows are a few readings of the test dataset: enough for a builder query to return series.
func tlsRows() []telemetry.Reading { return dataset()[:720] }

// privateTLSPostgres is a private PostgreSQL with ssl=on (plain connections refused), the schema and some rows.
func privateTLSPostgres(t *testing.T) *testsvc.Postgres {
	t.Helper()
	p := testsvc.PrivatePostgres(t, testsvc.PostgresOptions{})
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, p.URL(p.PasswordRole, p.Password, "verify-full")+"&sslrootcert="+p.Files.CA)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	info, err := store.Migrate(ctx, pool, store.TimescaleAuto)
	if err != nil {
		t.Fatalf("migrate: %v", err)
	}
	if err := store.NewWriter(pool, info, false).Write(ctx, tlsRows()); err != nil {
		t.Fatalf("write: %v", err)
	}
	return p
}

// tlsCheck runs the health check, a builder query and a code query of source ("sql" or "flux") and returns nil
// when all three succeed, else the health message (or the query's error). No message may quote a secret.
func tlsCheck(t *testing.T, s backend.DataSourceInstanceSettings, source string) (ok bool, msg string) {
	t.Helper()
	defer func() {
		for k, v := range s.DecryptedSecureJSONData {
			for _, line := range strings.Split(v, "\n") {
				if len(line) > 16 && strings.Contains(msg, line) {
					t.Errorf("message quotes secureJsonData.%s: %s", k, msg)
				}
			}
		}
		if strings.Contains(msg, "BEGIN ") || strings.Contains(msg, "PRIVATE KEY") {
			t.Errorf("message quotes PEM: %s", msg)
		}
	}()
	inst, err := NewDatasource(context.Background(), s)
	if err != nil {
		return false, err.Error()
	}
	d := inst.(*Datasource)
	defer d.Dispose()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := d.CheckHealth(ctx, &backend.CheckHealthRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != backend.HealthStatusOk {
		return false, r.Message
	}
	code := map[string]any{"source": "sql", "mode": "code", "rawSql": "SELECT time, value FROM readings WHERE $__timeFilter(time) ORDER BY time LIMIT 10"}
	if source == "flux" {
		code = map[string]any{"source": "flux", "mode": "code", "flux": `from(bucket: v.bucket) |> range(start: v.timeRangeStart, stop: v.timeRangeStop) |> limit(n: 10)`}
	}
	for name, m := range map[string]map[string]any{
		"builder": {"source": source, "mode": "builder", "metric": testSeries[0].metric, "aggregation": "avg", "interval": "5m"},
		"code":    code,
	} {
		resp := runOne(t, d, dq(t, "A", m, base, base.Add(2*time.Hour), time.Minute))
		if resp.Error != nil {
			return false, name + " query: " + resp.Error.Error()
		}
		if len(resp.Frames) == 0 || resp.Frames[0].Rows() == 0 {
			t.Fatalf("%s %s query through TLS returned no rows", source, name)
		}
	}
	return true, r.Message
}

func pgTLSSettings(t *testing.T, p *testsvc.Postgres, role, password string, pg map[string]any, secure map[string]string) backend.DataSourceInstanceSettings {
	t.Helper()
	pg["host"], pg["database"], pg["user"] = p.Addr, p.Database, role
	j, err := json.Marshal(map[string]any{"postgres": pg})
	if err != nil {
		t.Fatal(err)
	}
	sec := map[string]string{}
	for k, v := range secure {
		sec[k] = v
	}
	if password != "" {
		sec["postgresPassword"] = password
	}
	return backend.DataSourceInstanceSettings{UID: "tls-pg", JSONData: j, DecryptedSecureJSONData: sec}
}

// TestPostgresTLS runs health, builder and code queries through a real PostgreSQL with ssl=on, certificates made
// here, and pg_hba refusing plain connections: custom CA, host-name checks, client-certificate login, sslmodes.
func TestPostgresTLS(t *testing.T) {
	t.Parallel()
	p := privateTLSPostgres(t)
	other := testsvc.MakeCerts(t, "")
	ca := string(p.Certs.CA)
	clientCert := map[string]string{"postgresTLSCACert": ca, "postgresTLSClientCert": string(p.Certs.ClientCert), "postgresTLSClientKey": string(p.Certs.ClientKey)}
	for _, c := range []struct {
		name    string
		role    string // "" : the password role
		pg      map[string]any
		secure  map[string]string
		wantOK  bool
		wantMsg string // part of the failure message
	}{
		{name: "verify-full, custom CA", pg: map[string]any{"sslMode": "verify-full"}, secure: map[string]string{"postgresTLSCACert": ca}, wantOK: true},
		{name: "verify-full, system roots", pg: map[string]any{"sslMode": "verify-full"}, wantMsg: "certificate signed by unknown authority"},
		{name: "verify-full, another CA", pg: map[string]any{"sslMode": "verify-full"}, secure: map[string]string{"postgresTLSCACert": string(other.CA)}, wantMsg: "unknown authority"},
		{name: "verify-full, wrong server name", pg: map[string]any{"sslMode": "verify-full", "tlsServerName": "wrong.fieldline.test"}, secure: map[string]string{"postgresTLSCACert": ca}, wantMsg: "wrong.fieldline.test"},
		{name: "verify-full, certificate's server name", pg: map[string]any{"sslMode": "verify-full", "tlsServerName": testsvc.ServerName}, secure: map[string]string{"postgresTLSCACert": ca}, wantOK: true},
		{name: "verify-ca, wrong server name", pg: map[string]any{"sslMode": "verify-ca", "tlsServerName": "wrong.fieldline.test"}, secure: map[string]string{"postgresTLSCACert": ca}, wantOK: true},
		{name: "verify-ca, another CA", pg: map[string]any{"sslMode": "verify-ca"}, secure: map[string]string{"postgresTLSCACert": string(other.CA)}, wantMsg: "unknown authority"},
		{name: "require, no CA: no verification", pg: map[string]any{"sslMode": "require"}, wantOK: true},
		{name: "require with a CA checks the chain", pg: map[string]any{"sslMode": "require"}, secure: map[string]string{"postgresTLSCACert": string(other.CA)}, wantMsg: "unknown authority"},
		// prefer falls back to a plain connection when TLS fails: a wrong CA must not end in an unchecked one.
		{name: "prefer, custom CA", pg: map[string]any{"sslMode": "prefer"}, secure: map[string]string{"postgresTLSCACert": ca}, wantOK: true},
		{name: "prefer, another CA", pg: map[string]any{"sslMode": "prefer"}, secure: map[string]string{"postgresTLSCACert": string(other.CA)}, wantMsg: "no encryption"},
		{name: "disable", pg: map[string]any{"sslMode": "disable"}, secure: map[string]string{"postgresTLSCACert": ca}, wantMsg: "no encryption"},
		{name: "client certificate", role: p.CertRole, pg: map[string]any{"sslMode": "verify-full"}, secure: clientCert, wantOK: true},
		{name: "client certificate missing", role: p.CertRole, pg: map[string]any{"sslMode": "verify-full"}, secure: map[string]string{"postgresTLSCACert": ca}, wantMsg: "certificate"},
		{name: "client certificate without key", role: p.CertRole, pg: map[string]any{"sslMode": "verify-full"},
			secure: map[string]string{"postgresTLSCACert": ca, "postgresTLSClientCert": string(p.Certs.ClientCert)}, wantMsg: "postgresTLSClientCert and postgresTLSClientKey must be set together"},
		{name: "client key of another certificate", role: p.CertRole, pg: map[string]any{"sslMode": "verify-full"},
			secure: map[string]string{"postgresTLSCACert": ca, "postgresTLSClientCert": string(p.Certs.ClientCert), "postgresTLSClientKey": string(other.ClientKey)}, wantMsg: "postgresTLSClientCert/postgresTLSClientKey: not a valid PEM"},
		{name: "CA not PEM", pg: map[string]any{"sslMode": "verify-full"}, secure: map[string]string{"postgresTLSCACert": "not a certificate " + p.Password}, wantMsg: "secureJsonData.postgresTLSCACert: no PEM certificate found"},
	} {
		t.Run(c.name, func(t *testing.T) {
			role, pw := c.role, ""
			if role == "" {
				role, pw = p.PasswordRole, p.Password
			}
			s := pgTLSSettings(t, p, role, pw, c.pg, c.secure)
			ok, msg := tlsCheck(t, s, "sql")
			if ok != c.wantOK || (!ok && !strings.Contains(msg, c.wantMsg)) {
				t.Fatalf("ok=%v %q, want ok=%v with %q", ok, msg, c.wantOK, c.wantMsg)
			}
			if strings.Contains(msg, p.Password) {
				t.Fatalf("message quotes the password: %s", msg)
			}
		})
	}
}

// TestPostgresTLSBudget: the byte budget of code SQL holds on a TLS connection too (pgx layers TLS over the
// counted connection).
func TestPostgresTLSBudget(t *testing.T) {
	t.Parallel()
	p := privateTLSPostgres(t)
	s := pgTLSSettings(t, p, p.PasswordRole, p.Password, map[string]any{"sslMode": "verify-full"}, map[string]string{"postgresTLSCACert": string(p.Certs.CA)})
	s.JSONData = []byte(strings.Replace(string(s.JSONData), "{", `{"maxResponseBytes":1048576,`, 1))
	d := newDS(t, s)
	resp := runOne(t, d, dq(t, "A", map[string]any{"source": "sql", "mode": "code", "format": "table",
		"rawSql": "SELECT repeat('x', 1000) AS s FROM generate_series(1, 5000)"}, base, base.Add(time.Hour), time.Minute))
	if resp.Error == nil || !strings.Contains(resp.Error.Error(), "maxResponseBytes") {
		t.Fatalf("want the budget error, got %v", resp.Error)
	}
	small := runOne(t, d, dq(t, "A", map[string]any{"source": "sql", "mode": "code", "format": "table", "rawSql": "SELECT 1 AS one"}, base, base.Add(time.Hour), time.Minute))
	if small.Error != nil {
		t.Fatalf("a small query after the refused one: %v", small.Error)
	}
}

// TestInfluxTLS runs health, builder and code queries through a real InfluxDB 1.8 that serves HTTPS only, with
// certificates made here.
func TestInfluxTLS(t *testing.T) {
	t.Parallel()
	srv := testsvc.PrivateInflux(t)
	tc, err := tlsconf.Config(tlsconf.Options{CA: srv.Certs.CA})
	if err != nil {
		t.Fatal(err)
	}
	c := influxdb2.NewClientWithOptions(srv.URL, srv.Token, influxdb2.DefaultOptions().SetTLSConfig(tc))
	defer c.Close()
	w := c.WriteAPIBlocking(srv.Org, srv.Bucket)
	for _, r := range tlsRows() {
		tags := map[string]string{"device": r.Device}
		if r.Sensor != "" {
			tags["sensor"] = r.Sensor
		}
		if err := w.WritePoint(context.Background(), influxdb2.NewPoint(r.Metric, tags, map[string]any{"value": r.Value}, r.Time)); err != nil {
			t.Fatalf("write: %v", err)
		}
	}
	other := testsvc.MakeCerts(t, "")
	ca := string(srv.Certs.CA)
	for _, c := range []struct {
		name    string
		influx  map[string]any
		secure  map[string]string
		wantOK  bool
		wantMsg string
	}{
		{name: "custom CA", secure: map[string]string{"influxTLSCACert": ca}, wantOK: true},
		{name: "custom CA, toggle on", influx: map[string]any{"tlsWithCACert": true}, secure: map[string]string{"influxTLSCACert": ca}, wantOK: true},
		{name: "system roots", wantMsg: "certificate signed by unknown authority"},
		{name: "another CA", secure: map[string]string{"influxTLSCACert": string(other.CA)}, wantMsg: "unknown authority"},
		{name: "skip verify", influx: map[string]any{"tlsSkipVerify": true}, wantOK: true},
		{name: "CA toggle off drops the saved CA", influx: map[string]any{"tlsWithCACert": false}, secure: map[string]string{"influxTLSCACert": ca}, wantMsg: "unknown authority"},
		{name: "wrong server name", influx: map[string]any{"tlsServerName": "wrong.fieldline.test"}, secure: map[string]string{"influxTLSCACert": ca}, wantMsg: "wrong.fieldline.test"},
		{name: "certificate's server name", influx: map[string]any{"tlsServerName": testsvc.ServerName}, secure: map[string]string{"influxTLSCACert": ca}, wantOK: true},
		{name: "client certificate sent", influx: map[string]any{"tlsAuth": true}, secure: map[string]string{"influxTLSCACert": ca,
			"influxTLSClientCert": string(srv.Certs.ClientCert), "influxTLSClientKey": string(srv.Certs.ClientKey)}, wantOK: true},
		{name: "client auth toggle off drops a broken pair", influx: map[string]any{"tlsAuth": false}, secure: map[string]string{"influxTLSCACert": ca,
			"influxTLSClientCert": string(srv.Certs.ClientCert), "influxTLSClientKey": string(other.ClientKey)}, wantOK: true},
		{name: "client key of another certificate", secure: map[string]string{"influxTLSCACert": ca,
			"influxTLSClientCert": string(srv.Certs.ClientCert), "influxTLSClientKey": string(other.ClientKey)}, wantMsg: "influxTLSClientCert/influxTLSClientKey: not a valid PEM"},
	} {
		t.Run(c.name, func(t *testing.T) {
			in := map[string]any{"url": srv.URL, "org": srv.Org, "bucket": srv.Bucket}
			for k, v := range c.influx {
				in[k] = v
			}
			j, err := json.Marshal(map[string]any{"influx": in})
			if err != nil {
				t.Fatal(err)
			}
			s := backend.DataSourceInstanceSettings{UID: "tls-influx", JSONData: j, DecryptedSecureJSONData: c.secure}
			ok, msg := tlsCheck(t, s, "flux")
			if ok != c.wantOK || (!ok && !strings.Contains(msg, c.wantMsg)) {
				t.Fatalf("ok=%v %q, want ok=%v with %q", ok, msg, c.wantOK, c.wantMsg)
			}
		})
	}
}
