package pluginpkg

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// The tests check a real dist/: the frontend the webpack build produced and backend executables the SDK's build
// produced. They do not depend on a prior `go tool mage build`:
//
//   - frontend: the repository's dist/ when it has module.js; otherwise `npm run build` when node_modules is
//     installed; otherwise (a checkout with neither) a stand-in assembled the way the webpack config does it
//     (src/plugin.json with %VERSION%/%TODAY% replaced, src/img, the dashboards, README, LICENSE, CHANGELOG) with a stub
//     module.js — logged as such, since only the packaging, not the bundle, is then under test;
//   - backend: when dist/ already holds the executables for all six platforms (after the Build target) they
//     are checked and packaged in place; otherwise the frontend files are copied to a temporary dist and the
//     SDK's build compiles the host platform's executable into it.
//
// Nothing in the repository's dist/ is modified except by `npm run build`.

var (
	fixtureOnce sync.Once
	fixture     struct {
		root      string  // module root
		opts      Options // Dist is absolute; OutDir unset
		synthetic bool    // the frontend is a stand-in
		notes     []string
		err       error
	}
	fixtureTmp string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if fixtureTmp != "" {
		os.RemoveAll(fixtureTmp)
	}
	os.Exit(code)
}

// distFixture returns the options for the dist/ under test; it also makes the module root the working
// directory (the SDK's build and package.json are relative to it).
func distFixture(t *testing.T) Options {
	t.Helper()
	fixtureOnce.Do(setupFixture)
	if fixture.err != nil {
		t.Fatalf("prepare dist/: %v", fixture.err)
	}
	t.Chdir(fixture.root)
	for _, n := range fixture.notes {
		t.Log(n)
	}
	return fixture.opts
}

func setupFixture() {
	f := &fixture
	wd, err := os.Getwd()
	if err != nil {
		f.err = err
		return
	}
	f.root = filepath.Clean(filepath.Join(wd, "..", ".."))
	if _, err := os.Stat(filepath.Join(f.root, "go.mod")); err != nil {
		f.err = fmt.Errorf("module root not found from %s: %w", wd, err)
		return
	}
	if err := os.Chdir(f.root); err != nil {
		f.err = err
		return
	}
	defer os.Chdir(wd)
	note := func(format string, args ...any) { f.notes = append(f.notes, fmt.Sprintf(format, args...)) }

	repoDist := filepath.Join(f.root, "dist")
	frontend := repoDist
	switch {
	case exists(filepath.Join(repoDist, "module.js")):
		note("frontend: the repository's dist/ (built %s)", modTime(filepath.Join(repoDist, "module.js")))
	case exists(filepath.Join(f.root, "node_modules", ".bin", "webpack")):
		start := time.Now()
		cmd := exec.Command("npm", "run", "--silent", "build")
		cmd.Dir = f.root
		if out, err := cmd.CombinedOutput(); err != nil {
			f.err = fmt.Errorf("npm run build: %w\n%s", err, out)
			return
		}
		note("frontend: dist/ built by npm run build for this test in %s", time.Since(start).Round(time.Second))
	default:
		fixtureTmp, err = os.MkdirTemp("", "pluginpkg-")
		if err != nil {
			f.err = err
			return
		}
		frontend = filepath.Join(fixtureTmp, "frontend")
		if err := standInFrontend(f.root, frontend); err != nil {
			f.err = err
			return
		}
		f.synthetic = true
		note("frontend: STAND-IN (no dist/module.js and no node_modules): src/plugin.json with the placeholders replaced and a stub module.js")
	}

	all := true
	for _, p := range Platforms {
		all = all && exists(filepath.Join(repoDist, p.ExecutableName("gpx_fieldline")))
	}
	if all && frontend == repoDist {
		f.opts = Options{Dist: repoDist, Platforms: Platforms}
		note("backend: the six executables already in dist/ (built %s)", modTime(filepath.Join(repoDist, Host().ExecutableName("gpx_fieldline"))))
		return
	}
	if fixtureTmp == "" {
		if fixtureTmp, err = os.MkdirTemp("", "pluginpkg-"); err != nil {
			f.err = err
			return
		}
	}
	dist := filepath.Join(fixtureTmp, "dist")
	if err := copyTree(frontend, dist, func(rel string) bool { return !strings.HasPrefix(rel, "gpx_") && rel != "go_plugin_build_manifest" }); err != nil {
		f.err = err
		return
	}
	start := time.Now()
	if err := BuildBackend(dist, Host()); err != nil {
		f.err = fmt.Errorf("SDK build for %s: %w", Host(), err)
		return
	}
	note("backend: %s built with the SDK's build into a temporary dist in %s (dist/ lacks some of the six platforms; `go tool mage build` builds them all)", Host(), time.Since(start).Round(time.Second))
	f.opts = Options{Dist: dist, Platforms: []Platform{Host()}}
}

// standInFrontend assembles what the webpack config copies and rewrites, with a stub module.js.
func standInFrontend(root, dst string) error {
	var pkg struct{ Version string }
	raw, err := os.ReadFile(filepath.Join(root, "package.json"))
	if err != nil {
		return err
	}
	if err := json.Unmarshal(raw, &pkg); err != nil {
		return err
	}
	pj, err := os.ReadFile(filepath.Join(root, "src", "plugin.json"))
	if err != nil {
		return err
	}
	pjs := strings.NewReplacer("%VERSION%", pkg.Version, "%TODAY%", time.Now().UTC().Format("2006-01-02")).Replace(string(pj))
	// the bundled dashboards, as webpack.config.ts copies them
	if err := copyTree(filepath.Join(root, "provisioning", "dashboards", "fieldline"), filepath.Join(dst, "dashboards"),
		func(rel string) bool { return strings.HasSuffix(rel, ".json") }); err != nil {
		return err
	}
	if err := copyTree(filepath.Join(root, "src", "img"), filepath.Join(dst, "img"), nil); err != nil {
		return err
	}
	readme := filepath.Join(root, "src", "README.md")
	if !exists(readme) {
		readme = filepath.Join(root, "README.md")
	}
	for src, name := range map[string]string{readme: "README.md", filepath.Join(root, "LICENSE"): "LICENSE", filepath.Join(root, "CHANGELOG.md"): "CHANGELOG.md"} {
		if err := copyFile(src, filepath.Join(dst, name), 0o644); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(dst, "plugin.json"), []byte(pjs), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dst, "module.js"), []byte("define([],function(){return{}});\n"), 0o644)
}

func exists(path string) bool { _, err := os.Stat(path); return err == nil }

func modTime(path string) string {
	fi, err := os.Stat(path)
	if err != nil {
		return "?"
	}
	return fi.ModTime().Format(time.RFC3339)
}

// copyTree copies the regular files under src (keeping their permission bits) for which keep(rel) is true.
func copyTree(src, dst string, keep func(rel string) bool) error {
	return filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		if keep != nil && !keep(filepath.ToSlash(rel)) {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		return copyFile(path, filepath.Join(dst, rel), fi.Mode().Perm())
	})
}

func copyFile(src, dst string, perm os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
