package pluginpkg

import (
	"debug/buildinfo"
	"debug/elf"
	"debug/macho"
	"debug/pe"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
)

// Options says where dist/ is, where the zip goes and which platforms must have a backend executable.
type Options struct {
	Dist        string     // the built plugin directory; default "dist"
	OutDir      string     // where Package writes the zip and its .sha256; default "build"
	PackageJSON string     // the version source (the frontend build writes it into plugin.json); default "package.json"
	Platforms   []Platform // the backend executables that must be present; default Platforms
}

func (o Options) withDefaults() Options {
	if o.Dist == "" {
		o.Dist = "dist"
	}
	if o.OutDir == "" {
		o.OutDir = "build"
	}
	if o.PackageJSON == "" {
		o.PackageJSON = "package.json"
	}
	if o.Platforms == nil {
		o.Platforms = Platforms
	}
	return o
}

// PluginJSON is the part of plugin.json the checks read.
type PluginJSON struct {
	ID         string `json:"id"`
	Type       string `json:"type"`
	Name       string `json:"name"`
	Backend    bool   `json:"backend"`
	Executable string `json:"executable"`
	Streaming  bool   `json:"streaming"`
	Alerting   bool   `json:"alerting"`
	Info       struct {
		Version string `json:"version"`
		Updated string `json:"updated"`
		Logos   struct {
			Small string `json:"small"`
			Large string `json:"large"`
		} `json:"logos"`
		Screenshots []struct {
			Name string `json:"name"`
			Path string `json:"path"`
		} `json:"screenshots"`
	} `json:"info"`
	Includes []struct {
		Type string `json:"type"`
		Name string `json:"name"`
		Path string `json:"path"`
	} `json:"includes"`
	Dependencies struct {
		GrafanaDependency string `json:"grafanaDependency"`
	} `json:"dependencies"`
}

// Binary is a backend executable found in dist/ and what its Go build info and object header say.
type Binary struct {
	Platform
	Name        string // file name in dist/
	Size        int64
	MainPackage string // the main package's import path, from the binary's build info
	GOARM       string // linux/arm only
}

// Report is what Check found.
type Report struct {
	Plugin   PluginJSON
	Files    []string // every file in dist/, slash-separated relative paths, sorted
	Binaries []Binary // in Options.Platforms order
}

// RequiredFiles must be in dist/ (img/ must be a directory holding at least the logos).
var RequiredFiles = []string{"module.js", "plugin.json", "README.md", "LICENSE", "CHANGELOG.md"}

var (
	// The id pattern and the grafanaDependency pattern are those of Grafana's plugin.json schema.
	idPattern         = regexp.MustCompile(`^[0-9a-z]+\-([0-9a-z]+\-)?(app|panel|datasource|secretsmanager|transformer)$`)
	grafanaDepPattern = regexp.MustCompile(`^(<=|>=|<|>|=|~|\^)?([0-9]+)(\.[0-9x\*]+)(\.[0-9x\*]+)?(\s(<=|>=|<|=>)?([0-9]+)(\.[0-9x]+)(\.[0-9x]+))?$`)
	semverPattern     = regexp.MustCompile(`^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$`)
	datePattern       = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`)
)

// Check verifies that dist/ is a loadable plugin: the required files, a plugin.json whose build-time
// placeholders were replaced (version = package.json's), logos and screenshots that exist, and for each
// platform an executable named as Grafana expects whose Go build info and object header match that platform
// (CGO off). It reports every problem it finds, joined.
func Check(opts Options) (*Report, error) {
	opts = opts.withDefaults()
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	rep := &Report{}
	err := filepath.WalkDir(opts.Dist, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(opts.Dist, path)
			rep.Files = append(rep.Files, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", opts.Dist, err)
	}
	for _, f := range RequiredFiles {
		if !slices.Contains(rep.Files, f) {
			fail("%s/%s is missing", opts.Dist, f)
		}
	}
	if fi, err := os.Stat(filepath.Join(opts.Dist, "img")); err != nil || !fi.IsDir() {
		fail("%s/img/ is missing", opts.Dist)
	}

	raw, err := os.ReadFile(filepath.Join(opts.Dist, "plugin.json"))
	if err != nil {
		return rep, errors.Join(append(errs, err)...)
	}
	if err := json.Unmarshal(raw, &rep.Plugin); err != nil {
		return rep, errors.Join(append(errs, fmt.Errorf("%s/plugin.json: %w", opts.Dist, err))...)
	}
	pj := rep.Plugin
	if !idPattern.MatchString(pj.ID) {
		fail("plugin.json id %q does not follow Grafana's naming (org-name-type)", pj.ID)
	}
	if pj.Name == "" {
		fail("plugin.json has no name")
	}
	version, err := packageVersion(opts.PackageJSON)
	if err != nil {
		fail("%v", err)
	}
	switch v := pj.Info.Version; {
	case strings.Contains(v, "%"):
		fail("plugin.json info.version is still the placeholder %q: the frontend build (npm run build) replaces it", v)
	case !semverPattern.MatchString(v):
		fail("plugin.json info.version %q is not a semantic version", v)
	case version != "" && v != version:
		fail("plugin.json info.version %q differs from %s's %q: dist/ is stale, rerun npm run build", v, opts.PackageJSON, version)
	}
	if !datePattern.MatchString(pj.Info.Updated) {
		fail("plugin.json info.updated %q is not a YYYY-MM-DD date (the build replaces %%TODAY%%)", pj.Info.Updated)
	}
	for _, logo := range []struct{ field, path string }{{"small", pj.Info.Logos.Small}, {"large", pj.Info.Logos.Large}} {
		if logo.path == "" {
			fail("plugin.json info.logos.%s is empty", logo.field)
		} else if err := nonEmptyFile(opts.Dist, logo.path); err != nil {
			fail("plugin.json info.logos.%s: %v", logo.field, err)
		}
	}
	for _, s := range pj.Info.Screenshots {
		if err := nonEmptyFile(opts.Dist, s.Path); err != nil {
			fail("plugin.json screenshot %q: %v", s.Name, err)
		}
	}
	for _, inc := range pj.Includes {
		if inc.Type != "dashboard" || inc.Path == "" {
			continue
		}
		if err := nonEmptyFile(opts.Dist, inc.Path); err != nil {
			fail("plugin.json includes dashboard %q: %v", inc.Name, err)
			continue
		}
		var dash struct {
			Title  string           `json:"title"`
			Panels []map[string]any `json:"panels"`
		}
		if b, err := os.ReadFile(filepath.Join(opts.Dist, inc.Path)); err != nil || json.Unmarshal(b, &dash) != nil || dash.Title == "" || len(dash.Panels) == 0 {
			fail("plugin.json includes dashboard %q: %s is not a dashboard with a title and panels", inc.Name, inc.Path)
		}
	}
	if !grafanaDepPattern.MatchString(pj.Dependencies.GrafanaDependency) {
		fail("plugin.json dependencies.grafanaDependency %q is not a semver range", pj.Dependencies.GrafanaDependency)
	}

	if pj.Backend || pj.Alerting || pj.Executable != "" {
		if !pj.Backend {
			fail("plugin.json sets alerting or executable but not backend")
		}
		if pj.Executable == "" || strings.ContainsAny(pj.Executable, `/\`) {
			fail("plugin.json executable %q must be a plain file name prefix", pj.Executable)
		} else {
			rep.Binaries = checkBinaries(opts, pj.Executable, rep.Files, fail)
		}
	}
	return rep, errors.Join(errs...)
}

func checkBinaries(opts Options, exe string, files []string, fail func(string, ...any)) []Binary {
	var bins []Binary
	want := map[string]bool{}
	for _, p := range opts.Platforms {
		name := p.ExecutableName(exe)
		want[name] = true
		path := filepath.Join(opts.Dist, name)
		fi, err := os.Stat(path)
		if err != nil {
			fail("no backend executable for %s: %s/%s is missing", p, opts.Dist, name)
			continue
		}
		if fi.Mode()&0o111 == 0 && runtime.GOOS != "windows" {
			fail("%s is not executable (mode %v)", name, fi.Mode())
		}
		b := Binary{Platform: p, Name: name, Size: fi.Size()}
		bi, err := buildinfo.ReadFile(path)
		if err != nil {
			fail("%s: no Go build info: %v", name, err)
			continue
		}
		b.MainPackage = bi.Path
		settings := map[string]string{}
		for _, s := range bi.Settings {
			settings[s.Key] = s.Value
		}
		if settings["GOOS"] != p.OS || settings["GOARCH"] != p.Arch {
			fail("%s was built for %s/%s", name, settings["GOOS"], settings["GOARCH"])
		}
		if settings["CGO_ENABLED"] != "0" {
			fail("%s was built with CGO_ENABLED=%q (the SDK build turns cgo off)", name, settings["CGO_ENABLED"])
		}
		if p.Arch == "arm" {
			// Recent Go records e.g. "7,hardfloat"; ARMv5 would be a soft-float build no Pi needs.
			b.GOARM, _, _ = strings.Cut(settings["GOARM"], ",")
			if b.GOARM != "6" && b.GOARM != "7" {
				fail("%s was built with GOARM=%q, want 6 or 7", name, settings["GOARM"])
			}
		}
		if err := checkHeader(path, p); err != nil {
			fail("%s: %v", name, err)
		}
		bins = append(bins, b)
	}
	if len(bins) > 1 {
		for _, b := range bins[1:] {
			if b.MainPackage != bins[0].MainPackage {
				fail("%s is built from %s but %s from %s", b.Name, b.MainPackage, bins[0].Name, bins[0].MainPackage)
			}
		}
	}
	// An executable for a platform outside the list would be shipped untested (or is a stale leftover).
	for _, f := range files {
		if strings.HasPrefix(f, exe+"_") && !want[f] {
			fail("%s/%s is not one of the expected executables (%d platforms): remove it or add its platform", opts.Dist, f, len(opts.Platforms))
		}
	}
	return bins
}

// checkHeader reads the object file header: ELF for Linux, Mach-O for macOS, PE for Windows, with the
// machine type of the platform's architecture.
func checkHeader(path string, p Platform) error {
	switch p.OS {
	case "linux":
		f, err := elf.Open(path)
		if err != nil {
			return fmt.Errorf("not an ELF executable: %w", err)
		}
		defer f.Close()
		want := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64, "arm": elf.EM_ARM, "386": elf.EM_386}[p.Arch]
		if f.Machine != want || f.Type != elf.ET_EXEC {
			return fmt.Errorf("ELF %v %v, want %v %v", f.Type, f.Machine, elf.ET_EXEC, want)
		}
	case "darwin":
		f, err := macho.Open(path)
		if err != nil {
			return fmt.Errorf("not a Mach-O executable: %w", err)
		}
		defer f.Close()
		want := map[string]macho.Cpu{"amd64": macho.CpuAmd64, "arm64": macho.CpuArm64}[p.Arch]
		if f.Cpu != want || f.Type != macho.TypeExec {
			return fmt.Errorf("Mach-O %v %v, want %v %v", f.Type, f.Cpu, macho.TypeExec, want)
		}
	case "windows":
		f, err := pe.Open(path)
		if err != nil {
			return fmt.Errorf("not a PE executable: %w", err)
		}
		defer f.Close()
		want := map[string]uint16{"amd64": pe.IMAGE_FILE_MACHINE_AMD64, "arm64": pe.IMAGE_FILE_MACHINE_ARM64, "386": pe.IMAGE_FILE_MACHINE_I386}[p.Arch]
		if f.Machine != want || f.Characteristics&pe.IMAGE_FILE_EXECUTABLE_IMAGE == 0 {
			return fmt.Errorf("PE machine %#x characteristics %#x, want machine %#x and an executable image", f.Machine, f.Characteristics, want)
		}
	default:
		return fmt.Errorf("no header check for %s", p)
	}
	return nil
}

func nonEmptyFile(dir, rel string) error {
	if rel == "" || filepath.IsAbs(rel) || strings.HasPrefix(filepath.Clean(rel), "..") {
		return fmt.Errorf("path %q must be relative to the plugin directory", rel)
	}
	fi, err := os.Stat(filepath.Join(dir, filepath.FromSlash(rel)))
	if err != nil {
		return fmt.Errorf("%s is not in %s", rel, dir)
	}
	if !fi.Mode().IsRegular() || fi.Size() == 0 {
		return fmt.Errorf("%s in %s is empty or not a file", rel, dir)
	}
	return nil
}

func packageVersion(packageJSON string) (string, error) {
	raw, err := os.ReadFile(packageJSON)
	if err != nil {
		return "", fmt.Errorf("read the version: %w", err)
	}
	var pkg struct {
		Version string `json:"version"`
	}
	if err := json.Unmarshal(raw, &pkg); err != nil {
		return "", fmt.Errorf("%s: %w", packageJSON, err)
	}
	if !semverPattern.MatchString(pkg.Version) {
		return "", fmt.Errorf("%s version %q is not a semantic version", packageJSON, pkg.Version)
	}
	return pkg.Version, nil
}
