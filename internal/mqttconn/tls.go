package mqttconn

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
)

// TLSOptions are the TLS settings of a broker connection, as PEM text: the ingester reads them from files, the
// plugin from its secure settings.
type TLSOptions struct {
	CA                 []byte // PEM certificates to trust instead of the system roots; empty: system roots
	Cert, Key          []byte // PEM client certificate and key, for brokers that require one; both or neither
	ServerName         string // overrides the host name the certificate is checked against
	InsecureSkipVerify bool   // opt-in: do not check the broker's certificate
}

// Errors of TLSConfig, for callers that name their own setting keys. None of them quotes key material.
var (
	ErrNoCACert       = errors.New("no PEM certificate found in the CA")
	ErrCertWithoutKey = errors.New("the client certificate and key must be set together")
	ErrBadKeyPair     = errors.New("not a valid PEM client certificate and key pair")
)

// TLSConfig builds the TLS configuration (TLS 1.2 or later) from o.
func TLSConfig(o TLSOptions) (*tls.Config, error) {
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
	return cfg, nil
}

func keyPairReason(err error) string {
	msg := err.Error()
	if len(msg) > 200 {
		msg = msg[:200]
	}
	return msg
}
