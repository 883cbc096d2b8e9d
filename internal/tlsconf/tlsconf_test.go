package tlsconf

import (
	"crypto/tls"
	"errors"
	"strings"
	"testing"

	"github.com/fieldline-iot/fieldline/internal/testsvc"
)

func TestConfig(t *testing.T) {
	c := testsvc.MakeCerts(t, "")
	cfg, err := Config(Options{CA: c.CA, Cert: c.ClientCert, Key: c.ClientKey, ServerName: "broker.example", InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.RootCAs == nil || len(cfg.Certificates) != 1 || cfg.ServerName != "broker.example" || !cfg.InsecureSkipVerify || cfg.MinVersion < 0x0303 {
		t.Fatalf("config does not carry the options: %+v", cfg)
	}
	if cfg, err := Config(Options{}); err != nil || cfg.RootCAs != nil || cfg.InsecureSkipVerify {
		t.Fatalf("empty options: system roots, verification on: %+v %v", cfg, err)
	}
	if _, err := Config(Options{CA: []byte("not pem")}); !errors.Is(err, ErrNoCACert) {
		t.Fatalf("bad CA: %v", err)
	}
	if _, err := Config(Options{Cert: c.ClientCert}); !errors.Is(err, ErrCertWithoutKey) {
		t.Fatalf("cert without key: %v", err)
	}
	other := testsvc.MakeCerts(t, "")
	_, err = Config(Options{Cert: c.ClientCert, Key: other.ClientKey})
	if !errors.Is(err, ErrBadKeyPair) {
		t.Fatalf("mismatched pair: %v", err)
	}
	if strings.Contains(err.Error(), "PRIVATE KEY") || strings.Contains(err.Error(), string(other.ClientKey[30:60])) {
		t.Fatalf("error quotes key material: %v", err)
	}
}

// TestVerifyChainOnly handshakes with a real TLS listener: the chain is checked against the CA, the name is not.
func TestVerifyChainOnly(t *testing.T) {
	c := testsvc.MakeCerts(t, "")
	pair, err := tls.X509KeyPair(c.ServerCert, c.ServerKey)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			_ = conn.(*tls.Conn).Handshake()
			conn.Close()
		}
	}()
	dial := func(o Options) error {
		cfg, err := Config(o)
		if err != nil {
			t.Fatal(err)
		}
		conn, err := tls.Dial("tcp", ln.Addr().String(), cfg)
		if err == nil {
			conn.Close()
		}
		return err
	}
	if err := dial(Options{CA: c.CA, ServerName: "wrong.example", VerifyChainOnly: true}); err != nil {
		t.Fatalf("chain only, wrong name: %v", err)
	}
	if err := dial(Options{CA: c.CA, ServerName: "wrong.example"}); err == nil || !strings.Contains(err.Error(), "wrong.example") {
		t.Fatalf("full verification, wrong name: want a host name error, got %v", err)
	}
	other := testsvc.MakeCerts(t, "")
	if err := dial(Options{CA: other.CA, ServerName: "wrong.example", VerifyChainOnly: true}); err == nil || !strings.Contains(err.Error(), "unknown authority") {
		t.Fatalf("chain only, other CA: want unknown authority, got %v", err)
	}
}
