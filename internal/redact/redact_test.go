package redact

import (
	"strings"
	"testing"
)

func TestURL(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"tcp://user:s3cret@broker:1883", "tcp://user:xxxxx@broker:1883"},
		{"postgres://fieldline:pw@127.0.0.1:5432/fieldline?sslmode=disable", "postgres://fieldline:xxxxx@127.0.0.1:5432/fieldline?sslmode=disable"},
		{"tcp://broker:1883", "tcp://broker:1883"},
		{"tcp://user@broker:1883", "tcp://user@broker:1883"},
		{"postgres://u:p w%zz@h/db", "(unparsable URL)"}, // a bad escape: the input (and its password) is not echoed
	} {
		if got := URL(c.in); got != c.want {
			t.Errorf("URL(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestNewReplacer(t *testing.T) {
	r := NewReplacer(map[string]string{"a": "hunter2hunter2", "b": "hunter2", "short": "abc"})
	got := r.Replace("login with hunter2hunter2 failed, then hunter2; abc stays")
	if strings.Contains(got, "hunter2") {
		t.Fatalf("secret left in %q", got)
	}
	if want := "login with [redacted] failed, then [redacted]; abc stays"; got != want {
		t.Fatalf("got %q, want %q (the longer secret must be masked whole)", got, want)
	}
}
