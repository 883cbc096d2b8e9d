package mqttconn

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"
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

func selfSigned(t *testing.T) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

func TestTLSConfig(t *testing.T) {
	cert, key := selfSigned(t)
	cfg, err := TLSConfig(TLSOptions{CA: cert, Cert: cert, Key: key, ServerName: "broker.example", InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.RootCAs == nil || len(cfg.Certificates) != 1 || cfg.ServerName != "broker.example" || !cfg.InsecureSkipVerify || cfg.MinVersion < 0x0303 {
		t.Fatalf("config does not carry the options: %+v", cfg)
	}
	if cfg, err := TLSConfig(TLSOptions{}); err != nil || cfg.RootCAs != nil || cfg.InsecureSkipVerify {
		t.Fatalf("empty options: system roots, verification on: %+v %v", cfg, err)
	}
	if _, err := TLSConfig(TLSOptions{CA: []byte("not pem")}); !errors.Is(err, ErrNoCACert) {
		t.Fatalf("bad CA: %v", err)
	}
	if _, err := TLSConfig(TLSOptions{Cert: cert}); !errors.Is(err, ErrCertWithoutKey) {
		t.Fatalf("cert without key: %v", err)
	}
	_, other := selfSigned(t)
	_, err = TLSConfig(TLSOptions{Cert: cert, Key: other})
	if !errors.Is(err, ErrBadKeyPair) {
		t.Fatalf("mismatched pair: %v", err)
	}
	if strings.Contains(err.Error(), "PRIVATE KEY") || strings.Contains(err.Error(), string(other[30:60])) {
		t.Fatalf("error quotes key material: %v", err)
	}
}
