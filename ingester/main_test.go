package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fieldline-iot/fieldline/ingester/spool"
)

func TestInvalidConfigurationExitsTwo(t *testing.T) {
	var stderr bytes.Buffer
	code := run([]string{"-mqtt-url", "http://broker"}, func(string) string { return "" }, &stderr)
	if code != 2 {
		t.Fatalf("exit %d, want 2", code)
	}
	if !strings.Contains(stderr.String(), "mqtt.url") {
		t.Errorf("message does not name the key: %q", stderr.String())
	}
	if strings.Count(strings.TrimSpace(stderr.String()), "\n") != 0 {
		t.Errorf("want one line, got %q", stderr.String())
	}
	stderr.Reset()
	if code := run([]string{"-nope"}, func(string) string { return "" }, &stderr); code != 2 {
		t.Errorf("unknown flag: exit %d, want 2", code)
	}
	if code := run([]string{"-h"}, func(string) string { return "" }, &stderr); code != 0 {
		t.Errorf("-h: exit %d, want 0", code)
	}
}

// TestConfigurationErrorsExitTwo: every configuration error exits 2 with one line naming its key and no
// password: a URL pgx cannot use, a file with a second YAML document, a spool directory another process holds.
func TestConfigurationErrorsExitTwo(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	spoolDir := filepath.Join(dir, "spool")
	release, err := spool.Lock(spoolDir)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	noEnv := func(string) string { return "" }
	for _, c := range []struct {
		args []string
		key  string
	}{
		{[]string{"-postgres-url", "postgres://u:Secret-Pw@db:5432/x?sslmode=sometimes"}, "postgres.url"},
		{[]string{"-config", write("two.yaml", "mqtt:\n  client_id: a\n---\nmqtt:\n  client_id: b\n")}, "config"},
		// A locked spool: the process gets as far as opening it (no broker or database is contacted first).
		{[]string{"-spool-dir", spoolDir, "-http-addr", "off", "-postgres-url", "postgres://u@127.0.0.1:1/x"}, "spool.dir"},
	} {
		var stderr bytes.Buffer
		code := run(c.args, noEnv, &stderr)
		if code != 2 || !strings.Contains(stderr.String(), c.key) || strings.Contains(stderr.String(), "Secret-Pw") {
			t.Errorf("%v: exit %d, output %q: want 2 naming %s, no password", c.args, code, stderr.String(), c.key)
		}
	}
}
