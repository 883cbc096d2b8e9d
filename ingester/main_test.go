package main

import (
	"bytes"
	"strings"
	"testing"
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
