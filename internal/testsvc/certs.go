package testsvc

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// ServerName is a name the test server certificates are issued for besides localhost and 127.0.0.1, which no
// resolver knows: reaching a server at 127.0.0.1 with it as the checked name shows that a server-name setting works.
const ServerName = "db.fieldline.test"

// Certs are a test CA and the certificates it signed (PEM), valid for an hour.
type Certs struct {
	CA                    []byte
	ServerCert, ServerKey []byte // for localhost, 127.0.0.1 and ServerName
	ClientCert, ClientKey []byte // client authentication, common name as given to MakeCerts (a PostgreSQL role)
}

// CertFiles are the paths of Certs written to a directory (keys 0600).
type CertFiles struct {
	CA, ServerCert, ServerKey, ClientCert, ClientKey string
}

// MakeCerts makes a CA, a server certificate and a client certificate with common name clientCN ("": "fieldline").
func MakeCerts(t testing.TB, clientCN string) Certs {
	t.Helper()
	if clientCN == "" {
		clientCN = "fieldline"
	}
	caKey := newKey(t)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "fieldline test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	sign := func(serial int64, tmpl *x509.Certificate) (certPEM, keyPEM []byte) {
		key := newKey(t)
		tmpl.SerialNumber = big.NewInt(serial)
		tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kb, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
	}
	c := Certs{CA: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})}
	c.ServerCert, c.ServerKey = sign(2, &x509.Certificate{Subject: pkix.Name{CommonName: "localhost"},
		DNSNames: []string{"localhost", ServerName}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	c.ClientCert, c.ClientKey = sign(3, &x509.Certificate{Subject: pkix.Name{CommonName: clientCN},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	return c
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// Write writes the certificates into dir (keys mode 0600).
func (c Certs) Write(t testing.TB, dir string) CertFiles {
	t.Helper()
	w := func(name string, data []byte, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	return CertFiles{
		CA:         w("ca.pem", c.CA, 0o644),
		ServerCert: w("server.pem", c.ServerCert, 0o644),
		ServerKey:  w("server.key", c.ServerKey, 0o600),
		ClientCert: w("client.pem", c.ClientCert, 0o644),
		ClientKey:  w("client.key", c.ClientKey, 0o600),
	}
}
