package pluginpkg

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend/grpcplugin"
	"github.com/grafana/grafana-plugin-sdk-go/genproto/pluginv2"
	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/fieldline-iot/fieldline/internal/testsvc"
	"github.com/fieldline-iot/fieldline/pkg/plugin"
)

// Fieldline's schema of the plugin.json fields Grafana reads (testdata/README.md).
//
//go:embed testdata/plugin.schema.json
var pluginSchemaJSON []byte

func compileSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(pluginSchemaJSON))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat() // "uri" and "email" are checked, not just annotations
	const url = "https://grafana.com/plugin-metadata"
	if err := c.AddResource(url, doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile(url)
	if err != nil {
		t.Fatal(err)
	}
	return sch
}

func validate(sch *jsonschema.Schema, raw []byte) error {
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return err
	}
	return sch.Validate(inst)
}

func readJSON(t *testing.T, path string) []byte {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// TestPluginJSONSchema validates src/plugin.json and the built dist/plugin.json against the schema and
// then checks what the schema leaves open: the values this data source needs.
func TestPluginJSONSchema(t *testing.T) {
	opts := distFixture(t)
	sch := compileSchema(t)
	for _, path := range []string{filepath.Join("src", "plugin.json"), filepath.Join(opts.Dist, "plugin.json")} {
		if err := validate(sch, readJSON(t, path)); err != nil {
			t.Errorf("%s does not match the plugin.json schema:\n%v", path, err)
		}
	}

	var pj struct {
		ID         string `json:"id"`
		Type       string `json:"type"`
		Backend    *bool  `json:"backend"`
		Executable string `json:"executable"`
		Streaming  *bool  `json:"streaming"`
		Alerting   *bool  `json:"alerting"`
		Metrics    *bool  `json:"metrics"`
		Info       struct {
			Version string `json:"version"`
			Updated string `json:"updated"`
		} `json:"info"`
	}
	if err := json.Unmarshal(readJSON(t, filepath.Join(opts.Dist, "plugin.json")), &pj); err != nil {
		t.Fatal(err)
	}
	if pj.ID != plugin.PluginID {
		t.Errorf("id %q, but the backend serves %q", pj.ID, plugin.PluginID)
	}
	if pj.Type != "datasource" {
		t.Errorf("type %q, want datasource", pj.Type)
	}
	for name, b := range map[string]*bool{"backend": pj.Backend, "streaming": pj.Streaming, "alerting": pj.Alerting, "metrics": pj.Metrics} {
		if b == nil || !*b {
			t.Errorf("%s is %v, want true", name, b)
		}
	}
	if pj.Executable != "gpx_fieldline" {
		t.Errorf("executable %q, want gpx_fieldline (pkg/main.go's command)", pj.Executable)
	}
	// The schema's version pattern lets "%VERSION%" through (its alternation is not anchored as a whole): the
	// built file must carry package.json's version and a date.
	var pkg struct{ Version string }
	if err := json.Unmarshal(readJSON(t, "package.json"), &pkg); err != nil {
		t.Fatal(err)
	}
	if pj.Info.Version != pkg.Version {
		t.Errorf("dist plugin.json info.version %q, want package.json's %q", pj.Info.Version, pkg.Version)
	}
	if _, err := time.Parse("2006-01-02", pj.Info.Updated); err != nil {
		t.Errorf("dist plugin.json info.updated %q: %v", pj.Info.Updated, err)
	}
}

// TestSchemaRejects makes sure the schema validation is not vacuous: wrong types, missing and unknown fields,
// malformed ranges fail it.
func TestSchemaRejects(t *testing.T) {
	distFixture(t)
	sch := compileSchema(t)
	base := readJSON(t, filepath.Join("src", "plugin.json"))
	for _, tc := range []struct {
		name   string
		mutate func(m map[string]any)
	}{
		{"backend not a boolean", func(m map[string]any) { m["backend"] = "yes" }},
		{"streaming not a boolean", func(m map[string]any) { m["streaming"] = 1 }},
		{"unknown type", func(m map[string]any) { m["type"] = "data-source" }},
		{"id without a type suffix", func(m map[string]any) { m["id"] = "fieldline-telemetry" }},
		{"executable not a string", func(m map[string]any) { m["executable"] = []any{"gpx_fieldline"} }},
		{"no info", func(m map[string]any) { delete(m, "info") }},
		{"no logos", func(m map[string]any) { delete(m["info"].(map[string]any), "logos") }},
		{"link url not a URI", func(m map[string]any) {
			m["info"].(map[string]any)["links"] = []any{map[string]any{"name": "x", "url": "not a uri"}}
		}},
		{"unknown top-level field", func(m map[string]any) { m["executables"] = "gpx_fieldline" }},
		{"grafanaDependency not a range", func(m map[string]any) { m["dependencies"].(map[string]any)["grafanaDependency"] = "latest" }},
		{"no grafanaDependency", func(m map[string]any) { delete(m["dependencies"].(map[string]any), "grafanaDependency") }},
	} {
		var m map[string]any
		if err := json.Unmarshal(base, &m); err != nil {
			t.Fatal(err)
		}
		tc.mutate(m)
		raw, _ := json.Marshal(m)
		if err := validate(sch, raw); err == nil {
			t.Errorf("%s: the schema accepted it", tc.name)
		}
	}
}

// TestCheckDist: the executables plugin.json names are the ones built, for every platform under test, each an
// executable of the right object format and architecture built from ./pkg with cgo off.
func TestCheckDist(t *testing.T) {
	opts := distFixture(t)
	rep, err := Check(opts)
	if err != nil {
		t.Fatalf("Check(%s):\n%v", opts.Dist, err)
	}
	if len(rep.Binaries) != len(opts.Platforms) {
		t.Fatalf("%d binaries for %d platforms", len(rep.Binaries), len(opts.Platforms))
	}
	for i, p := range opts.Platforms {
		b := rep.Binaries[i]
		want := "gpx_fieldline_" + p.OS + "_" + p.Arch
		if p.OS == "windows" {
			want += ".exe"
		}
		if b.Name != want || b.Name != p.ExecutableName(rep.Plugin.Executable) {
			t.Errorf("%s: executable %q, want %q", p, b.Name, want)
		}
		if b.MainPackage != "github.com/fieldline-iot/fieldline/pkg" {
			t.Errorf("%s is built from %q, want ./pkg", b.Name, b.MainPackage)
		}
		extra := ""
		if b.GOARM != "" {
			extra = " GOARM=" + b.GOARM
		}
		t.Logf("%-38s %5.1f MB %s%s", b.Name, float64(b.Size)/1e6, p, extra)
	}
}

// TestCheckRejects breaks copies of the dist under test one way at a time.
func TestCheckRejects(t *testing.T) {
	opts := distFixture(t)
	host := Host()
	hostBin := host.ExecutableName("gpx_fieldline")
	other := Platform{"linux", "arm64"}
	if host == other {
		other = Platform{"linux", "amd64"}
	}
	for _, tc := range []struct {
		name      string
		platforms []Platform
		breakIt   func(t *testing.T, dist string)
		want      string
	}{
		{"version placeholder", nil, func(t *testing.T, dist string) {
			editPluginJSON(t, dist, func(m map[string]any) { m["info"].(map[string]any)["version"] = "%VERSION%" })
		}, "placeholder"},
		{"stale version", nil, func(t *testing.T, dist string) {
			editPluginJSON(t, dist, func(m map[string]any) { m["info"].(map[string]any)["version"] = "0.0.9" })
		}, "stale"},
		{"missing logo", nil, func(t *testing.T, dist string) { must(t, os.RemoveAll(filepath.Join(dist, "img"))) }, "logos.small"},
		{"missing LICENSE", nil, func(t *testing.T, dist string) { must(t, os.Remove(filepath.Join(dist, "LICENSE"))) }, "LICENSE is missing"},
		{"executable renamed in plugin.json", nil, func(t *testing.T, dist string) {
			editPluginJSON(t, dist, func(m map[string]any) { m["executable"] = "gpx_fieldline_v2" })
		}, "gpx_fieldline_v2_" + host.OS},
		{"not executable", nil, func(t *testing.T, dist string) { must(t, os.Chmod(filepath.Join(dist, hostBin), 0o644)) }, "not executable"},
		{"binary of another platform under this name", []Platform{host, other}, func(t *testing.T, dist string) {
			must(t, copyFile(filepath.Join(dist, hostBin), filepath.Join(dist, other.ExecutableName("gpx_fieldline")), 0o755))
		}, "was built for " + host.String()},
		{"not a Go binary", nil, func(t *testing.T, dist string) {
			must(t, os.WriteFile(filepath.Join(dist, hostBin), []byte("#!/bin/sh\nexit 0\n"), 0o755))
		}, "no Go build info"},
		{"stray executable", nil, func(t *testing.T, dist string) {
			must(t, os.WriteFile(filepath.Join(dist, "gpx_fieldline_freebsd_amd64"), []byte("x"), 0o755))
		}, "not one of the expected executables"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dist := filepath.Join(t.TempDir(), "dist")
			// Only the host's executable is copied: the others are not needed to break the checks.
			must(t, copyTree(opts.Dist, dist, func(rel string) bool { return !strings.HasPrefix(rel, "gpx_") || rel == hostBin }))
			tc.breakIt(t, dist)
			platforms := tc.platforms
			if platforms == nil {
				platforms = []Platform{host}
			}
			_, err := Check(Options{Dist: dist, Platforms: platforms})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Check: %v\nwant an error containing %q", err, tc.want)
			}
		})
	}
}

// TestPackage builds the zip, unpacks it and checks the tree Grafana's installer gets, the modes, the
// checksum file, that the unpacked directory passes Check again, and that its host executable is a plugin
// Grafana can start: without the magic cookie it refuses with go-plugin's message, and with Grafana's handshake
// it answers a gRPC call.
func TestPackage(t *testing.T) {
	opts := distFixture(t)
	opts.OutDir = t.TempDir()
	start := time.Now()
	art, err := Package(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("packaged %s (%d files) in %s", filepath.Base(art.Zip), len(art.Report.Files), time.Since(start).Round(time.Millisecond))
	id := art.Report.Plugin.ID
	if filepath.Base(art.Zip) != id+"-"+art.Report.Plugin.Info.Version+".zip" {
		t.Errorf("zip name %s", art.Zip)
	}

	zipBytes, err := os.ReadFile(art.Zip)
	must(t, err)
	sum := sha256.Sum256(zipBytes)
	if got := string(readJSON(t, art.SHA256File)); got != hex.EncodeToString(sum[:])+"  "+filepath.Base(art.Zip)+"\n" {
		t.Errorf("%s: %q does not match the zip", art.SHA256File, got)
	}
	if sha, err := exec.LookPath("sha256sum"); err == nil {
		cmd := exec.Command(sha, "-c", filepath.Base(art.SHA256File))
		cmd.Dir = opts.OutDir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("sha256sum -c: %v\n%s", err, out)
		}
	}

	zr, err := zip.NewReader(bytes.NewReader(zipBytes), int64(len(zipBytes)))
	must(t, err)
	top, err := TopLevelDir(zr)
	if err != nil || top != id {
		t.Fatalf("top-level directory %q (%v), want %q", top, err, id)
	}
	binaries := map[string]bool{}
	for _, p := range opts.Platforms {
		binaries[id+"/"+p.ExecutableName("gpx_fieldline")] = true
	}
	var names []string
	for _, f := range zr.File {
		names = append(names, f.Name)
		if f.CreatorVersion>>8 != 3 {
			t.Errorf("%s: creator %d, want 3 (Unix) so the mode is honoured", f.Name, f.CreatorVersion>>8)
		}
		perm := fs.FileMode(f.ExternalAttrs>>16) & fs.ModePerm
		switch {
		case f.FileInfo().IsDir():
			if perm != 0o755 || !strings.HasSuffix(f.Name, "/") {
				t.Errorf("directory %s: mode %v", f.Name, perm)
			}
		case binaries[f.Name]:
			if perm != 0o755 {
				t.Errorf("executable %s: mode %v, want 0755", f.Name, perm)
			}
		default:
			if perm != 0o644 {
				t.Errorf("%s: mode %v, want 0644", f.Name, perm)
			}
		}
	}
	for _, want := range []string{id + "/", id + "/module.js", id + "/plugin.json", id + "/README.md", id + "/LICENSE", id + "/CHANGELOG.md", id + "/img/", id + "/img/logo.svg"} {
		if !slices.Contains(names, want) {
			t.Errorf("the zip lacks %s", want)
		}
	}
	for b := range binaries {
		if !slices.Contains(names, b) {
			t.Errorf("the zip lacks %s", b)
		}
	}
	// Exactly dist/'s files, nothing else.
	var wantFiles []string
	for _, f := range art.Report.Files {
		wantFiles = append(wantFiles, id+"/"+f)
	}
	var gotFiles []string
	for _, n := range names {
		if !strings.HasSuffix(n, "/") {
			gotFiles = append(gotFiles, n)
		}
	}
	if !slices.Equal(gotFiles, wantFiles) {
		t.Errorf("zip files:\n%s\nwant dist/'s:\n%s", strings.Join(gotFiles, "\n"), strings.Join(wantFiles, "\n"))
	}
	t.Logf("zip tree:\n  %s", strings.Join(names, "\n  "))

	// Unpack as Grafana's installer does (our reader, honouring the modes) and with Info-ZIP's unzip.
	pluginsDir := filepath.Join(t.TempDir(), "plugins")
	unzipTo(t, zr, pluginsDir)
	if unz, err := exec.LookPath("unzip"); err == nil {
		dir := filepath.Join(t.TempDir(), "unzip")
		if out, err := exec.Command(unz, "-q", art.Zip, "-d", dir).CombinedOutput(); err != nil {
			t.Fatalf("unzip: %v\n%s", err, out)
		}
		if _, err := Check(Options{Dist: filepath.Join(dir, id), Platforms: opts.Platforms}); err != nil {
			t.Errorf("the tree unzip unpacked does not pass Check:\n%v", err)
		}
	}
	unpacked := filepath.Join(pluginsDir, id)
	if _, err := Check(Options{Dist: unpacked, Platforms: opts.Platforms}); err != nil {
		t.Fatalf("the unpacked plugin does not pass Check:\n%v", err)
	}

	host := Host()
	if !slices.Contains(opts.Platforms, host) {
		t.Skipf("no %s executable to run", host)
	}
	bin := filepath.Join(unpacked, host.ExecutableName("gpx_fieldline"))

	// Started by hand it must refuse, with go-plugin's message, and exit 1.
	var stderr bytes.Buffer
	cmd := exec.Command(bin)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	cmd.Stderr = &stderr
	err = cmd.Run()
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) || exitErr.ExitCode() != 1 || !strings.Contains(stderr.String(), "This binary is a plugin") {
		t.Errorf("%s without the magic cookie: %v, stderr %q; want exit status 1 and go-plugin's \"This binary is a plugin\"", bin, err, stderr.String())
	}

	var pluginLog testsvc.SyncBuffer
	// Started the way Grafana starts it (go-plugin client, Grafana's handshake, gRPC): CollectMetrics answers.
	client := goplugin.NewClient(&goplugin.ClientConfig{
		HandshakeConfig: goplugin.HandshakeConfig{
			ProtocolVersion:  grpcplugin.ProtocolVersion,
			MagicCookieKey:   grpcplugin.MagicCookieKey,
			MagicCookieValue: grpcplugin.MagicCookieValue,
		},
		VersionedPlugins: map[int]goplugin.PluginSet{
			grpcplugin.ProtocolVersion: {"diagnostics": &grpcplugin.DiagnosticsGRPCPlugin{}},
		},
		Cmd:              exec.Command(bin),
		AllowedProtocols: []goplugin.Protocol{goplugin.ProtocolGRPC},
		StartTimeout:     30 * time.Second,
		Logger:           hclog.New(&hclog.LoggerOptions{Name: "gpx_fieldline", Output: &pluginLog, Level: hclog.Warn}),
	})
	defer func() {
		client.Kill()
		if t.Failed() {
			t.Logf("plugin log:\n%s", pluginLog.String())
		}
	}()
	rpc, err := client.Client()
	if err != nil {
		t.Fatalf("handshake with %s: %v", bin, err)
	}
	if v := client.NegotiatedVersion(); v != grpcplugin.ProtocolVersion {
		t.Errorf("negotiated protocol %d, want %d", v, grpcplugin.ProtocolVersion)
	}
	raw, err := rpc.Dispense("diagnostics")
	must(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := raw.(grpcplugin.DiagnosticsClient).CollectMetrics(ctx, &pluginv2.CollectMetricsRequest{
		PluginContext: &pluginv2.PluginContext{PluginId: id},
	})
	if err != nil {
		t.Fatalf("CollectMetrics over gRPC: %v", err)
	}
	if resp.GetMetrics() == nil || len(resp.GetMetrics().GetPrometheus()) == 0 {
		t.Errorf("CollectMetrics returned no Prometheus metrics")
	}
	t.Logf("%s: handshake (protocol %d, gRPC) and CollectMetrics: %d bytes of metrics", filepath.Base(bin), client.NegotiatedVersion(), len(resp.GetMetrics().GetPrometheus()))
}

// unzipTo extracts zr under dir, creating files with the zip's permission bits (refusing paths that escape).
func unzipTo(t *testing.T, zr *zip.Reader, dir string) {
	t.Helper()
	for _, f := range zr.File {
		path := filepath.Join(dir, filepath.FromSlash(f.Name))
		if !strings.HasPrefix(path, dir+string(filepath.Separator)) {
			t.Fatalf("zip entry %q escapes the directory", f.Name)
		}
		if f.FileInfo().IsDir() {
			must(t, os.MkdirAll(path, f.Mode().Perm()))
			continue
		}
		must(t, os.MkdirAll(filepath.Dir(path), 0o755))
		rc, err := f.Open()
		must(t, err)
		out, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, f.Mode().Perm())
		must(t, err)
		_, err = io.Copy(out, rc)
		must(t, err)
		must(t, out.Close())
		rc.Close()
	}
}

func editPluginJSON(t *testing.T, dist string, edit func(map[string]any)) {
	t.Helper()
	path := filepath.Join(dist, "plugin.json")
	var m map[string]any
	must(t, json.Unmarshal(readJSON(t, path), &m))
	edit(m)
	raw, err := json.MarshalIndent(m, "", "  ")
	must(t, err)
	must(t, os.WriteFile(path, raw, 0o644))
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
