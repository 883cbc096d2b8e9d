package mqttconn

import (
	"errors"
	"strings"
	"testing"
)

func TestParseURL(t *testing.T) {
	for _, ok := range []string{"tcp://h:1883", "mqtt://h:1883", "ssl://h:8883", "tls://h:8883", "mqtts://h:8883", "tcps://h:8883", "ws://h:9001/mqtt", "wss://h:443/mqtt"} {
		if _, err := ParseURL(ok, false); err != nil {
			t.Errorf("ParseURL(%q): %v", ok, err)
		}
		if transportOf(strings.SplitN(ok, ":", 2)[0]) == unsupported {
			t.Errorf("%q: Dial has no transport for its scheme", ok)
		}
	}
	for _, bad := range []string{"http://h:80", "h:1883", "tcp://", "tcp://u:p%zz@h:1883", "://h"} {
		if _, err := ParseURL(bad, true); err == nil {
			t.Errorf("ParseURL(%q) accepted", bad)
		}
	}
	const secret = "s3cret-pw"
	_, err := ParseURL("tcp://user:"+secret+"@h:1883", false)
	if !errors.Is(err, ErrCredentialsInURL) {
		t.Fatalf("credentials without allowCredentials: %v", err)
	}
	if _, err := ParseURL("tcp://user:"+secret+"@h:1883", true); err != nil {
		t.Fatalf("credentials with allowCredentials: %v", err)
	}
	if _, err := ParseURL("gopher://user:"+secret+"@h:1883", true); err == nil || strings.Contains(err.Error(), secret) {
		t.Fatalf("bad scheme error must not quote the password: %v", err)
	}
}

func TestSecure(t *testing.T) {
	for raw, want := range map[string]bool{"tcp://h:1": false, "mqtt://h:1": false, "ws://h:1": false, "ssl://h:1": true, "tls://h:1": true, "mqtts://h:1": true, "tcps://h:1": true, "wss://h:1": true, "%zz": false} {
		if got := SecureScheme(raw); got != want {
			t.Errorf("SecureScheme(%q) = %v, want %v", raw, got, want)
		}
	}
}
