package store

import (
	"crypto/tls"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/fieldline-iot/fieldline/internal/tlsconf"
)

// ApplyTLS replaces the TLS configuration pgx derived from a connection string with one built from PEM text
// (o), with libpq's meaning of sslMode:
//
//   - disable: no TLS (o is not used);
//   - allow, prefer, require: TLS without verification, unless o.CA is set: then the chain is checked against
//     it, not the host name (libpq's require with a root certificate is verify-ca);
//   - verify-ca: the chain is checked against o.CA (or the system roots), not the host name;
//   - verify-full: chain and host name; o.ServerName, when set, is the name checked instead of the host.
//
// o.InsecureSkipVerify turns every check off. A client certificate in o is sent in every mode but disable.
// pgx expresses allow and prefer (and several hosts) as fallback configurations, with and without TLS: every
// configuration that uses TLS gets o's, each keeping its own host's server name; the plain ones stay plain.
func ApplyTLS(cc *pgconn.Config, sslMode string, o tlsconf.Options) error {
	switch sslMode {
	case "disable":
		cc.TLSConfig = nil
		for _, f := range cc.Fallbacks {
			f.TLSConfig = nil
		}
		return nil
	case "", "allow", "prefer", "require":
		if len(o.CA) > 0 {
			o.VerifyChainOnly = true
		} else {
			o.InsecureSkipVerify = true
		}
	case "verify-ca":
		o.VerifyChainOnly = true
	case "verify-full":
	default:
		return fmt.Errorf("sslmode %q: want disable, allow, prefer, require, verify-ca or verify-full", sslMode)
	}
	base, err := tlsconf.Config(o)
	if err != nil {
		return err
	}
	apply := func(old *tls.Config) *tls.Config {
		if old == nil {
			return nil
		}
		c := base.Clone()
		c.NextProtos = old.NextProtos // sslnegotiation=direct
		if c.ServerName == "" {
			c.ServerName = old.ServerName
		}
		return c
	}
	cc.TLSConfig = apply(cc.TLSConfig)
	for _, f := range cc.Fallbacks {
		f.TLSConfig = apply(f.TLSConfig)
	}
	return nil
}
