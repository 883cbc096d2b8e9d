package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fieldline-iot/fieldline/internal/testsvc"
)

// TestTLSAndPassword runs a private Mosquitto with a TLS listener and a password file (certificates made here)
// and checks the ingester connects over ssl:// with its CA file, username and password, and stores a message;
// a wrong password keeps it from becoming ready.
func TestTLSAndPassword(t *testing.T) {
	if _, err := exec.LookPath("mosquitto"); err != nil {
		if testsvc.InCI() {
			t.Fatal("mosquitto not installed (scripts/services.sh installs it)")
		}
		t.Skip("mosquitto not installed")
	}
	dir := t.TempDir()
	caPEM, certPEM, keyPEM := makeCerts(t)
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	caFile, certFile, keyFile := write("ca.pem", caPEM), write("server.pem", certPEM), write("server.key", keyPEM)
	pwFile := write("passwords", nil)
	if out, err := exec.Command("mosquitto_passwd", "-b", pwFile, "fieldline", "s3cret").CombinedOutput(); err != nil {
		t.Fatalf("mosquitto_passwd: %v %s", err, out)
	}
	_ = os.Chmod(pwFile, 0o600)
	port := freeAddr(t)[len("127.0.0.1:"):]
	conf := write("mosquitto.conf", []byte(fmt.Sprintf(`listener %s 127.0.0.1
cafile %s
certfile %s
keyfile %s
allow_anonymous false
password_file %s
persistence false
user %s
`, port, caFile, certFile, keyFile, pwFile, currentUser())))
	broker := exec.Command("mosquitto", "-c", conf)
	var blog syncBuffer
	broker.Stdout, broker.Stderr = &blog, &blog
	if err := broker.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = broker.Process.Kill(); _ = broker.Wait() })
	for i := 0; ; i++ {
		if c, err := net.Dial("tcp", "127.0.0.1:"+port); err == nil {
			c.Close()
			break
		}
		if i > 100 {
			t.Fatalf("private mosquitto did not listen: %s", blog.String())
		}
		time.Sleep(50 * time.Millisecond)
	}

	e := newEnv(t, false)
	e.mqttURL = "ssl://localhost:" + port
	subs := fmt.Sprintf(`    - filter: %[1]s/+/+
      qos: 1
      template: "%[1]s/{device}/{metric}"`, e.prefix)
	cfg := strings.Replace(e.config(subs), "  subscriptions:", fmt.Sprintf("  username: fieldline\n  tls:\n    ca_file: %s\n  subscriptions:", caFile), 1)
	in := e.start(cfg, "FIELDLINE_MQTT_PASSWORD=s3cret")

	pub := exec.Command("mosquitto_pub", "-h", "localhost", "-p", port, "--cafile", caFile, "-u", "fieldline", "-P", "s3cret",
		"-q", "1", "-t", e.prefix+"/pico/temperature", "-m", "22.4")
	if out, err := pub.CombinedOutput(); err != nil {
		t.Fatalf("mosquitto_pub over TLS: %v %s", err, out)
	}
	eventually(t, 15*time.Second, func() string {
		if n, _ := pgCount(t, e.pgURL, "device = 'pico' AND value = 22.4"); n != 1 {
			return fmt.Sprintf("%d rows stored over TLS", n)
		}
		return ""
	})
	if strings.Contains(in.Logs.String(), "s3cret") {
		t.Errorf("the MQTT password appears in the ingester's logs")
	}
	in.Stop(9)

	// Wrong password: never ready, and the reason is logged without the secret.
	bad := e.clientID + "-bad"
	e2 := *e
	e2.clientID = bad
	path := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(path, []byte(strings.Replace(cfg, e.clientID, bad, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(ingesterBin, "-config", path, "-http-addr", freeAddr(t))
	cmd.Env = append(os.Environ(), "FIELDLINE_MQTT_PASSWORD=wrong-password")
	var logs syncBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second)
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	if strings.Contains(logs.String(), "MQTT connected") {
		t.Errorf("connected with a wrong password:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "MQTT connect failed") || !strings.Contains(logs.String(), "not Authorized") {
		t.Errorf("the refused connection is not explained in the logs:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), "wrong-password") {
		t.Errorf("the wrong password appears in the logs")
	}
}

func currentUser() string {
	u, err := user.Current()
	if err != nil {
		return "root"
	}
	return u.Username
}

func makeCerts(t *testing.T) (caPEM, certPEM, keyPEM []byte) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "fieldline test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "localhost"}, DNSNames: []string{"localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
}
