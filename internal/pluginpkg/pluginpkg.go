// Package pluginpkg checks the Grafana plugin's dist/ directory and packages it as the zip Grafana's plugin
// installer expects: one top-level directory named after the plugin id holding module.js, plugin.json, img/,
// README.md, LICENSE, CHANGELOG.md and the backend executables (mode 0755), plus a .sha256 file.
//
// The backend executables themselves are built with the plugin SDK's build package
// (github.com/grafana/grafana-plugin-sdk-go/build), whose conventions this package mirrors and verifies:
// `<executable>_<GOOS>_<GOARCH>` (+ `.exe` on Windows), CGO off, built from ./pkg. Magefile.go calls the SDK's
// build targets and then Package; BuildBackend is the same SDK build pointed at another output directory (tests).
package pluginpkg

import (
	"fmt"
	"runtime"
)

// Platform is one GOOS/GOARCH pair the backend is built for.
type Platform struct{ OS, Arch string }

func (p Platform) String() string { return p.OS + "/" + p.Arch }

// ExecutableName is the file name Grafana looks for: `<exe>_<GOOS>_<GOARCH>`, with `.exe` on Windows (the SDK's
// build names binaries the same way).
func (p Platform) ExecutableName(exe string) string {
	name := fmt.Sprintf("%s_%s_%s", exe, p.OS, p.Arch)
	if p.OS == "windows" {
		name += ".exe"
	}
	return name
}

// Platforms are the targets of the SDK's BuildAll (Linux, LinuxARM64, LinuxARM, Darwin, DarwinARM64, Windows):
// linux/arm is the Raspberry Pi (GOARM left to Go's cross-compiling default, 7, as the SDK does).
var Platforms = []Platform{
	{"linux", "amd64"},
	{"linux", "arm64"},
	{"linux", "arm"},
	{"darwin", "amd64"},
	{"darwin", "arm64"},
	{"windows", "amd64"},
}

// Host is the platform this process runs on.
func Host() Platform { return Platform{runtime.GOOS, runtime.GOARCH} }
