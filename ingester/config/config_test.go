package config

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fieldline-iot/fieldline/internal/mqttconn"
	"github.com/fieldline-iot/fieldline/internal/testsvc"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestZeroConfiguration(t *testing.T) {
	cfg, err := Load(nil, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MQTT.URL != "tcp://127.0.0.1:1883" || !cfg.Postgres.Enabled || cfg.Influx.Enabled() {
		t.Errorf("defaults: %+v", cfg)
	}
	if !strings.Contains(cfg.Postgres.URL, "127.0.0.1:5432/fieldline") {
		t.Errorf("postgres default %q", cfg.Postgres.URL)
	}
	if len(cfg.MQTT.Subs) != 4 || cfg.MQTT.Subs[0].Template != "{device}/{metric}/{sensor}" || cfg.MQTT.Subs[1].Template != "iiot/{device}/{metric}" ||
		cfg.MQTT.Subs[2].Filter != "pico/status" || cfg.MQTT.Subs[2].ValueType != "text" {
		t.Errorf("default subscriptions %+v", cfg.MQTT.Subs)
	}
	// No two default filters match one topic: a broker delivers such a message once per matching subscription.
	for i, a := range cfg.MQTT.Subs {
		for _, b := range cfg.MQTT.Subs[i+1:] {
			for _, topic := range []string{"pico/status", "pico/temperature/dht22", "iiot/node1/temperature", "iiot/status"} {
				if mqttconn.Match(a.Filter, topic) && mqttconn.Match(b.Filter, topic) {
					t.Errorf("default filters %s and %s both match %s", a.Filter, b.Filter, topic)
				}
			}
		}
	}
}

func TestPrecedenceFileEnvFlags(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	yaml := `mqtt:
  url: tcp://file:1883
  client_id: from-file
  subscriptions:
    - filter: sensors/#
      qos: 1
      share_group: fieldline
      template: "sensors/{device}/{metric}"
      format: json
      json:
        time_field: ts
        fields:
          n1.t: {device: node1, metric: temperature}
influx:
  url: http://file:8086
  bucket: b
batch:
  max_rows: 100
  linger: 20ms
`
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load([]string{"-config", path, "-client-id", "from-flag"},
		env(map[string]string{"FIELDLINE_MQTT_URL": "tcp://env:1883", "FIELDLINE_MQTT_CLIENT_ID": "from-env", "FIELDLINE_INFLUX_TOKEN": "t0ken"}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MQTT.URL != "tcp://env:1883" {
		t.Errorf("env should override file: %s", cfg.MQTT.URL)
	}
	if cfg.MQTT.ClientID != "from-flag" {
		t.Errorf("flag should override env: %s", cfg.MQTT.ClientID)
	}
	if cfg.Influx.Token != "t0ken" || cfg.Influx.URL != "http://file:8086" {
		t.Errorf("influx %+v", cfg.Influx)
	}
	if cfg.Batch.MaxRows != 100 || cfg.Batch.Linger != 20*time.Millisecond {
		t.Errorf("batch %+v", cfg.Batch)
	}
	s := cfg.MQTT.Subs[0]
	if s.BrokerFilter() != "$share/fieldline/sensors/#" || s.JSON.Fields["n1.t"].Device != "node1" {
		t.Errorf("subscription %+v", s)
	}
	if _, err := cfg.NewDecoder(s); err != nil {
		t.Errorf("decoder: %v", err)
	}
}

func TestPostgresOffAndSampleFile(t *testing.T) {
	cfg, err := Load([]string{"-postgres-url", "off", "-influx-url", "http://127.0.0.1:8086"}, env(nil), io.Discard)
	if err != nil || cfg.Postgres.Enabled || !cfg.Influx.Enabled() {
		t.Fatalf("%+v %v", cfg, err)
	}
	// The documented sample must load as it is.
	if _, err := Load([]string{"-config", "../fieldline-ingester.sample.yaml"}, env(nil), io.Discard); err != nil {
		t.Fatalf("sample config: %v", err)
	}
}

// Every invalid setting gives one error that names its key.
func TestInvalidConfigurationNamesTheKey(t *testing.T) {
	cases := []struct {
		yaml, env, key string
	}{
		{"mqtt:\n  url: http://x\n", "", "mqtt.url"},
		{"mqtt:\n  client_id: \"\"\n", "", "mqtt.client_id"},
		{"mqtt:\n  subscriptions: []\n", "", "mqtt.subscriptions"},
		{"mqtt:\n  subscriptions:\n    - {filter: 'a/#/b', template: '{device}/{metric}'}\n", "", "mqtt.subscriptions[0].filter"},
		{"mqtt:\n  subscriptions:\n    - {filter: 'a/+', qos: 3, template: 'a/{device}'}\n", "", "mqtt.subscriptions[0].qos"},
		{"mqtt:\n  subscriptions:\n    - {filter: 'a/+', template: 'a/{nope}'}\n", "", "mqtt.subscriptions[0].template"},
		{"mqtt:\n  subscriptions:\n    - {filter: 'a/+', template: 'a/{device}', format: xml}\n", "", "mqtt.subscriptions[0].template"},
		{"mqtt:\n  subscriptions:\n    - {filter: '$share/g/a/+', template: 'a/{device}/{metric}'}\n", "", "mqtt.subscriptions[0].filter"},
		{"postgres:\n  url: mysql://x\n", "", "postgres.url"},
		{"postgres:\n  timescale: maybe\n", "", "postgres.timescale"},
		{"influx:\n  url: ftp://x\n", "", "influx.url"},
		{"batch:\n  max_rows: 0\n", "", "batch.max_rows"},
		{"spool:\n  max_bytes: 10\n", "", "spool.max_bytes"},
		{"log:\n  level: loud\n", "", "log.level"},
		{"mqtt:\n  tls:\n    cert_file: a.pem\n", "", "mqtt.tls"},
		{"postgres:\n  enabled: false\n", "", "postgres.enabled"},
		{"mqtt:\n  urll: tcp://x:1\n", "", "config"}, // unknown key: strict YAML
		{"", "FIELDLINE_BATCH_MAX_ROWS=lots", "FIELDLINE_BATCH_MAX_ROWS"},
		// A second document would be ignored silently: refused.
		{"mqtt:\n  client_id: a\n---\nmqtt:\n  client_id: b\n", "", "config"},
		// pgx cannot use it (bad port): exit 2 naming the key, not a sink error at start.
		{"postgres:\n  url: postgres://u:Secret-Pw@host:notaport/db\n", "", "postgres.url"},
		{"", "FIELDLINE_POSTGRES_URL=postgres://u:Secret-Pw@host:5432/db?sslmode=sometimes", "postgres.url"},
		{"mqtt:\n  url: tcp://user:Secret-Pw@\n", "", "mqtt.url"},
	}
	for _, c := range cases {
		path := filepath.Join(t.TempDir(), "c.yaml")
		if err := os.WriteFile(path, []byte(c.yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		e := map[string]string{}
		if k, v, ok := strings.Cut(c.env, "="); ok {
			e[k] = v
		}
		_, err := Load([]string{"-config", path}, env(e), io.Discard)
		var ce *Error
		if !errors.As(err, &ce) {
			t.Errorf("%q: error %v is not a *config.Error", c.yaml, err)
			continue
		}
		if ce.Key != c.key {
			t.Errorf("%q: key %q, want %q (%v)", c.yaml, ce.Key, c.key, err)
		}
		if strings.Contains(err.Error(), "Secret-Pw") {
			t.Errorf("%q: the error echoes the password: %v", c.yaml+c.env, err)
		}
	}
}

// TestDefaultSpoolDirPerClientID: instances with different client ids get different default spool directories
// (a share group scaled out on one host), and a client id cannot escape the spool base.
func TestDefaultSpoolDirPerClientID(t *testing.T) {
	t.Setenv("XDG_STATE_HOME", "/state")
	dirs := map[string]bool{}
	for _, id := range []string{"ingester-a", "ingester-b", "../../etc", "a/b"} {
		cfg, err := Load([]string{"-client-id", id}, env(nil), io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if filepath.Dir(cfg.Spool.Dir) != filepath.Join("/state", "fieldline", "spool") {
			t.Errorf("client id %q: spool dir %s is not directly under the spool base", id, cfg.Spool.Dir)
		}
		dirs[cfg.Spool.Dir] = true
	}
	if len(dirs) != 4 {
		t.Errorf("spool dirs %v: want one per client id", dirs)
	}
	cfg, err := Load([]string{"-client-id", "x", "-spool-dir", "/explicit"}, env(nil), io.Discard)
	if err != nil || cfg.Spool.Dir != "/explicit" {
		t.Errorf("an explicit spool dir wins: %q %v", cfg.Spool.Dir, err)
	}
}

// TestTLSBlocks: postgres.tls and influx.tls are validated like mqtt.tls (files read and parsed, cert and key
// together), errors name the key and quote no key material, and a valid block loads.
func TestTLSBlocks(t *testing.T) {
	dir := t.TempDir()
	files := testsvc.MakeCerts(t, "").Write(t, dir)
	other := testsvc.MakeCerts(t, "").Write(t, t.TempDir())
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	pg := func(url, tls string) string { return "postgres:\n  url: " + url + "\n  tls:\n" + tls }
	in := func(url, tls string) string { return "influx:\n  url: " + url + "\n  bucket: b\n  tls:\n" + tls }
	const full = "postgres://u@db:5432/f?sslmode=verify-full"
	for _, c := range []struct{ yaml, key string }{
		{pg(full, "    cert_file: "+files.ClientCert+"\n"), "postgres.tls"},
		{pg(full, "    ca_file: "+filepath.Join(dir, "missing.pem")+"\n"), "postgres.tls.ca_file"},
		{pg(full, "    ca_file: "+notPEM+"\n"), "postgres.tls.ca_file"},
		{pg(full, "    cert_file: "+files.ClientCert+"\n    key_file: "+other.ClientKey+"\n"), "postgres.tls.cert_file"},
		{pg("postgres://u@db:5432/f?sslmode=disable", "    ca_file: "+files.CA+"\n"), "postgres.tls"},
		{in("http://influx:8086", "    ca_file: "+files.CA+"\n"), "influx.tls"},
		{in("https://influx:8086", "    key_file: "+files.ClientKey+"\n"), "influx.tls"},
		{in("https://influx:8086", "    ca_file: "+notPEM+"\n"), "influx.tls.ca_file"},
		{"mqtt:\n  tls:\n    ca_file: " + notPEM + "\n", "mqtt.tls.ca_file"},
	} {
		path := filepath.Join(t.TempDir(), "c.yaml")
		if err := os.WriteFile(path, []byte(c.yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := Load([]string{"-config", path}, env(nil), io.Discard)
		var ce *Error
		if !errors.As(err, &ce) || ce.Key != c.key {
			t.Errorf("%q: error %v, want one naming %s", c.yaml, err, c.key)
			continue
		}
		if strings.Contains(err.Error(), "PRIVATE KEY") || strings.Contains(err.Error(), "BEGIN") {
			t.Errorf("%q: error quotes PEM: %v", c.yaml, err)
		}
	}
	path := filepath.Join(t.TempDir(), "c.yaml")
	ok := pg(full, "    ca_file: "+files.CA+"\n    cert_file: "+files.ClientCert+"\n    key_file: "+files.ClientKey+"\n    server_name: db.example\n") +
		in("https://influx:8086", "    ca_file: "+files.CA+"\n    insecure_skip_verify: true\n")
	if err := os.WriteFile(path, []byte(ok), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load([]string{"-config", path}, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Postgres.SSLMode() != "verify-full" || cfg.Postgres.TLS.ServerName != "db.example" || !cfg.Influx.TLS.InsecureSkipVerify {
		t.Fatalf("loaded %+v %+v", cfg.Postgres, cfg.Influx)
	}
	if o, err := cfg.Postgres.TLS.Options("postgres.tls"); err != nil || len(o.CA) == 0 || len(o.Key) == 0 || o.ServerName != "db.example" {
		t.Fatalf("options: %v", err)
	}
}
