// Package tlsconf builds client TLS configurations from PEM text, for every TLS connection Fieldline opens: MQTT
// brokers, PostgreSQL and InfluxDB, in the ingester (PEM read from files) and in the plugin (PEM from secure
// settings). Errors never quote key material.
package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
)

// Options are the TLS settings of one connection, as PEM text.
type Options struct {
	CA                 []byte // PEM certificates to trust instead of the system roots; empty: system roots
	Cert, Key          []byte // PEM client certificate and key, for servers that require one; both or neither
	ServerName         string // overrides the host name the certificate is checked against
	InsecureSkipVerify bool   // opt-in: do not check the server's certificate at all
	// VerifyChainOnly checks the server's certificate chain against CA (or the system roots) but not the host
	// name it was issued for: libpq's sslmode=verify-ca. Ignored with InsecureSkipVerify.
	VerifyChainOnly bool
}

// Errors of Config, for callers that name their own setting keys. None of them quotes key material.
var (
	ErrNoCACert       = errors.New("no PEM certificate found in the CA")
	ErrCertWithoutKey = errors.New("the client certificate and key must be set together")
	ErrBadKeyPair     = errors.New("not a valid PEM client certificate and key pair")
)

// Config builds the TLS configuration (TLS 1.2 or later) from o.
func Config(o Options) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: o.InsecureSkipVerify, ServerName: o.ServerName} //nolint:gosec // InsecureSkipVerify is an explicit opt-in setting
	if len(o.CA) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(o.CA) {
			return nil, ErrNoCACert
		}
		cfg.RootCAs = pool
	}
	if (len(o.Cert) == 0) != (len(o.Key) == 0) {
		return nil, ErrCertWithoutKey
	}
	if len(o.Cert) > 0 {
		pair, err := tls.X509KeyPair(o.Cert, o.Key)
		if err != nil {
			// tls's message never quotes key material, but it is not needed either: say what is wrong.
			return nil, fmt.Errorf("%w: %s", ErrBadKeyPair, keyPairReason(err))
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	if o.VerifyChainOnly && !o.InsecureSkipVerify {
		// crypto/tls checks chain and host name together or not at all: turn its check off and check the chain
		// here, with the same roots.
		roots := cfg.RootCAs
		cfg.InsecureSkipVerify = true
		cfg.VerifyConnection = func(cs tls.ConnectionState) error { return verifyChain(cs, roots) }
	}
	return cfg, nil
}

func verifyChain(cs tls.ConnectionState, roots *x509.CertPool) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("tls: the server sent no certificate")
	}
	opts := x509.VerifyOptions{Roots: roots, Intermediates: x509.NewCertPool()}
	for _, c := range cs.PeerCertificates[1:] {
		opts.Intermediates.AddCert(c)
	}
	if _, err := cs.PeerCertificates[0].Verify(opts); err != nil {
		return fmt.Errorf("tls: verify the server's certificate chain: %w", err)
	}
	return nil
}

func keyPairReason(err error) string {
	msg := err.Error()
	if len(msg) > 200 {
		msg = msg[:200]
	}
	return msg
}
