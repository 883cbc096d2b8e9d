// Package ingesterproc runs a built fieldline-ingester binary as a subprocess for end-to-end tests: start it
// with a YAML configuration, wait for /readyz, read /metrics, stop it with a signal. Shared by ingester/e2e and
// the simulator's e2e tests.
package ingesterproc

import (
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/fieldline-iot/fieldline/internal/testsvc"
)

// Process is a running fieldline-ingester.
type Process struct {
	Addr    string // /metrics, /healthz, /readyz
	Logs    *SyncBuffer
	ExitErr error // valid once Done is closed
	Done    chan struct{}

	t   testing.TB
	cmd *exec.Cmd
}

// Start runs bin with the YAML configuration and env (nil: the test's environment) and waits up to 30 s for
// /readyz. The process is SIGKILLed at cleanup; its logs are printed when the test failed.
func Start(t testing.TB, bin, yaml string, env []string) *Process {
	t.Helper()
	p := Launch(t, bin, yaml, env)
	p.WaitReady(30 * time.Second)
	return p
}

// Launch runs bin like Start (with extra arguments after the configuration) but returns at once, without
// waiting for readiness.
func Launch(t testing.TB, bin, yaml string, env []string, args ...string) *Process {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ingester.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	p := &Process{Addr: FreeAddr(t), Logs: &SyncBuffer{}, Done: make(chan struct{}), t: t}
	p.cmd = exec.Command(bin, append([]string{"-config", path, "-http-addr", p.Addr}, args...)...)
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = p.Logs, p.Logs
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start ingester: %v", err)
	}
	go func() { p.ExitErr = p.cmd.Wait(); close(p.Done) }()
	t.Cleanup(func() {
		p.Stop(syscall.SIGKILL)
		if t.Failed() {
			t.Logf("ingester logs:\n%s", p.Logs.String())
		}
	})
	return p
}

// Readyz returns /readyz's status code and body (0 when the endpoint does not answer).
func (p *Process) Readyz() (int, string) {
	resp, err := http.Get("http://" + p.Addr + "/readyz")
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, string(body)
}

// WaitReady waits until /readyz answers 200, failing the test when the process exits or time runs out.
func (p *Process) WaitReady(timeout time.Duration) {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if code, _ := p.Readyz(); code == http.StatusOK {
			return
		}
		select {
		case <-p.Done:
			p.t.Fatalf("ingester exited early: %v\n%s", p.ExitErr, p.Logs.String())
		default:
		}
		if time.Now().After(deadline) {
			code, body := p.Readyz()
			p.t.Fatalf("ingester not ready within %s (/readyz %d %s)\n%s", timeout, code, body, p.Logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop sends sig and waits for the exit (up to 15 s, then SIGKILL); it returns how long the exit took.
func (p *Process) Stop(sig syscall.Signal) time.Duration {
	select {
	case <-p.Done:
		return 0
	default:
	}
	start := time.Now()
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.Done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.Done
		p.t.Errorf("ingester did not exit within 15s of %v", sig)
	}
	return time.Since(start)
}

// Metrics scrapes /metrics.
func (p *Process) Metrics() map[string]*dto.MetricFamily {
	p.t.Helper()
	resp, err := http.Get("http://" + p.Addr + "/metrics")
	if err != nil {
		p.t.Fatalf("scrape metrics: %v", err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		p.t.Fatalf("parse metrics: %v", err)
	}
	return fams
}

// Metric sums a counter or gauge family, only the series with label name=value when label is not "".
func Metric(fams map[string]*dto.MetricFamily, name, label, value string) float64 {
	f := fams[name]
	if f == nil {
		return 0
	}
	total := 0.0
	for _, m := range f.Metric {
		if label != "" && !hasLabel(m, label, value) {
			continue
		}
		switch {
		case m.Counter != nil:
			total += m.Counter.GetValue()
		case m.Gauge != nil:
			total += m.Gauge.GetValue()
		}
	}
	return total
}

func hasLabel(m *dto.Metric, name, value string) bool {
	for _, l := range m.Label {
		if l.GetName() == name && l.GetValue() == value {
			return true
		}
	}
	return false
}

// DropSession removes a persistent session from the broker (connect with a clean session, disconnect).
func DropSession(broker, clientID string) {
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker).SetClientID(clientID).SetCleanSession(true))
	if tok := c.Connect(); tok.WaitTimeout(5*time.Second) && tok.Error() == nil {
		c.Disconnect(100)
	}
}

// FreeAddr is testsvc.FreeAddr (the ingester's HTTP address).
func FreeAddr(t testing.TB) string { return testsvc.FreeAddr(t) }

// SyncBuffer is testsvc.SyncBuffer (the subprocess's output).
type SyncBuffer = testsvc.SyncBuffer
