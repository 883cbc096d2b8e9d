package e2e

import (
	"fmt"
	"os"
	"os/exec"
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
	broker := testsvc.PrivateMosquitto(t, testsvc.MosquittoOptions{TLS: true, Username: "fieldline", Password: "s3cret"})
	port, caFile := broker.Port, broker.CAFile

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
