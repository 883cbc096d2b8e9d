package pluginpkg

import (
	"sync"

	sdkbuild "github.com/grafana/grafana-plugin-sdk-go/build"
)

var buildMu sync.Mutex

// BuildBackend builds the backend for p with the SDK's build (the same command as its Build targets: CGO off,
// `-w -s`, static, the arrow_json_stdlib tag and the SDK's buildinfo ldflags, executable name from
// src/plugin.json) but writes the executable (and the SDK's go_plugin_build_manifest) into outDir instead of
// dist/. Like the SDK it must run in the module root: it reads src/plugin.json, package.json and ./pkg relative
// to the working directory.
func BuildBackend(outDir string, p Platform) error {
	buildMu.Lock()
	defer buildMu.Unlock()
	// The SDK's only hook for the output directory is a package-level callback; restore the default (identity)
	// callback afterwards so later SDK builds in this process write to dist/ again.
	if err := sdkbuild.SetBeforeBuildCallback(func(cfg sdkbuild.Config) (sdkbuild.Config, error) {
		cfg.OutputBinaryPath = outDir
		return cfg, nil
	}); err != nil {
		return err
	}
	defer func() {
		_ = sdkbuild.SetBeforeBuildCallback(func(cfg sdkbuild.Config) (sdkbuild.Config, error) { return cfg, nil })
	}()
	return sdkbuild.Build{}.Custom(p.OS, p.Arch)
}
