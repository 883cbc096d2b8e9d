// Package demo prepares the local demo's Grafana (`go tool mage demo` without Docker): a copy of provisioning/
// pointed at the loopback services with Grafana's SELECT-only role, a plugins directory holding the plugin built
// into dist/, and the environment and command line of a Grafana server found on PATH. The Magefile runs it;
// grafana_test.go checks it against a stand-in server and deploy/provcheck.
package demo

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
)

// Services are the loopback services the demo's Grafana reads (scripts/services.sh env).
type Services struct {
	PostgresHost   string // host:port
	ReaderPassword string // fieldline_reader's (scripts/services.sh: $FIELDLINE_STATE_DIR/postgres-reader.password)
	InfluxURL      string
	InfluxOrg      string
	InfluxBucket   string
	MQTTURL        string
}

// ServicesFromEnv reads the services' addresses from the environment scripts/services.sh prints, and the
// reader's password from the state directory.
func ServicesFromEnv(getenv func(string) string) (Services, error) {
	state := getenv("FIELDLINE_STATE_DIR")
	if state == "" {
		return Services{}, errors.New("FIELDLINE_STATE_DIR is not set: run the services first (go tool mage services:up)")
	}
	pw, err := os.ReadFile(filepath.Join(state, "postgres-reader.password"))
	if err != nil {
		return Services{}, fmt.Errorf("read fieldline_reader's password (scripts/services.sh up creates it): %w", err)
	}
	pg := getenv("FIELDLINE_TEST_POSTGRES_URL")
	host := "127.0.0.1:5432"
	if _, rest, ok := strings.Cut(pg, "@"); ok {
		host, _, _ = strings.Cut(rest, "/")
	}
	return Services{
		PostgresHost:   host,
		ReaderPassword: strings.TrimSpace(string(pw)),
		InfluxURL:      getenv("FIELDLINE_TEST_INFLUX_URL"),
		InfluxOrg:      getenv("FIELDLINE_TEST_INFLUX_ORG"),
		InfluxBucket:   getenv("FIELDLINE_TEST_INFLUX_BUCKET"),
		MQTTURL:        getenv("FIELDLINE_TEST_MQTT_URL"),
	}, nil
}

// FindGrafana looks for a Grafana server on PATH: `grafana server` (Grafana ≥ 10) or the older `grafana-server`,
// with --homepath set to the installation that holds conf/defaults.ini (next to the binary, as in Grafana's
// tarballs, or /usr/share/grafana, as in its packages). ok is false when there is none.
func FindGrafana(lookPath func(string) (string, error)) (bin string, args []string, ok bool) {
	for _, c := range []struct {
		name string
		args []string
	}{{"grafana", []string{"server"}}, {"grafana-server", nil}} {
		p, err := lookPath(c.name)
		if err != nil {
			continue
		}
		args = append([]string{}, c.args...)
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real
		}
		for _, home := range []string{filepath.Dir(filepath.Dir(p)), "/usr/share/grafana"} {
			if _, err := os.Stat(filepath.Join(home, "conf", "defaults.ini")); err == nil {
				args = append(args, "--homepath", home)
				break
			}
		}
		return p, args, true
	}
	return "", nil, false
}

// BackendExecutable is the name Grafana runs for the host platform (src/plugin.json's executable + _os_arch).
func BackendExecutable() string {
	name := fmt.Sprintf("gpx_fieldline_%s_%s", runtime.GOOS, runtime.GOARCH)
	if runtime.GOOS == "windows" {
		name += ".exe"
	}
	return name
}

// PrepareGrafana writes stateDir/{provisioning,plugins,data}: provisioning/ copied from repo with the compose
// service addresses replaced by the loopback services, and a plugins directory whose plugin is repo/dist (which
// must hold module.js and the host's backend). It returns Grafana's environment.
func PrepareGrafana(repo, stateDir string, s Services) ([]string, error) {
	repo, err := filepath.Abs(repo) // the plugin link must not depend on the directory Grafana starts in
	if err != nil {
		return nil, err
	}
	dist := filepath.Join(repo, "dist")
	for _, f := range []string{"module.js", "plugin.json", BackendExecutable()} {
		if _, err := os.Stat(filepath.Join(dist, f)); err != nil {
			return nil, fmt.Errorf("the plugin is not built (dist/%s): %w", f, err)
		}
	}
	prov := filepath.Join(stateDir, "provisioning")
	plugins := filepath.Join(stateDir, "plugins")
	if err := os.RemoveAll(prov); err != nil {
		return nil, err
	}
	for _, d := range []string{plugins, filepath.Join(stateDir, "data")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	local := strings.NewReplacer("timescaledb:5432", s.PostgresHost, "http://influxdb:8086", s.InfluxURL, "tcp://emqx:1883", s.MQTTURL,
		"/etc/grafana/provisioning", prov)
	src, err := filepath.EvalSymlinks(filepath.Join(repo, "provisioning"))
	if err != nil {
		return nil, fmt.Errorf("provisioning: %w", err)
	}
	err = filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		dst := filepath.Join(prov, rel)
		if d.IsDir() {
			return os.MkdirAll(dst, 0o700)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if strings.HasSuffix(path, ".yaml") {
			b = []byte(local.Replace(string(b)))
		}
		return os.WriteFile(dst, b, 0o600)
	})
	if err != nil {
		return nil, fmt.Errorf("copy provisioning: %w", err)
	}
	link := filepath.Join(plugins, "fieldline-telemetry-datasource")
	_ = os.Remove(link)
	if err := os.Symlink(dist, link); err != nil {
		return nil, err
	}
	return []string{
		"GF_PATHS_PROVISIONING=" + prov, "GF_PATHS_PLUGINS=" + plugins, "GF_PATHS_DATA=" + filepath.Join(stateDir, "data"),
		"GF_SERVER_HTTP_ADDR=127.0.0.1", "GF_SERVER_HTTP_PORT=3000",
		"GF_PLUGINS_ALLOW_LOADING_UNSIGNED_PLUGINS=fieldline-telemetry-datasource",
		"GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH=" + filepath.Join(prov, "dashboards", "fieldline", "environment.json"),
		"GF_AUTH_ANONYMOUS_ENABLED=true", "GF_AUTH_ANONYMOUS_ORG_ROLE=Viewer",
		"GF_ANALYTICS_REPORTING_ENABLED=false", "GF_ANALYTICS_CHECK_FOR_UPDATES=false", "GF_ANALYTICS_CHECK_FOR_PLUGIN_UPDATES=false",
		"GF_NEWS_NEWS_FEED_ENABLED=false",
		"FIELDLINE_PG_READER_PASSWORD=" + s.ReaderPassword,
		"FIELDLINE_INFLUX_ORG=" + s.InfluxOrg, "FIELDLINE_INFLUX_BUCKET=" + s.InfluxBucket,
		"FIELDLINE_INFLUX_TOKEN=", "FIELDLINE_MQTT_USERNAME=", "FIELDLINE_MQTT_PASSWORD=",
	}, nil
}

// DashboardURLs lists "Title: base/d/uid" for every provisioned dashboard, sorted by title.
func DashboardURLs(repo, base string) ([]string, error) {
	files, err := filepath.Glob(filepath.Join(repo, "provisioning", "dashboards", "*", "*.json"))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var d struct{ UID, Title string }
		if err := json.NewDecoder(bytes.NewReader(b)).Decode(&d); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		out = append(out, fmt.Sprintf("%-17s %s/d/%s", d.Title+":", base, d.UID))
	}
	sort.Strings(out)
	return out, nil
}
