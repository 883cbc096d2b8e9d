package deploy

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"gopkg.in/yaml.v3"

	"github.com/fieldline-iot/fieldline/deploy/provcheck"
	"github.com/fieldline-iot/fieldline/ingester/config"
	"github.com/fieldline-iot/fieldline/internal/mqttconn"
	"github.com/fieldline-iot/fieldline/pkg/plugin"
)

const (
	pluginID = "fieldline-telemetry-datasource"
	dsUID    = "fieldline"
)

// root is the repository root (this package lives in deploy/).
var root = func() string {
	wd, err := os.Getwd()
	if err != nil {
		panic(err)
	}
	return filepath.Dir(wd)
}()

// load loads docker-compose.yaml the way `docker compose` does, with the given environment (as if it were the
// .env file and the shell) and profiles.
func load(t *testing.T, env map[string]string, profiles ...string) *types.Project {
	t.Helper()
	return loadFiles(t, []string{"docker-compose.yaml"}, env, profiles...)
}

// loadFiles loads several compose files, as `docker compose -f a -f b` does (later files override).
func loadFiles(t *testing.T, files []string, env map[string]string, profiles ...string) *types.Project {
	t.Helper()
	details := types.ConfigDetails{WorkingDir: root, Environment: env}
	for _, f := range files {
		details.ConfigFiles = append(details.ConfigFiles, types.ConfigFile{Filename: filepath.Join(root, f)})
	}
	p, err := loader.LoadWithContext(context.Background(), details, func(o *loader.Options) {
		o.SetProjectName("fieldline", true)
		o.Profiles = profiles
		o.ResolvePaths = true
	})
	if err != nil {
		t.Fatalf("docker-compose.yaml does not load: %v", err)
	}
	return p
}

// envOf returns a service's environment as a map (unset entries are skipped).
func envOf(s types.ServiceConfig) map[string]string {
	m := map[string]string{}
	for k, v := range s.Environment {
		if v != nil {
			m[k] = *v
		}
	}
	return m
}

func exists(t *testing.T, path, what string) {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		t.Errorf("%s: %v", what, err)
	}
}

// inRepo checks that an absolute path is inside the repository and exists.
func inRepo(t *testing.T, path, what string) {
	t.Helper()
	rel, err := filepath.Rel(root, path)
	if err != nil || strings.HasPrefix(rel, "..") {
		t.Errorf("%s: %s is outside the repository", what, path)
		return
	}
	exists(t, path, what)
}

func TestComposeServices(t *testing.T) {
	p := load(t, map[string]string{})
	want := []string{"emqx", "grafana", "influxdb", "ingester", "simulator", "timescaledb"}
	if got := p.ServiceNames(); !slices.Equal(got, want) {
		t.Fatalf("services (default profile): %v, want %v", got, want)
	}
	if _, ok := p.DisabledServices["grafana-dev"]; !ok {
		t.Errorf("grafana-dev must exist behind the dev profile")
	}
	// Third-party images pinned to a full version (never latest or a bare major): what was tested is what runs.
	pinned := regexp.MustCompile(`^[a-z0-9./_-]+:\d+\.\d+\.\d+(-pg\d+)?$`)
	images := map[string]string{"emqx": "emqx/emqx:5.", "timescaledb": "timescale/timescaledb:2.", "influxdb": "influxdb:2."}
	for name, prefix := range images {
		if img := p.Services[name].Image; !strings.HasPrefix(img, prefix) || !pinned.MatchString(img) {
			t.Errorf("%s image %q: want %s<minor>.<patch>, pinned", name, img, prefix)
		}
	}
	// TimescaleDB >= 2.18: statement triggers with transition tables on hypertables (the rollups need them).
	if m := regexp.MustCompile(`:2\.(\d+)\.`).FindStringSubmatch(p.Services["timescaledb"].Image); m == nil || atoi(m[1]) < 18 {
		t.Errorf("timescaledb image %q: want TimescaleDB >= 2.18", p.Services["timescaledb"].Image)
	}
	// Images built here are never pulled (a registry image of the same name would replace the build).
	for name, s := range p.Services {
		if s.Build != nil && s.PullPolicy != types.PullPolicyBuild {
			t.Errorf("%s: built from this repository, set pull_policy: build (got %q)", name, s.PullPolicy)
		}
	}
	// Grafana: grafana/grafana (grafana-oss stops at 12.4) at a patch of the line the plugin's @grafana packages
	// target.
	df := readFile(t, filepath.Join(root, "deploy", "Dockerfile"))
	if !strings.Contains(df, "FROM grafana/grafana:${GRAFANA_VERSION} AS grafana") {
		t.Error("deploy/Dockerfile: the grafana stage must build FROM grafana/grafana:${GRAFANA_VERSION}")
	}
	graf := p.Services["grafana"].Build.Args["GRAFANA_VERSION"]
	dev := p.DisabledServices["grafana-dev"].Image
	var pkg struct {
		Dependencies map[string]string `json:"dependencies"`
	}
	if err := json.Unmarshal([]byte(readFile(t, filepath.Join(root, "package.json"))), &pkg); err != nil {
		t.Fatal(err)
	}
	line := regexp.MustCompile(`(\d+\.\d+)\.`).FindStringSubmatch(pkg.Dependencies["@grafana/data"])
	if graf == nil || line == nil || !strings.HasPrefix(*graf, line[1]+".") || !pinned.MatchString("grafana/grafana:"+*graf) {
		t.Errorf("GRAFANA_VERSION %v: want a full version of the %v line (@grafana/data %s)", graf, line, pkg.Dependencies["@grafana/data"])
	} else if dev != "grafana/grafana:"+*graf {
		t.Errorf("grafana-dev image %q, want grafana/grafana:%s", dev, *graf)
	}
	if m := regexp.MustCompile(`(?m)^ARG GRAFANA_VERSION=(\S+)$`).FindStringSubmatch(df); m == nil || graf == nil || m[1] != *graf {
		t.Errorf("deploy/Dockerfile's GRAFANA_VERSION default %v differs from the compose file's %v", m, graf)
	}
	// Telemetry and update checks off.
	for svc, kv := range map[string][2]string{
		"grafana":     {"GF_ANALYTICS_REPORTING_ENABLED", "false"},
		"timescaledb": {"TIMESCALEDB_TELEMETRY", "off"},
		"influxdb":    {"INFLUXD_REPORTING_DISABLED", "true"},
		"emqx":        {"EMQX_TELEMETRY__ENABLE", "false"},
	} {
		if got := envOf(p.Services[svc])[kv[0]]; got != kv[1] {
			t.Errorf("%s: %s=%q, want %q", svc, kv[0], got, kv[1])
		}
	}
	for _, k := range []string{"GF_ANALYTICS_CHECK_FOR_UPDATES", "GF_ANALYTICS_CHECK_FOR_PLUGIN_UPDATES", "GF_NEWS_NEWS_FEED_ENABLED"} {
		if got := envOf(p.Services["grafana"])[k]; got != "false" {
			t.Errorf("grafana: %s=%q, want false", k, got)
		}
	}
	// EMQX: in-flight window and queue raised for ack-after-commit (docs/ingester.md), and the ingester's
	// max_inflight (deploy/ingester.yaml) at least the broker's window.
	emqx := envOf(p.Services["emqx"])
	inflight, _ := strconv.Atoi(emqx["EMQX_MQTT__MAX_INFLIGHT"])
	mqueue, _ := strconv.Atoi(emqx["EMQX_MQTT__MAX_MQUEUE_LEN"])
	if inflight < 1000 || mqueue < 100_000 {
		t.Errorf("EMQX max_inflight %d / max_mqueue_len %d: raise them (defaults 32 / 1000 cap ack-after-commit batches and drop queued messages)", inflight, mqueue)
	}
	cfg := ingesterConfig(t, p)
	if cfg.MQTT.MaxInflight < inflight {
		t.Errorf("ingester mqtt.max_inflight %d < EMQX max_inflight %d", cfg.MQTT.MaxInflight, inflight)
	}
}

// published lists a project's published ports as "service:hostIP:published->target".
func published(p *types.Project) []string {
	var out []string
	for name, s := range p.Services {
		for _, port := range s.Ports {
			out = append(out, fmt.Sprintf("%s:%s:%s->%d", name, port.HostIP, port.Published, port.Target))
		}
	}
	slices.Sort(out)
	return out
}

// TestComposePorts: by default only Grafana (loopback) and MQTT (every interface, for devices) are published,
// both movable in .env (a Pi that already runs Mosquitto on 1883); the databases, the ingester's metrics and the
// EMQX dashboard only with deploy/compose.expose.yaml, and then on loopback.
func TestComposePorts(t *testing.T) {
	want := []string{"emqx:0.0.0.0:1883->1883", "grafana:127.0.0.1:3000->3000"}
	if got := published(load(t, map[string]string{})); !slices.Equal(got, want) {
		t.Errorf("published by default: %v, want %v", got, want)
	}
	env := map[string]string{"GRAFANA_HOST_PORT": "3300", "MQTT_HOST_PORT": "1884", "GRAFANA_HOST_BIND": "0.0.0.0"}
	want = []string{"emqx:0.0.0.0:1884->1883", "grafana:0.0.0.0:3300->3000"}
	if got := published(load(t, env)); !slices.Equal(got, want) {
		t.Errorf("published with .env ports: %v, want %v", got, want)
	}
	want = []string{"emqx:0.0.0.0:1883->1883", "emqx:127.0.0.1:18083->18083", "grafana:127.0.0.1:3000->3000",
		"influxdb:127.0.0.1:8086->8086", "ingester:127.0.0.1:9464->9464", "timescaledb:127.0.0.1:5432->5432"}
	if got := published(loadFiles(t, []string{"docker-compose.yaml", "deploy/compose.expose.yaml"}, map[string]string{})); !slices.Equal(got, want) {
		t.Errorf("published with deploy/compose.expose.yaml: %v, want %v", got, want)
	}
	// .env.example names every port variable with its default.
	example := readFile(t, filepath.Join(root, ".env.example"))
	for _, kv := range []string{"GRAFANA_HOST_BIND=127.0.0.1", "GRAFANA_HOST_PORT=3000", "MQTT_HOST_PORT=1883", "POSTGRES_HOST_PORT=5432", "INFLUXDB_HOST_PORT=8086", "INGESTER_HOST_PORT=9464"} {
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(kv) + `$`).MatchString(example) {
			t.Errorf(".env.example lacks %s", kv)
		}
	}
}

func TestComposeHealthchecksAndDependencies(t *testing.T) {
	p := load(t, map[string]string{}, "dev")
	dockerfile := readFile(t, filepath.Join(root, "deploy", "Dockerfile"))
	for name, s := range p.Services {
		hc := s.HealthCheck
		if name == "simulator" { // a pure publisher: nothing depends on it, nothing to probe
			continue
		}
		if hc == nil || hc.Disable || len(hc.Test) < 2 || hc.Interval == nil || hc.Timeout == nil || hc.Retries == nil {
			t.Errorf("%s: needs a healthcheck with test, interval, timeout, retries (got %+v)", name, hc)
			continue
		}
		if hc.Test[0] != "CMD" && hc.Test[0] != "CMD-SHELL" {
			t.Errorf("%s: healthcheck test %q must start with CMD or CMD-SHELL", name, hc.Test)
		}
		// Our images are distroless: their probe is the healthcheck binary the Dockerfile copies in.
		if s.Build != nil && hc.Test[0] == "CMD" && !strings.Contains(dockerfile, filepath.Base(hc.Test[1])) {
			t.Errorf("%s: healthcheck runs %s, which deploy/Dockerfile does not put in the image", name, hc.Test[1])
		}
	}
	wantDeps := map[string][]string{
		"ingester":  {"emqx", "influxdb", "timescaledb"},
		"simulator": {"emqx", "ingester"},
		"grafana":   {"emqx", "influxdb", "ingester", "timescaledb"},
	}
	for name, s := range p.Services {
		var deps []string
		for dep, d := range s.DependsOn {
			deps = append(deps, dep)
			target, ok := p.Services[dep]
			if !ok {
				t.Errorf("%s depends on unknown service %s", name, dep)
				continue
			}
			if d.Condition != types.ServiceConditionHealthy {
				t.Errorf("%s → %s: condition %q, want service_healthy", name, dep, d.Condition)
			}
			if target.HealthCheck == nil || target.HealthCheck.Disable {
				t.Errorf("%s waits for %s to be healthy, but %s has no healthcheck", name, dep, dep)
			}
		}
		slices.Sort(deps)
		if w, ok := wantDeps[name]; ok && !slices.Equal(deps, w) {
			t.Errorf("%s depends on %v, want %v", name, deps, w)
		}
	}
}

func TestComposeVolumesAndPaths(t *testing.T) {
	p := load(t, map[string]string{}, "dev")
	used := map[string]bool{}
	state := map[string]string{ // service → data directory that must be on a named volume
		"emqx": "/opt/emqx/data", "timescaledb": "/var/lib/postgresql/data", "influxdb": "/var/lib/influxdb2",
		"grafana": "/var/lib/grafana", "ingester": "/var/lib/fieldline",
	}
	for name, s := range p.Services {
		for _, v := range s.Volumes {
			switch v.Type {
			case types.VolumeTypeVolume:
				if _, ok := p.Volumes[v.Source]; !ok {
					t.Errorf("%s: volume %q is not declared under volumes:", name, v.Source)
				}
				used[v.Source] = true
				if state[name] == v.Target {
					delete(state, name)
				}
			case types.VolumeTypeBind:
				if name == "grafana-dev" && v.Target == "/opt/fieldline/grafana-plugins/"+pluginID {
					// The dev profile mounts the host's build output on purpose (npm run build + go build).
					if filepath.Base(v.Source) != "dist" {
						t.Errorf("grafana-dev mounts %s as the plugin, want ./dist", v.Source)
					}
					continue
				}
				inRepo(t, v.Source, fmt.Sprintf("%s: bind mount %s", name, v.Target))
				if !v.ReadOnly {
					t.Errorf("%s: bind mount %s should be read-only", name, v.Source)
				}
			default:
				t.Errorf("%s: volume type %q", name, v.Type)
			}
		}
	}
	for name, dir := range state {
		t.Errorf("%s: %s must be on a named volume", name, dir)
	}
	for v := range p.Volumes {
		if !used[v] {
			t.Errorf("volume %s is declared but unused", v)
		}
	}
}

var fromAs = regexp.MustCompile(`(?im)^FROM\s+\S+(?:\s+\S+)?\s+AS\s+(\S+)\s*$`)

func TestComposeBuilds(t *testing.T) {
	p := load(t, map[string]string{})
	for name, s := range p.Services {
		b := s.Build
		if b == nil {
			continue
		}
		inRepo(t, b.Context, name+": build context")
		df := b.Dockerfile
		if !filepath.IsAbs(df) {
			df = filepath.Join(b.Context, df)
		}
		inRepo(t, df, name+": Dockerfile")
		text := readFile(t, df)
		var stages []string
		for _, m := range fromAs.FindAllStringSubmatch(text, -1) {
			stages = append(stages, m[1])
		}
		if !slices.Contains(stages, b.Target) {
			t.Errorf("%s: build target %q is not a stage of %s (stages %v)", name, b.Target, df, stages)
		}
		if s.Image == "" {
			t.Errorf("%s: name the built image (image:)", name)
		}
		exists(t, df+".dockerignore", name+": the Dockerfile's .dockerignore (keeps node_modules, dist, .git out of the context)")
	}
	// Everything the Dockerfile builds from exists, and nothing secret is baked in.
	df := readFile(t, filepath.Join(root, "deploy", "Dockerfile"))
	for _, path := range []string{"go.mod", "go.sum", "package.json", "package-lock.json", "ingester", "firmware/simulator", "deploy/healthcheck", "pkg/main.go", "src/plugin.json", "webpack.config.ts"} {
		exists(t, filepath.Join(root, path), "deploy/Dockerfile builds from "+path)
	}
	for _, pkg := range []string{"./ingester", "./firmware/simulator", "./deploy/healthcheck", "./pkg"} {
		if !strings.Contains(df, " "+pkg+" ") && !strings.Contains(df, " "+pkg+"\n") && !strings.Contains(df, " "+pkg+" &&") {
			t.Errorf("deploy/Dockerfile does not build %s", pkg)
		}
	}
	if !strings.Contains(df, "npm ci") || !strings.Contains(df, "npm run build") {
		t.Error("deploy/Dockerfile must build the frontend (npm ci, npm run build)")
	}
	if !strings.Contains(df, "gpx_fieldline_${TARGETOS}_${TARGETARCH}") {
		t.Error("deploy/Dockerfile must build the backend as gpx_fieldline_<os>_<arch> (plugin.json executable)")
	}
	for _, line := range strings.Split(df, "\n") {
		up := strings.ToUpper(strings.TrimSpace(line))
		if (strings.HasPrefix(up, "ENV ") || strings.HasPrefix(up, "ARG ")) && regexp.MustCompile(`PASSWORD|TOKEN|SECRET`).MatchString(up) {
			t.Errorf("deploy/Dockerfile bakes a secret: %s", line)
		}
	}
	for _, stage := range []string{"ingester", "simulator"} {
		block := df[strings.Index(df, "AS "+stage):]
		if i := strings.Index(block[3:], "\nFROM "); i > 0 {
			block = block[:i]
		}
		if !strings.Contains(block, "USER 65532") {
			t.Errorf("image %s must run as non-root (USER 65532)", stage)
		}
	}
	var plug struct {
		Executable string `json:"executable"`
		ID         string `json:"id"`
	}
	if err := json.Unmarshal([]byte(readFile(t, filepath.Join(root, "src", "plugin.json"))), &plug); err != nil || plug.ID != pluginID || plug.Executable != "gpx_fieldline" {
		t.Errorf("src/plugin.json: id %q executable %q (%v)", plug.ID, plug.Executable, err)
	}
}

// TestComposeSecrets: every password or token in the compose file comes from a variable (with at most a
// "change-me" demo default), and every variable the file uses is listed in .env.example.
func TestComposeSecrets(t *testing.T) {
	raw := readFile(t, filepath.Join(root, "docker-compose.yaml"))
	var doc struct {
		Services map[string]struct {
			Environment map[string]string `yaml:"environment"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal([]byte(raw), &doc); err != nil {
		t.Fatal(err)
	}
	secretKey := regexp.MustCompile(`PASSWORD|TOKEN|SECRET`)
	varRef := regexp.MustCompile(`^\$\{[A-Z0-9_]+(:?-[^}]*)?\}$`)
	for svc, s := range doc.Services {
		for k, v := range s.Environment {
			if !secretKey.MatchString(k) {
				continue
			}
			if !varRef.MatchString(v) {
				t.Errorf("%s: %s=%q is a literal secret: use ${VAR:-change-me…}", svc, k, v)
				continue
			}
			if _, def, ok := strings.Cut(strings.Trim(v, "${}"), ":-"); ok && def != "" && !strings.HasPrefix(def, "change-me") {
				t.Errorf("%s: %s defaults to %q: demo defaults must be visibly placeholders (change-me…)", svc, k, def)
			}
		}
	}
	example := readFile(t, filepath.Join(root, ".env.example"))
	for _, m := range regexp.MustCompile(`\$\{([A-Z0-9_]+)`).FindAllStringSubmatch(raw, -1) {
		if !regexp.MustCompile(`(?m)^` + m[1] + `=`).MatchString(example) {
			t.Errorf("docker-compose.yaml uses ${%s}, which .env.example does not list", m[1])
		}
	}
	// The example file itself loads, and its values reach the services.
	env := map[string]string{}
	for _, line := range strings.Split(example, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(strings.TrimSpace(line), "#") {
			env[k] = v
		}
	}
	env["FIELDLINE_PG_ADMIN_PASSWORD"] = "from-dot-env"
	p := load(t, env)
	if got := envOf(p.Services["timescaledb"])["POSTGRES_PASSWORD"]; got != "from-dot-env" {
		t.Errorf("POSTGRES_PASSWORD = %q, want the .env value", got)
	}
	// InfluxDB's setup refuses passwords under 8 characters (the stack would never become healthy).
	if pw := envOf(load(t, map[string]string{}).Services["influxdb"])["DOCKER_INFLUXDB_INIT_PASSWORD"]; len(pw) < 8 || len(env["INFLUXDB_ADMIN_PASSWORD"]) < 8 {
		t.Errorf("InfluxDB admin password default %q / .env.example %q: InfluxDB wants at least 8 characters", pw, env["INFLUXDB_ADMIN_PASSWORD"])
	}
	if !strings.Contains(example, "at least 8 characters") || !strings.Contains(example, "empty volumes") {
		t.Error(".env.example must say which secrets only take effect on empty volumes and the InfluxDB password minimum")
	}
}

// composeEndpoint checks that host:port names a compose service that listens on that container port.
func composeEndpoint(t *testing.T, p *types.Project, what, hostport string) string {
	t.Helper()
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		t.Errorf("%s %q: %v", what, hostport, err)
		return ""
	}
	s, ok := p.Services[host]
	if !ok {
		t.Errorf("%s: host %q is not a compose service (%v)", what, host, p.ServiceNames())
		return host
	}
	n, _ := strconv.Atoi(port)
	found := slices.Contains(s.Expose, port)
	for _, pc := range s.Ports {
		found = found || pc.Target == uint32(n)
	}
	if !found {
		t.Errorf("%s: %s does not serve container port %s (ports %+v, expose %v)", what, host, port, s.Ports, s.Expose)
	}
	return host
}

func hostPort(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("%q: %v", raw, err)
	}
	return u.Host
}

// expandGrafanaEnv expands ${VAR} / $VAR as Grafana does in provisioning files, from the grafana service's
// environment; a variable the service does not set is an error (Grafana would expand it to "").
func expandGrafanaEnv(t *testing.T, s string, env map[string]string) string {
	t.Helper()
	return os.Expand(s, func(k string) string {
		v, ok := env[k]
		if !ok {
			t.Errorf("provisioning uses $%s, which the grafana service's environment does not set", k)
		}
		return v
	})
}

type dsFile struct {
	APIVersion  int `yaml:"apiVersion"`
	Datasources []struct {
		Name           string            `yaml:"name"`
		UID            string            `yaml:"uid"`
		Type           string            `yaml:"type"`
		Access         string            `yaml:"access"`
		JSONData       map[string]any    `yaml:"jsonData"`
		SecureJSONData map[string]string `yaml:"secureJsonData"`
	} `yaml:"datasources"`
}

// TestProvisionedDatasource: the data source points at the compose services with the credentials the
// services are created with, and the plugin's own settings loader accepts it.
func TestProvisionedDatasource(t *testing.T) {
	p := load(t, map[string]string{})
	graf := envOf(p.Services["grafana"])
	var f dsFile
	if err := yaml.Unmarshal([]byte(expandGrafanaEnv(t, readFile(t, filepath.Join(root, "provisioning", "datasources", "fieldline.yaml")), graf)), &f); err != nil {
		t.Fatal(err)
	}
	if f.APIVersion != 1 || len(f.Datasources) != 1 {
		t.Fatalf("want apiVersion 1 and one data source, got %+v", f)
	}
	ds := f.Datasources[0]
	if ds.UID != dsUID || ds.Type != pluginID {
		t.Fatalf("data source uid %q type %q, want %q %q", ds.UID, ds.Type, dsUID, pluginID)
	}
	jsonData, err := json.Marshal(ds.JSONData)
	if err != nil {
		t.Fatal(err)
	}
	settings, err := plugin.LoadSettings(backend.DataSourceInstanceSettings{UID: ds.UID, JSONData: jsonData, DecryptedSecureJSONData: ds.SecureJSONData})
	if err != nil {
		t.Fatalf("the plugin rejects the provisioned settings: %v", err)
	}
	if settings.Postgres == nil || settings.Influx == nil || settings.MQTT == nil {
		t.Fatalf("settings: %+v", settings)
	}
	composeEndpoint(t, p, "postgres.host", settings.Postgres.Host)
	composeEndpoint(t, p, "influx.url", hostPort(t, settings.Influx.URL))
	composeEndpoint(t, p, "mqtt.url", hostPort(t, settings.MQTT.URL))

	pg, ix := envOf(p.Services["timescaledb"]), envOf(p.Services["influxdb"])
	// Grafana's role is the SELECT-only fieldline_reader that deploy/initdb creates, with its own password:
	// neither the bootstrap superuser nor the ingester's role, whose passwords Grafana never sees.
	if settings.Postgres.Database != pg["POSTGRES_DB"] || settings.Postgres.User != "fieldline_reader" || settings.Postgres.Password != pg["FIELDLINE_PG_READER_PASSWORD"] {
		t.Errorf("postgres database/user/password: want POSTGRES_DB, fieldline_reader and the timescaledb service's FIELDLINE_PG_READER_PASSWORD")
	}
	ingesterURL, _ := url.Parse(envOf(p.Services["ingester"])["FIELDLINE_POSTGRES_URL"])
	if settings.Postgres.User == pg["POSTGRES_USER"] || settings.Postgres.User == ingesterURL.User.Username() {
		t.Errorf("Grafana's role %q is the bootstrap user or the ingester's", settings.Postgres.User)
	}
	for _, k := range []string{"FIELDLINE_PG_PASSWORD", "FIELDLINE_PG_ADMIN_PASSWORD", "PGPASSWORD", "POSTGRES_PASSWORD"} {
		if _, ok := graf[k]; ok {
			t.Errorf("the grafana service's environment holds %s: Grafana needs only the reader's password", k)
		}
	}
	if settings.Influx.Org != ix["DOCKER_INFLUXDB_INIT_ORG"] || settings.Influx.Bucket != ix["DOCKER_INFLUXDB_INIT_BUCKET"] || settings.Influx.Token != ix["DOCKER_INFLUXDB_INIT_ADMIN_TOKEN"] {
		t.Errorf("influx org/bucket/token do not match the influxdb service's init values")
	}
	if settings.Postgres.Password == "" || settings.Influx.Token == "" {
		t.Error("postgres password and influx token must reach the data source")
	}
	// Secrets are only ever variables in the file.
	rawFile := readFile(t, filepath.Join(root, "provisioning", "datasources", "fieldline.yaml"))
	for k := range ds.SecureJSONData {
		if !regexp.MustCompile(`(?m)^\s*` + k + `:\s*\$\{?[A-Z0-9_]+\}?\s*$`).MatchString(rawFile) {
			t.Errorf("secureJsonData.%s must be an environment variable reference", k)
		}
	}
}

// ingesterConfig loads deploy/ingester.yaml with the ingester's own configuration loader and the ingester
// service's environment, and checks that its endpoints are compose services.
func ingesterConfig(t *testing.T, p *types.Project) config.Config {
	t.Helper()
	s := p.Services["ingester"]
	var cfgPath string
	for i, a := range s.Command {
		if a == "-config" && i+1 < len(s.Command) {
			cfgPath = s.Command[i+1]
		}
	}
	host := ""
	for _, v := range s.Volumes {
		if v.Type == types.VolumeTypeBind && v.Target == cfgPath {
			host = v.Source
		}
	}
	if host == "" {
		t.Fatalf("ingester: -config %q is not a bind-mounted file", cfgPath)
	}
	env := envOf(s)
	cfg, err := config.Load([]string{"-config", host}, func(k string) string { return env[k] }, os.Stderr)
	if err != nil {
		t.Fatalf("ingester configuration (deploy/ingester.yaml + compose environment): %v", err)
	}
	composeEndpoint(t, p, "ingester mqtt.url", hostPort(t, cfg.MQTT.URL))
	composeEndpoint(t, p, "ingester influx.url", hostPort(t, cfg.Influx.URL))
	composeEndpoint(t, p, "ingester postgres.url", hostPort(t, env["FIELDLINE_POSTGRES_URL"]))
	pg, ix := envOf(p.Services["timescaledb"]), envOf(p.Services["influxdb"])
	if u, _ := url.Parse(env["FIELDLINE_POSTGRES_URL"]); u.User.Username() != "fieldline" || u.User.Username() == pg["POSTGRES_USER"] {
		t.Errorf("ingester: role %q, want fieldline (created by deploy/initdb), never the bootstrap superuser %q", u.User.Username(), pg["POSTGRES_USER"])
	}
	if env["PGPASSWORD"] != pg["FIELDLINE_PG_PASSWORD"] || cfg.Influx.Token != ix["DOCKER_INFLUXDB_INIT_ADMIN_TOKEN"] || cfg.Influx.Org != ix["DOCKER_INFLUXDB_INIT_ORG"] || cfg.Influx.Bucket != ix["DOCKER_INFLUXDB_INIT_BUCKET"] {
		t.Error("ingester credentials do not match the timescaledb/influxdb services")
	}
	var filters []string
	for _, sub := range cfg.MQTT.Subs {
		filters = append(filters, sub.Filter)
	}
	for _, f := range []string{"pico/status", "iiot/status", "pico/+/+", "iiot/+/+", "pico/json"} {
		if !slices.Contains(filters, f) {
			t.Errorf("ingester subscriptions %v lack %s (the simulator publishes it)", filters, f)
		}
	}
	checkDemoRouting(t, "deploy/ingester.yaml", cfg)
	sim := envOf(p.Services["simulator"])
	composeEndpoint(t, p, "simulator broker", hostPort(t, sim["FIELDLINE_SIM_BROKER"]))
	return cfg
}

func TestIngesterConfig(t *testing.T) { ingesterConfig(t, load(t, map[string]string{})) }

// TestIngesterSampleRouting: the sample configuration's subscriptions route the demo's topics as
// deploy/ingester.yaml does (its status subscriptions before iiot/+/+).
func TestIngesterSampleRouting(t *testing.T) {
	cfg, err := config.Load([]string{"-config", filepath.Join(root, "ingester", "fieldline-ingester.sample.yaml")}, func(string) string { return "" }, os.Stderr)
	if err != nil {
		t.Fatalf("ingester/fieldline-ingester.sample.yaml: %v", err)
	}
	checkDemoRouting(t, "ingester/fieldline-ingester.sample.yaml", cfg)
}

// checkDemoRouting routes the demo's topics (fieldline-sim, the Pico W firmware) as the ingester does, to the first
// configured subscription whose filter matches (ingester/pipeline: route, in configuration order), and decodes a typical payload with that subscription's decoder: the values are readings, the retained
// status ("online"/"offline") one text state per device, metric status, never rejected.
func checkDemoRouting(t *testing.T, name string, cfg config.Config) {
	t.Helper()
	now := time.Now()
	for _, m := range []struct{ topic, payload, want string }{
		{"pico/temperature/dht22", "22.4", "reading pico/temperature/dht22 22.4"},
		{"pico/humidity/dht22", "39.7", "reading pico/humidity/dht22 39.7"},
		{"pico/temperature/internal", "30.6", "reading pico/temperature/internal 30.6"},
		{"iiot/node1/temperature", "27.6", "reading node1/temperature/ 27.6"},
		{"iiot/node1/gas_resistance", "101169", "reading node1/gas_resistance/ 101169"},
		{"iiot/signal/rssi", "-39", "reading signal/rssi/ -39"},
		{"iiot/stats/crc_errors", "0", "reading stats/crc_errors/ 0"},
		{"pico/status", "online", "state pico/status/ online"},
		{"pico/status", "offline", "state pico/status/ offline"},
		{"iiot/status", "online", "state gateway/status/ online"},
		{"iiot/status", "offline", "state gateway/status/ offline"},
	} {
		i := slices.IndexFunc(cfg.MQTT.Subs, func(s config.Subscription) bool { return mqttconn.Match(s.Filter, m.topic) })
		if i < 0 {
			t.Errorf("%s: no subscription matches %s", name, m.topic)
			continue
		}
		// A broker may deliver a message once per matching subscription: one filter per topic, or it is stored twice.
		for _, other := range cfg.MQTT.Subs[i+1:] {
			if mqttconn.Match(other.Filter, m.topic) {
				t.Errorf("%s: %s matches both %s and %s", name, m.topic, cfg.MQTT.Subs[i].Filter, other.Filter)
			}
		}
		dec, err := cfg.NewDecoder(cfg.MQTT.Subs[i])
		if err != nil {
			t.Fatalf("%s: subscription %s: %v", name, cfg.MQTT.Subs[i].Filter, err)
		}
		rs, err := dec.Decode(m.topic, []byte(m.payload), now, nil)
		var got []string
		for _, r := range rs {
			v := strconv.FormatFloat(r.Value, 'f', -1, 64)
			kind := "reading"
			if r.IsState() {
				kind, v = "state", r.Text
			}
			got = append(got, fmt.Sprintf("%s %s/%s/%s %s", kind, r.Device, r.Metric, r.Sensor, v))
		}
		if err != nil || len(got) != 1 || got[0] != m.want {
			t.Errorf("%s: %s %q goes to subscription %s: %v, error %v; want %s", name, m.topic, m.payload, cfg.MQTT.Subs[i].Filter, got, err, m.want)
		}
	}
}

func atoi(s string) int { n, _ := strconv.Atoi(s); return n }

// hostPath maps a path inside the grafana container to the repository through its bind mounts.
func hostPath(t *testing.T, s types.ServiceConfig, inContainer string) string {
	t.Helper()
	for _, v := range s.Volumes {
		if v.Type == types.VolumeTypeBind && (inContainer == v.Target || strings.HasPrefix(inContainer, v.Target+"/")) {
			return filepath.Join(v.Source, strings.TrimPrefix(inContainer, v.Target))
		}
	}
	t.Fatalf("%s is not inside a bind mount of %s", inContainer, s.Name)
	return ""
}

type dashboard struct {
	UID         string  `json:"uid"`
	Title       string  `json:"title"`
	Panels      []panel `json:"panels"`
	Annotations struct {
		List []annotation `json:"list"`
	} `json:"annotations"`
	Templating struct {
		List []struct {
			Name       string          `json:"name"`
			Type       string          `json:"type"`
			Datasource *dsRef          `json:"datasource"`
			Query      json.RawMessage `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

// annotation is a dashboard's annotation query (annotations.list): Grafana sends target to the data source.
type annotation struct {
	Name       string          `json:"name"`
	Datasource *dsRef          `json:"datasource"`
	Enable     bool            `json:"enable"`
	IconColor  string          `json:"iconColor"`
	BuiltIn    int             `json:"builtIn"`
	Target     json.RawMessage `json:"target"`
}

type dsRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type panel struct {
	ID          int               `json:"id"`
	Type        string            `json:"type"`
	Title       string            `json:"title"`
	Datasource  *dsRef            `json:"datasource"`
	Targets     []json.RawMessage `json:"targets"`
	Panels      []panel           `json:"panels"` // collapsed rows
	FieldConfig struct {
		Defaults struct {
			Unit       string `json:"unit"`
			Thresholds *struct {
				Steps []struct {
					Color string   `json:"color"`
					Value *float64 `json:"value"`
				} `json:"steps"`
			} `json:"thresholds"`
		} `json:"defaults"`
	} `json:"fieldConfig"`
}

func (p panel) thresholds() string {
	var s []string
	if p.FieldConfig.Defaults.Thresholds == nil {
		return ""
	}
	for _, st := range p.FieldConfig.Defaults.Thresholds.Steps {
		v := "base"
		if st.Value != nil {
			v = strconv.FormatFloat(*st.Value, 'f', -1, 64)
		}
		s = append(s, st.Color+"@"+v)
	}
	return strings.Join(s, " ")
}

// interpolate replaces dashboard variables the way the frontend does before the backend sees a query
// (multi-value variables become "a,b"); Grafana's own macros in code queries stay for the backend.
func interpolate(raw json.RawMessage) json.RawMessage {
	return json.RawMessage(strings.NewReplacer("${node}", "node1,node2", "$node", "node1,node2").Replace(string(raw)))
}

// TestProvisionedDashboards: every query in every dashboard decodes with the backend's own parser
// (plugin.ParseQuery) and references the provisioned data source; the panels the field reports describe exist.
func TestProvisionedDashboards(t *testing.T) {
	p := load(t, map[string]string{})
	graf := p.Services["grafana"]
	var prov struct {
		APIVersion int `yaml:"apiVersion"`
		Providers  []struct {
			Name    string `yaml:"name"`
			Type    string `yaml:"type"`
			Folder  string `yaml:"folder"`
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	if err := yaml.Unmarshal([]byte(readFile(t, filepath.Join(root, "provisioning", "dashboards", "fieldline.yaml"))), &prov); err != nil {
		t.Fatal(err)
	}
	if prov.APIVersion != 1 || len(prov.Providers) != 1 || prov.Providers[0].Type != "file" {
		t.Fatalf("dashboard provider: %+v", prov)
	}
	dir := hostPath(t, graf, prov.Providers[0].Options.Path)
	home := hostPath(t, graf, envOf(graf)["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"])
	exists(t, home, "GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH")

	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	dashboards := map[string]dashboard{}
	uids := map[string]bool{}
	queries := 0
	for _, file := range files {
		var d dashboard
		if err := json.Unmarshal([]byte(readFile(t, file)), &d); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if d.UID == "" || uids[d.UID] {
			t.Errorf("%s: uid %q missing or duplicated", file, d.UID)
		}
		uids[d.UID] = true
		dashboards[d.Title] = d
		for _, v := range d.Templating.List {
			if v.Type != "query" {
				continue
			}
			if v.Datasource == nil || v.Datasource.UID != dsUID || v.Datasource.Type != pluginID {
				t.Errorf("%s: variable %s: data source %+v, want uid %s", d.Title, v.Name, v.Datasource, dsUID)
			}
			q, err := plugin.ParseQuery(v.Query)
			if err != nil || q.Variable == "" {
				t.Errorf("%s: variable %s: query %s: %v (variable %q)", d.Title, v.Name, v.Query, err, q.Variable)
			}
		}
		var walk func([]panel)
		walk = func(ps []panel) {
			for _, pn := range ps {
				walk(pn.Panels)
				if pn.Type == "row" {
					continue
				}
				if pn.Datasource == nil || pn.Datasource.UID != dsUID || pn.Datasource.Type != pluginID {
					t.Errorf("%s / %s: panel data source %+v, want uid %s", d.Title, pn.Title, pn.Datasource, dsUID)
				}
				if len(pn.Targets) == 0 {
					t.Errorf("%s / %s: no queries", d.Title, pn.Title)
				}
				for _, raw := range pn.Targets {
					var ref struct {
						RefID      string `json:"refId"`
						Datasource *dsRef `json:"datasource"`
					}
					_ = json.Unmarshal(raw, &ref)
					if ref.Datasource == nil || ref.Datasource.UID != dsUID || ref.Datasource.Type != pluginID {
						t.Errorf("%s / %s / %s: query data source %+v, want uid %s", d.Title, pn.Title, ref.RefID, ref.Datasource, dsUID)
					}
					if _, err := plugin.ParseQuery(interpolate(raw)); err != nil {
						t.Errorf("%s / %s / %s: the backend rejects the query: %v\n%s", d.Title, pn.Title, ref.RefID, err, raw)
					}
					queries++
				}
			}
		}
		walk(d.Panels)
		for _, a := range d.Annotations.List {
			if a.BuiltIn == 1 {
				continue // Grafana's own "Annotations & Alerts"
			}
			if a.Datasource == nil || a.Datasource.UID != dsUID || a.Datasource.Type != pluginID {
				t.Errorf("%s: annotation %q: data source %+v, want uid %s", d.Title, a.Name, a.Datasource, dsUID)
			}
			if _, err := plugin.ParseQuery(a.Target); err != nil {
				t.Errorf("%s: annotation %q: the backend rejects the query: %v\n%s", d.Title, a.Name, err, a.Target)
			}
			queries++
		}
	}
	if queries == 0 {
		t.Fatal("no queries found")
	}

	// What the field reports ask for.
	type want struct{ typ, device, metric, sensor, thresholds string }
	panelQueries := func(title string) map[string]want {
		out := map[string]want{}
		d, ok := dashboards[title]
		if !ok {
			t.Fatalf("no dashboard titled %q (have %v)", title, slices.Collect(mapKeys(dashboards)))
		}
		live := false
		for _, pn := range d.Panels {
			for _, raw := range pn.Targets {
				q, err := plugin.ParseQuery(interpolate(raw))
				if err != nil {
					continue
				}
				live = live || q.Live
				// The plugin streams builder SQL time series and SQL states (and MQTT); a live Flux, code or table
				// query would show its history only.
				streamed := q.Source == "sql" && (q.Mode == "builder" && q.Format != plugin.FormatTable || q.Mode == "states")
				if q.Live && q.Source != "mqtt" && !streamed {
					t.Errorf("%s / %s: live query (%s %s, format %s) is not streamed", title, pn.Title, q.Source, q.Mode, q.Format)
				}
				out[pn.Title] = want{pn.Type, strings.Join(q.Devices, ","), q.Metric, strings.Join(q.Sensors, ","), pn.thresholds()}
			}
		}
		if !live {
			t.Errorf("%s: no live query", title)
		}
		return out
	}
	check := func(dash, title string, w want) {
		t.Helper()
		got, ok := panelQueries(dash)[title]
		if !ok {
			t.Errorf("%s: no panel %q", dash, title)
			return
		}
		if w.thresholds == "" {
			got.thresholds = ""
		}
		if got != w {
			t.Errorf("%s / %s:\n got %+v\nwant %+v", dash, title, got, w)
		}
	}
	tempThresholds := "green@base yellow@30 red@35"
	check("Pico W live", "DHT22 temperature", want{"stat", "pico", "temperature", "dht22", ""})
	check("Pico W live", "DHT22 humidity", want{"stat", "pico", "humidity", "dht22", ""})
	check("Pico W live", "Chip temperature (RP2040)", want{"stat", "pico", "temperature", "internal", ""})
	check("Pico W live", "Live: temperature and humidity", want{"timeseries", "pico", "humidity", "dht22", ""})
	check("Environment", "Current temperature", want{"stat", "node1,node2", "temperature", "", tempThresholds})
	check("Environment", "Current humidity", want{"stat", "node1,node2", "humidity", "", ""})
	check("Environment", "Temperature comparison", want{"timeseries", "node1,node2", "temperature", "", tempThresholds})
	check("Environment", "Humidity comparison", want{"timeseries", "node1,node2", "humidity", "", ""})
	check("Environment", "Gas resistance (air quality)", want{"timeseries", "node1,node2", "gas_resistance", "", ""})
	check("Signal & stats", "RSSI", want{"gauge", "signal", "rssi", "", "red@base yellow@-80 green@-60"})
	check("Signal & stats", "SNR", want{"timeseries", "signal", "snr", "", ""})
	check("Signal & stats", "Packets received", want{"stat", "stats", "packets_received", "", ""})
	if got := panelQueries("Signal & stats")["Error rate"]; got.typ != "gauge" {
		t.Errorf("Signal & stats: error rate panel %+v", got)
	}

	// The retained status (pico/status, iiot/status; value_type text in deploy/ingester.yaml): a live
	// state timeline per device, and the last will's "offline" as an annotation.
	check("Pico W live", "Device status", want{"state-timeline", "pico", "status", "", ""})
	check("Signal & stats", "Device status", want{"state-timeline", "gateway", "status", "", ""})
	for _, title := range []string{"Pico W live", "Signal & stats"} {
		for _, pn := range dashboards[title].Panels {
			if pn.Type != "state-timeline" {
				continue
			}
			var q struct{ Mode string }
			if err := json.Unmarshal(pn.Targets[0], &q); err != nil || q.Mode != "states" {
				t.Errorf("%s / %s: mode %q, want states", title, pn.Title, q.Mode)
			}
		}
		var found bool
		for _, a := range dashboards[title].Annotations.List {
			if a.Name != "Went offline" {
				continue
			}
			found = true
			var q struct{ RefID, Source, Mode, Metric, State string }
			if err := json.Unmarshal(a.Target, &q); err != nil || !a.Enable || a.IconColor != "red" ||
				q != (struct{ RefID, Source, Mode, Metric, State string }{"Anno", "sql", "states", "status", "offline"}) {
				t.Errorf("%s: annotation %q: enable %v, iconColor %q, target %s (%v)", title, a.Name, a.Enable, a.IconColor, a.Target, err)
			}
		}
		if !found {
			t.Errorf("%s: no \"Went offline\" annotation", title)
		}
	}
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

type alertFile struct {
	APIVersion int `yaml:"apiVersion"`
	Groups     []struct {
		OrgID    int    `yaml:"orgId"`
		Name     string `yaml:"name"`
		Folder   string `yaml:"folder"`
		Interval string `yaml:"interval"`
		Rules    []struct {
			UID          string `yaml:"uid"`
			Title        string `yaml:"title"`
			Condition    string `yaml:"condition"`
			For          string `yaml:"for"`
			NoDataState  string `yaml:"noDataState"`
			ExecErrState string `yaml:"execErrState"`
			Data         []struct {
				RefID             string `yaml:"refId"`
				DatasourceUID     string `yaml:"datasourceUid"`
				RelativeTimeRange struct {
					From int64 `yaml:"from"`
					To   int64 `yaml:"to"`
				} `yaml:"relativeTimeRange"`
				Model map[string]any `yaml:"model"`
			} `yaml:"data"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

// TestProvisionedAlertRules: the rules parse with the expected structure, their data-source queries decode
// with the backend's parser, expressions reference existing refIds, and the thresholds are the reports'.
func TestProvisionedAlertRules(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(root, "provisioning", "alerting", "*.yaml"))
	if len(files) == 0 {
		t.Fatal("no alert rule files in provisioning/alerting")
	}
	type summary struct {
		threshold    string
		window       int64
		noData, for_ string
	}
	rules := map[string]summary{}
	for _, file := range files {
		var f alertFile
		dec := yaml.NewDecoder(strings.NewReader(readFile(t, file)))
		dec.KnownFields(true)
		if err := dec.Decode(&f); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if f.APIVersion != 1 || len(f.Groups) == 0 {
			t.Fatalf("%s: apiVersion %d, %d groups", file, f.APIVersion, len(f.Groups))
		}
		for _, g := range f.Groups {
			if g.OrgID != 1 || g.Name == "" || g.Folder == "" {
				t.Errorf("group %+v: orgId, name and folder are required", g.Name)
			}
			if d, err := time.ParseDuration(g.Interval); err != nil || d <= 0 || d%(10*time.Second) != 0 {
				t.Errorf("group %s: interval %q must be a positive multiple of 10s", g.Name, g.Interval)
			}
			for _, r := range g.Rules {
				if r.UID == "" || r.Title == "" || r.Condition == "" || len(r.Data) == 0 {
					t.Errorf("rule %q: uid, title, condition and data are required", r.Title)
					continue
				}
				if _, err := time.ParseDuration(r.For); err != nil {
					t.Errorf("rule %s: for %q: %v", r.UID, r.For, err)
				}
				if !slices.Contains([]string{"Alerting", "NoData", "OK", "KeepLast"}, r.NoDataState) || !slices.Contains([]string{"Alerting", "Error", "OK", "KeepLast"}, r.ExecErrState) {
					t.Errorf("rule %s: noDataState %q execErrState %q", r.UID, r.NoDataState, r.ExecErrState)
				}
				refs := map[string]bool{}
				s := summary{noData: r.NoDataState, for_: r.For}
				for _, d := range r.Data {
					if d.RefID == "" || refs[d.RefID] || d.Model["refId"] != d.RefID {
						t.Errorf("rule %s: refId %q missing, duplicated, or not the model's", r.UID, d.RefID)
					}
					refs[d.RefID] = true
					switch d.DatasourceUID {
					case dsUID:
						raw, _ := json.Marshal(d.Model)
						q, err := plugin.ParseQuery(raw)
						if err != nil {
							t.Errorf("rule %s / %s: the backend rejects the query: %v", r.UID, d.RefID, err)
						}
						if q.Live {
							t.Errorf("rule %s / %s: alert queries must not be live", r.UID, d.RefID)
						}
						if ds, _ := d.Model["datasource"].(map[string]any); ds["uid"] != dsUID || ds["type"] != pluginID {
							t.Errorf("rule %s / %s: model datasource %v", r.UID, d.RefID, d.Model["datasource"])
						}
						if d.RelativeTimeRange.From <= d.RelativeTimeRange.To {
							t.Errorf("rule %s / %s: relativeTimeRange %+v is empty", r.UID, d.RefID, d.RelativeTimeRange)
						}
						s.window = d.RelativeTimeRange.From
					case "__expr__":
						typ, _ := d.Model["type"].(string)
						expr, _ := d.Model["expression"].(string)
						if !slices.Contains([]string{"reduce", "threshold", "math", "resample", "classic_conditions"}, typ) {
							t.Errorf("rule %s / %s: expression type %q", r.UID, d.RefID, typ)
						}
						if typ != "math" && !refs[expr] {
							t.Errorf("rule %s / %s: expression %q refers to no earlier refId", r.UID, d.RefID, expr)
						}
						if typ == "threshold" {
							conds, _ := d.Model["conditions"].([]any)
							if len(conds) == 1 {
								ev := conds[0].(map[string]any)["evaluator"].(map[string]any)
								s.threshold = fmt.Sprint(ev["type"], ev["params"])
							}
						}
					default:
						t.Errorf("rule %s / %s: datasourceUid %q, want %s or __expr__", r.UID, d.RefID, d.DatasourceUID, dsUID)
					}
				}
				if !refs[r.Condition] {
					t.Errorf("rule %s: condition %q is not a refId", r.UID, r.Condition)
				}
				rules[r.UID] = s
			}
		}
	}
	if got, want := rules["fieldline-node-temperature-high"], (summary{"gt[35]", 300, "OK", "0s"}); got != want {
		t.Errorf("temperature rule %+v, want %+v (5-minute mean above 35 °C)", got, want)
	}
	if got := rules["fieldline-node-silent"]; got.threshold != "gt[120]" || got.noData != "Alerting" {
		t.Errorf("silent rule %+v, want silence > 120 s and no data → Alerting", got)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestComposeProvisioning: what the grafana service mounts passes deploy/provcheck (what Grafana checks when it
// loads provisioning), with the variables expanded from the grafana service's environment as Grafana does.
func TestComposeProvisioning(t *testing.T) {
	p := load(t, map[string]string{})
	graf := p.Services["grafana"]
	dir := hostPath(t, graf, "/etc/grafana/provisioning")
	env := envOf(graf)
	problems, err := provcheck.Check(dir, provcheck.Options{
		PluginID:           pluginID,
		JSONDataKeys:       plugin.JSONDataKeys(),
		SecureJSONDataKeys: plugin.SecureJSONDataKeys,
		Env:                func(k string) string { return expandGrafanaEnv(t, "${"+k+"}", env) },
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, pr := range problems {
		t.Error(pr)
	}
}

// TestComposeRoles: the database init script is mounted as one file beside the image's own scripts (a
// directory mount would hide the script that creates the timescaledb extension), and it gets both passwords.
func TestComposeRoles(t *testing.T) {
	p := load(t, map[string]string{})
	ts := p.Services["timescaledb"]
	found := false
	for _, v := range ts.Volumes {
		if v.Target == "/docker-entrypoint-initdb.d" {
			t.Error("timescaledb: do not mount over /docker-entrypoint-initdb.d (it holds the image's own init scripts)")
		}
		if v.Type == types.VolumeTypeBind && strings.HasPrefix(v.Target, "/docker-entrypoint-initdb.d/") {
			found = filepath.Base(v.Source) == filepath.Base(v.Target) && v.ReadOnly
			inRepo(t, v.Source, "timescaledb init script")
		}
	}
	if !found {
		t.Error("timescaledb: mount deploy/initdb/10-fieldline-roles.sh read-only into /docker-entrypoint-initdb.d/")
	}
	env := envOf(ts)
	for _, k := range []string{"FIELDLINE_PG_PASSWORD", "FIELDLINE_PG_READER_PASSWORD", "POSTGRES_USER", "POSTGRES_DB"} {
		if env[k] == "" {
			t.Errorf("timescaledb: %s is not set (the init script needs it)", k)
		}
	}
	if env["POSTGRES_USER"] == "fieldline" || env["POSTGRES_USER"] == "fieldline_reader" {
		t.Errorf("timescaledb: the bootstrap superuser %q must not be a role the ingester or Grafana use", env["POSTGRES_USER"])
	}
}
