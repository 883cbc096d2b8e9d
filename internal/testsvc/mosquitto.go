package testsvc

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// Mosquitto is a private broker for one test (a TLS listener with a password file, or plain), for what the
// shared broker of scripts/services.sh cannot show: certificates, credentials, a broker that goes away.
type Mosquitto struct {
	Port   string // on 127.0.0.1 (certificates name "localhost")
	WSPort string // a plain MQTT-over-WebSocket listener (WebSocket brokers only)
	CAFile string // the CA that signed the server certificate (TLS brokers only)

	t    testing.TB
	conf string
	mu   sync.Mutex
	cmd  *exec.Cmd
	log  *SyncBuffer
}

// MosquittoOptions choose the private broker's listener.
type MosquittoOptions struct {
	TLS                bool
	WebSocket          bool   // also listen for MQTT over WebSocket (plain) on WSPort
	Username, Password string // both set: anonymous clients are refused
}

// PrivateMosquitto starts a broker (the mosquitto binary of scripts/services.sh) and stops it at cleanup.
func PrivateMosquitto(t testing.TB, o MosquittoOptions) *Mosquitto {
	t.Helper()
	if _, err := exec.LookPath("mosquitto"); err != nil {
		if InCI() {
			t.Fatal("mosquitto not installed (scripts/services.sh installs it)")
		}
		t.Skip("mosquitto not installed")
	}
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	m := &Mosquitto{t: t, Port: freePort(t), log: &SyncBuffer{}}
	conf := fmt.Sprintf("persistence false\nuser %s\n", currentUser())
	if o.WebSocket {
		m.WSPort = freePort(t)
		conf += fmt.Sprintf("listener %s 127.0.0.1\nprotocol websockets\n", m.WSPort)
	}
	conf += fmt.Sprintf("listener %s 127.0.0.1\n", m.Port) // last: the certificate lines below belong to it
	if o.TLS {
		c := MakeCerts(t, "")
		m.CAFile = write("ca.pem", c.CA)
		conf += fmt.Sprintf("cafile %s\ncertfile %s\nkeyfile %s\n", m.CAFile, write("server.pem", c.ServerCert), write("server.key", c.ServerKey))
	}
	if o.Username != "" {
		pwFile := write("passwords", nil)
		if out, err := exec.Command("mosquitto_passwd", "-b", pwFile, o.Username, o.Password).CombinedOutput(); err != nil {
			t.Fatalf("mosquitto_passwd: %v %s", err, out)
		}
		_ = os.Chmod(pwFile, 0o600)
		conf += fmt.Sprintf("allow_anonymous false\npassword_file %s\n", pwFile)
	} else {
		conf += "allow_anonymous true\n"
	}
	m.conf = write("mosquitto.conf", []byte(conf))
	m.Start()
	t.Cleanup(m.Stop)
	return m
}

// FreeAddr returns a loopback address with a free port.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func freePort(t testing.TB) string {
	t.Helper()
	_, port, _ := net.SplitHostPort(FreeAddr(t))
	return port
}

// Start starts the broker (again) and waits until it listens.
func (m *Mosquitto) Start() {
	m.t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd != nil {
		return
	}
	cmd := exec.Command("mosquitto", "-c", m.conf)
	cmd.Stdout, cmd.Stderr = m.log, m.log
	if err := cmd.Start(); err != nil {
		m.t.Fatal(err)
	}
	m.cmd = cmd
	for i := 0; ; i++ {
		if c, err := net.Dial("tcp", "127.0.0.1:"+m.Port); err == nil {
			c.Close()
			return
		}
		if i > 200 {
			m.t.Fatalf("private mosquitto did not listen: %s", m.log.String())
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// Stop kills the broker (its clients see the connection drop).
func (m *Mosquitto) Stop() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil {
		return
	}
	_ = m.cmd.Process.Kill()
	_ = m.cmd.Wait()
	m.cmd = nil
}

// Log is what the broker printed so far.
func (m *Mosquitto) Log() string { return m.log.String() }

// SyncBuffer is a bytes.Buffer safe for concurrent writers (a subprocess's output, a logger) and the test
// reading it.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func currentUser() string {
	u, err := user.Current()
	if err != nil {
		return "root"
	}
	return u.Username
}
