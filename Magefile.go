//go:build mage

// Fieldline's build, test and run targets. Run them with `go tool mage <target>` (mage is a tool dependency
// in go.mod: nothing to install globally). `go tool mage -l` lists the targets.
package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	sdkbuild "github.com/grafana/grafana-plugin-sdk-go/build"
	"github.com/magefile/mage/mg"
	"github.com/magefile/mage/sh"
	"github.com/magefile/mage/target"

	"github.com/fieldline-iot/fieldline/internal/demo"
	"github.com/fieldline-iot/fieldline/internal/pluginpkg"
)

// Default target: the full test suite.
var Default = Test

// Services groups the targets that manage the real services on loopback.
type Services mg.Namespace

// Up installs (if needed) and starts PostgreSQL, Mosquitto and InfluxDB on loopback, idempotently, and prints
// the environment the tests read.
func (Services) Up() error {
	out, err := servicesUp()
	if err != nil {
		return err
	}
	fmt.Print(out)
	return nil
}

// Down stops the services Up started.
func (Services) Down() error { return sh.RunV("bash", "scripts/services.sh", "down") }

// Env prints the test environment (eval "$(scripts/services.sh env)" loads it into a shell).
func (Services) Env() error { return sh.RunV("bash", "scripts/services.sh", "env") }

func servicesUp() (string, error) {
	var out bytes.Buffer
	cmd := exec.Command("bash", "scripts/services.sh", "up")
	cmd.Stdout, cmd.Stderr = &out, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("bring up services: %w", err)
	}
	if err := loadEnv(out.String()); err != nil {
		return "", err
	}
	return out.String(), nil
}

// loadEnv applies `export K='V'` lines to this process (children inherit them).
func loadEnv(s string) error {
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		line := strings.TrimPrefix(strings.TrimSpace(sc.Text()), "export ")
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		if err := os.Setenv(k, strings.Trim(v, "'")); err != nil {
			return err
		}
	}
	return sc.Err()
}

// Test runs everything: services up, go vet, gofmt check, all Go tests against the real services (unit,
// integration, fuzz seeds), the fault tests (which restart services, so they run alone, last), and the
// firmware host tests.
func Test() error {
	if _, err := servicesUp(); err != nil {
		return err
	}
	mg.SerialDeps(Lint)
	if err := sh.RunV("go", "test", "-count=1", "-skip", "^TestFault", "./..."); err != nil {
		return err
	}
	mg.SerialDeps(TestFaults, TestFirmware, TestFrontend)
	return nil
}

// TestFrontend checks src/: npm ci (when node_modules is missing or older than package-lock.json), tsc, eslint,
// jest, the production build (which fails past its size budget) and the headless-Chromium check of the editors.
func TestFrontend() error {
	if err := npmCI(); err != nil {
		return err
	}
	if _, err := exec.LookPath("chromium"); err != nil {
		fmt.Println("installing Debian's chromium for the browser check")
		if err := sh.RunWithV(map[string]string{"DEBIAN_FRONTEND": "noninteractive"}, "apt-get", "install", "-y", "-qq", "chromium"); err != nil {
			if err := sh.Run("apt-get", "update", "-qq"); err != nil {
				return err
			}
			if err := sh.RunWithV(map[string]string{"DEBIAN_FRONTEND": "noninteractive"}, "apt-get", "install", "-y", "-qq", "chromium"); err != nil {
				return err
			}
		}
	}
	for _, script := range []string{"typecheck", "lint", "test", "build", "e2e"} {
		if err := sh.RunV("npm", "run", "--silent", script); err != nil {
			return fmt.Errorf("npm run %s: %w", script, err)
		}
	}
	return nil
}

// TestFaults runs the fault tests alone: they stop and restart PostgreSQL, Mosquitto and InfluxDB.
func TestFaults() error {
	if _, err := servicesUp(); err != nil {
		return err
	}
	return sh.RunV("go", "test", "-count=1", "-p", "1", "-run", "^TestFault", "-v", "./ingester/...", "./pkg/...")
}

// TestFirmware runs the Pico W firmware's host tests with CPython.
func TestFirmware() error {
	if _, err := os.Stat("firmware/pico-w/tests"); err != nil {
		return nil
	}
	return sh.RunV("python3", "-m", "unittest", "discover", "-s", "firmware/pico-w/tests", "-t", "firmware/pico-w")
}

// Lint runs go vet, fails on files gofmt would change, and runs golangci-lint with the committed .golangci.yml
// (a tool dependency in go.mod: nothing to install).
func Lint() error {
	if err := sh.RunV("go", "vet", "./..."); err != nil {
		return err
	}
	out, err := sh.Output("gofmt", "-l", ".")
	if err != nil {
		return err
	}
	if strings.TrimSpace(out) != "" {
		return fmt.Errorf("gofmt would change:\n%s", out)
	}
	return sh.RunV("go", "tool", "golangci-lint", "run", "./...")
}

// Run is the local run: services up, then the ingester in the foreground against them (Ctrl-C stops it).
// Publish e.g. `mosquitto_pub -t pico/temperature/dht22 -m 22.4 -q 1` and read `psql` or /metrics.
func Run() error {
	if _, err := servicesUp(); err != nil {
		return err
	}
	bin, err := buildIngester()
	if err != nil {
		return err
	}
	args := append([]string{}, os.Args[len(os.Args):]...)
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), ingesterEnv()...)
	cmd.Stdout, cmd.Stderr, cmd.Stdin = os.Stdout, os.Stderr, os.Stdin
	fmt.Println("fieldline-ingester: MQTT", os.Getenv("FIELDLINE_TEST_MQTT_URL"), "→ PostgreSQL + InfluxDB; metrics at http://127.0.0.1:9464/metrics")
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := cmd.Start(); err != nil {
		return err
	}
	go func() { <-ctx.Done(); _ = cmd.Process.Signal(syscall.SIGTERM) }()
	return cmd.Wait()
}

// Demo is the local demo without Docker: the services, the ingester and fieldline-sim publishing both field
// reports' topics; and, when a Grafana server (`grafana` or `grafana-server`) is on PATH, the plugin built for
// this machine (frontend and backend, into dist/) and Grafana on http://localhost:3000 with provisioning/ pointed
// at the local services as the SELECT-only role fieldline_reader. The URLs are printed; Ctrl-C stops everything.
// With Docker, `docker compose up -d --build` runs the whole stack (docs/demo.md).
func Demo() error {
	if _, err := servicesUp(); err != nil {
		return err
	}
	grafana, grafanaArgs, withGrafana := demo.FindGrafana(exec.LookPath)
	if withGrafana {
		if err := buildHostPlugin(); err != nil {
			return err
		}
	}
	ing, err := buildIngester()
	if err != nil {
		return err
	}
	sim := filepath.Join("bin", "fieldline-sim")
	if err := sh.RunV("go", "build", "-o", sim, "./firmware/simulator"); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	env := append(os.Environ(), ingesterEnv()...)
	var cmds []*exec.Cmd
	defer func() {
		for i := len(cmds) - 1; i >= 0; i-- {
			_ = cmds[i].Process.Signal(syscall.SIGTERM)
			_ = cmds[i].Wait()
		}
	}()
	start := func(name string, args []string, extra ...string) error {
		c := exec.Command(name, args...)
		c.Env = append(env, extra...)
		c.Stdout, c.Stderr = os.Stdout, os.Stderr
		if err := c.Start(); err != nil {
			return fmt.Errorf("start %s: %w", name, err)
		}
		cmds = append(cmds, c)
		return nil
	}
	if err := start(ing, nil); err != nil {
		return err
	}
	if err := start(sim, []string{"-broker", os.Getenv("FIELDLINE_TEST_MQTT_URL"), "-nodes", "3", "-interval", "2s"}); err != nil {
		return err
	}
	fmt.Println("ingester metrics:  http://127.0.0.1:9464/metrics")
	fmt.Println("readings:          psql -h 127.0.0.1 -U fieldline fieldline -c 'SELECT * FROM readings ORDER BY time DESC LIMIT 10'")
	if !withGrafana {
		fmt.Println("Grafana:           no `grafana` or `grafana-server` on PATH. Install a Grafana server (11.6 or later) and run")
		fmt.Println("                   this again: it builds the plugin and starts Grafana with the dashboards. Or, with Docker,")
		fmt.Println("                   `docker compose up -d --build` runs the whole stack (docs/demo.md).")
		<-ctx.Done()
		return nil
	}
	svc, err := demo.ServicesFromEnv(os.Getenv)
	if err != nil {
		return err
	}
	extra, err := demo.PrepareGrafana(".", filepath.Join(os.Getenv("FIELDLINE_STATE_DIR"), "grafana"), svc)
	if err != nil {
		return err
	}
	if err := start(grafana, grafanaArgs, extra...); err != nil {
		return err
	}
	urls, err := demo.DashboardURLs(".", "http://localhost:3000")
	if err != nil {
		return err
	}
	fmt.Println("Grafana:           http://localhost:3000 (anonymous viewers; admin / admin on first login)")
	for _, u := range urls {
		fmt.Println("  " + u)
	}
	<-ctx.Done()
	return nil
}

// buildHostPlugin builds the plugin for this machine into dist/: the frontend (npm ci when needed, npm run build)
// and the backend executable Grafana runs here (gpx_fieldline_<os>_<arch>), as `mage build` does for six
// platforms.
func buildHostPlugin() error {
	if err := npmCI(); err != nil {
		return err
	}
	if err := sh.RunV("npm", "run", "--silent", "build"); err != nil {
		return fmt.Errorf("npm run build: %w", err)
	}
	out := filepath.Join("dist", demo.BackendExecutable())
	if err := sh.RunWithV(map[string]string{"CGO_ENABLED": "0"}, "go", "build", "-trimpath", "-o", out, "./pkg"); err != nil {
		return fmt.Errorf("build the plugin backend: %w", err)
	}
	return nil
}

func ingesterEnv() []string {
	return []string{
		"FIELDLINE_POSTGRES_URL=" + os.Getenv("FIELDLINE_TEST_POSTGRES_URL"),
		"FIELDLINE_MQTT_URL=" + os.Getenv("FIELDLINE_TEST_MQTT_URL"),
		"FIELDLINE_INFLUX_URL=" + os.Getenv("FIELDLINE_TEST_INFLUX_URL"),
		"FIELDLINE_INFLUX_ORG=" + os.Getenv("FIELDLINE_TEST_INFLUX_ORG"),
		"FIELDLINE_INFLUX_BUCKET=" + os.Getenv("FIELDLINE_TEST_INFLUX_BUCKET"),
	}
}

// npmCI installs node_modules from package-lock.json when they are missing or older than the lock file.
func npmCI() error {
	if stale, _ := target.Path("node_modules/.package-lock.json", "package-lock.json"); stale {
		return sh.RunV("npm", "ci", "--no-audit", "--no-fund")
	}
	return nil
}

// Build builds the Grafana plugin into dist/: the frontend (npm run build: module.js, plugin.json with the
// version and date filled in, img/, README.md, LICENSE, CHANGELOG.md) and the backend with the plugin SDK's build
// functions (CGO off, static, executable name from src/plugin.json) for linux/amd64, linux/arm64, linux/arm
// (Raspberry Pi 2 and later: GOARM=7), darwin/amd64, darwin/arm64 and windows/amd64, one after another (the
// SDK's BuildAll runs them in parallel, too much for a small machine).
func Build() error {
	if err := npmCI(); err != nil {
		return err
	}
	start := time.Now()
	if err := sh.RunV("npm", "run", "--silent", "build"); err != nil {
		return fmt.Errorf("npm run build: %w", err)
	}
	fmt.Printf("frontend: %s\n", time.Since(start).Round(time.Second))
	b := sdkbuild.Build{}
	for _, step := range []struct {
		platform string
		build    func() error
	}{
		{"linux/amd64", b.Linux},
		{"linux/arm64", b.LinuxARM64},
		{"linux/arm", b.LinuxARM},
		{"darwin/amd64", b.Darwin},
		{"darwin/arm64", b.DarwinARM64},
		{"windows/amd64", b.Windows},
	} {
		start := time.Now()
		if err := step.build(); err != nil {
			return fmt.Errorf("backend %s: %w", step.platform, err)
		}
		fmt.Printf("backend %s: %s\n", step.platform, time.Since(start).Round(time.Second))
	}
	return nil
}

// Package runs Build, checks dist/ (plugin.json, logos, one executable per platform of the right format and
// architecture) and writes build/<plugin id>-<version>.zip (one top-level directory named after the plugin id,
// executables 0755), the layout Grafana's plugin installer expects, and its .sha256.
func Package() error {
	mg.SerialDeps(Build)
	start := time.Now()
	art, err := pluginpkg.Package(pluginpkg.Options{})
	if err != nil {
		return err
	}
	fmt.Printf("%s (%d files, %s)\n%s  %s\n", art.Zip, len(art.Report.Files), time.Since(start).Round(time.Millisecond), art.SHA256, art.SHA256File)
	return nil
}

func buildIngester() (string, error) {
	bin := filepath.Join("bin", "fieldline-ingester")
	if err := sh.RunV("go", "build", "-o", bin, "./ingester"); err != nil {
		return "", err
	}
	return bin, nil
}

// Bench groups the benchmark targets (figures are printed, never asserted).
type Bench mg.Namespace

// Query prints the plugin's builder-query latency (p50/p95, query to frames) on 7 days of 10-second data for
// 20 series (1.2 M rows written with store.Writer): 24 h at 1 m, 7 d at 10 m, 24 h raw.
func (Bench) Query() error {
	if _, err := servicesUp(); err != nil {
		return err
	}
	return sh.RunV("go", "run", "./bench/query")
}

// Live prints live-tail latency from publish to the frame leaving the plugin (p50/p99), frames/s per stream,
// messages lost and plugin CPU per message, for MQTT direct and MQTT → ingester → PostgreSQL → NOTIFY, at 1 and
// 1 000 msg/s.
func (Bench) Live() error {
	if _, err := servicesUp(); err != nil {
		return err
	}
	return sh.RunV("go", "run", "./bench/live")
}

// Ingest queues N QoS-1 messages (FIELDLINE_BENCH_MESSAGES, default 200000) for the ingester's persistent
// session, starts the ingester and prints drain throughput, CPU seconds per 100 000 messages and peak RSS,
// PostgreSQL only and then PostgreSQL + InfluxDB.
func (Bench) Ingest() error {
	if _, err := servicesUp(); err != nil {
		return err
	}
	if _, err := buildIngester(); err != nil {
		return err
	}
	return sh.RunV("go", "run", "./bench/ingest", "-ingester", filepath.Join("bin", "fieldline-ingester"))
}
