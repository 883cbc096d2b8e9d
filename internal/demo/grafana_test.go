package demo

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/fieldline-iot/fieldline/deploy/provcheck"
	"github.com/fieldline-iot/fieldline/pkg/plugin"
)

var repoRoot = filepath.Join("..", "..")

// fakeRepo is a checkout with the real provisioning/ and a built dist/ (stand-in files).
func fakeRepo(t *testing.T, built bool) string {
	t.Helper()
	repo := t.TempDir()
	abs, err := filepath.Abs(filepath.Join(repoRoot, "provisioning"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(abs, filepath.Join(repo, "provisioning")); err != nil {
		t.Fatal(err)
	}
	if built {
		if err := os.MkdirAll(filepath.Join(repo, "dist"), 0o755); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{"module.js", "plugin.json", BackendExecutable()} {
			if err := os.WriteFile(filepath.Join(repo, "dist", f), []byte("x"), 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	return repo
}

var services = Services{PostgresHost: "127.0.0.1:5432", ReaderPassword: "reader-secret", InfluxURL: "http://127.0.0.1:8086",
	InfluxOrg: "fieldline", InfluxBucket: "fieldline", MQTTURL: "tcp://127.0.0.1:1883"}

// TestPrepareGrafana: the demo's provisioning points at the loopback services as fieldline_reader, finds its
// dashboards, passes what Grafana checks when it loads it, and the plugin directory is dist/.
func TestPrepareGrafana(t *testing.T) {
	if _, err := PrepareGrafana(fakeRepo(t, false), t.TempDir(), services); err == nil || !strings.Contains(err.Error(), "not built") {
		t.Fatalf("without dist/: %v", err)
	}
	repo, state := fakeRepo(t, true), t.TempDir()
	t.Chdir(repo) // as `mage demo` calls it: with the repository as "."
	env, err := PrepareGrafana(".", state, services)
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		vars[k] = v
	}
	prov := vars["GF_PATHS_PROVISIONING"]
	ds, err := os.ReadFile(filepath.Join(prov, "datasources", "fieldline.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"host: 127.0.0.1:5432", "user: fieldline_reader", "url: http://127.0.0.1:8086", "url: tcp://127.0.0.1:1883"} {
		if !strings.Contains(string(ds), want) {
			t.Errorf("demo data source lacks %q:\n%s", want, ds)
		}
	}
	if vars["FIELDLINE_PG_READER_PASSWORD"] != "reader-secret" || vars["GF_SERVER_HTTP_ADDR"] != "127.0.0.1" {
		t.Errorf("env: %v", env)
	}
	if _, err := os.Stat(vars["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]); err != nil {
		t.Errorf("home dashboard: %v", err)
	}
	problems, err := provcheck.Check(prov, provcheck.Options{
		PluginID: "fieldline-telemetry-datasource", JSONDataKeys: plugin.JSONDataKeys(), SecureJSONDataKeys: plugin.SecureJSONDataKeys,
		ContainerRoot: prov,
		Env: func(k string) string {
			v, ok := vars[k]
			if !ok {
				t.Errorf("provisioning uses $%s, which the demo's Grafana environment does not set", k)
			}
			return v
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Error(p)
	}
	link, err := os.Readlink(filepath.Join(vars["GF_PATHS_PLUGINS"], "fieldline-telemetry-datasource"))
	if err != nil || link != filepath.Join(repo, "dist") {
		t.Errorf("plugin link %q (%v), want %s", link, err, filepath.Join(repo, "dist"))
	}
	if _, err := os.Stat(filepath.Join(vars["GF_PATHS_PLUGINS"], "fieldline-telemetry-datasource", "module.js")); err != nil {
		t.Errorf("Grafana would not find the plugin: %v", err)
	}
	urls, err := DashboardURLs(repo, "http://localhost:3000")
	if err != nil || len(urls) != 3 || !strings.Contains(strings.Join(urls, "\n"), "http://localhost:3000/d/fieldline-environment") {
		t.Errorf("dashboard URLs %v (%v)", urls, err)
	}
}

// TestFindGrafana: `grafana server` with the installation's home path, the older grafana-server, or none.
func TestFindGrafana(t *testing.T) {
	home := t.TempDir()
	for _, d := range []string{"bin", "conf"} {
		if err := os.MkdirAll(filepath.Join(home, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(home, "conf", "defaults.ini"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(home, "bin", "grafana")
	look := func(names ...string) func(string) (string, error) {
		return func(n string) (string, error) {
			if slices.Contains(names, n) {
				return bin, nil
			}
			return "", os.ErrNotExist
		}
	}
	if p, args, ok := FindGrafana(look("grafana")); !ok || p != bin || !slices.Equal(args, []string{"server", "--homepath", home}) {
		t.Errorf("grafana: %s %v %v", p, args, ok)
	}
	if _, args, ok := FindGrafana(look("grafana-server")); !ok || !slices.Equal(args, []string{"--homepath", home}) {
		t.Errorf("grafana-server: %v %v", args, ok)
	}
	if _, _, ok := FindGrafana(look()); ok {
		t.Error("found a Grafana where there is none")
	}
}
