package deploy

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fieldline-iot/fieldline/internal/ingesterproc"
	"github.com/fieldline-iot/fieldline/internal/testsvc"
)

// readmeLocalRun returns the commands of the README's "Local run" shell block, one per line.
func readmeLocalRun(t *testing.T) []string {
	t.Helper()
	readme := readFile(t, filepath.Join(root, "README.md"))
	_, after, ok := strings.Cut(readme, "## Local run")
	if !ok {
		t.Fatal(`README.md has no "## Local run" section`)
	}
	_, block, ok := strings.Cut(after, "```sh\n")
	if !ok {
		t.Fatal("README.md's Local run section has no ```sh block")
	}
	block, _, _ = strings.Cut(block, "```")
	var cmds []string
	sc := bufio.NewScanner(strings.NewReader(block))
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" && !strings.HasPrefix(line, "#") {
			cmds = append(cmds, line)
		}
	}
	return cmds
}

// TestReadmeLocalRun runs the README's local-run commands as a user types them after `go tool mage run`
// (services:up, then the ingester with zero configuration): mosquitto_pub, psql with no password on the command
// line or in the environment (libpq must find it in ~/.pgpass, which it ignores unless only its owner can read
// it), and curl on /metrics. Deviations from the user's run, all of them forced by sharing the machine with
// other tests: the ingester's HTTP port is a free one (the curl line is pointed at it), its client id is unique
// and its broker session is dropped afterwards.
func TestReadmeLocalRun(t *testing.T) {
	testsvc.PostgresURL(t) // services:up has run (skip outside CI, fail in CI)
	mqttURL := testsvc.MQTTURL(t)
	for _, tool := range []string{"psql", "mosquitto_pub", "curl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed: services:up installs it", tool)
		}
	}
	home, err := os.UserHomeDir()
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(filepath.Join(home, ".pgpass")); err != nil {
		t.Fatalf("~/.pgpass: %v (services:up writes it)", err)
	} else if st.Mode().Perm()&0o077 != 0 {
		t.Fatalf("~/.pgpass has mode %v: psql ignores a password file others can read", st.Mode().Perm())
	}

	bin := filepath.Join(t.TempDir(), "fieldline-ingester")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/fieldline-iot/fieldline/ingester").CombinedOutput(); err != nil {
		t.Fatalf("build fieldline-ingester: %v\n%s", err, out)
	}
	clientID := testsvc.RandomName("readme")
	t.Cleanup(func() { ingesterproc.DropSession(mqttURL, clientID) })
	// What `go tool mage run` passes (Magefile ingesterEnv): the services' addresses, nothing else.
	// The ingester, like psql, reads the password from ~/.pgpass: the URL carries none.
	env := append(withoutPassword(),
		"FIELDLINE_POSTGRES_URL=postgres://fieldline@127.0.0.1:5432/fieldline?sslmode=disable",
		"FIELDLINE_MQTT_URL="+mqttURL, "FIELDLINE_MQTT_CLIENT_ID="+clientID, "FIELDLINE_SPOOL_DIR="+t.TempDir())
	p := ingesterproc.Start(t, bin, "", env)

	run := func(cmd string) (string, error) {
		c := exec.Command("bash", "-c", cmd)
		c.Env = withoutPassword()
		c.Stdin = nil // no terminal: psql cannot prompt for a password
		out, err := c.CombinedOutput()
		return string(out), err
	}
	var psqlCmd string
	for _, cmd := range readmeLocalRun(t) {
		cmd = strings.ReplaceAll(cmd, "127.0.0.1:9464", p.Addr)
		if strings.HasPrefix(cmd, "psql ") {
			psqlCmd = cmd
		}
		out, err := run(cmd)
		if err != nil {
			t.Fatalf("README command failed: %s\n%v\n%s", cmd, err, out)
		}
		if strings.HasPrefix(cmd, "curl ") && !strings.Contains(out, "fieldline_ingester_") {
			t.Errorf("%s printed no fieldline_ingester_ metric:\n%s", cmd, out)
		}
	}
	if psqlCmd == "" {
		t.Fatal("the README's local run has no psql command")
	}
	// The published readings are what the psql command shows (the ingester commits within its linger).
	deadline := time.Now().Add(15 * time.Second)
	for {
		out, err := run(psqlCmd)
		if err == nil && strings.Contains(out, "22.4") && strings.Contains(out, "27.6") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not show the published readings 22.4 and 27.6: %v\n%s", psqlCmd, err, out)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// withoutPassword is the test's environment without PGPASSWORD or PGPASSFILE: passwords come from ~/.pgpass.
func withoutPassword() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PGPASSWORD=") && !strings.HasPrefix(kv, "PGPASSFILE=") {
			env = append(env, kv)
		}
	}
	return env
}
