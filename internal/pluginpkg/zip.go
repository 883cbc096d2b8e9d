package pluginpkg

import (
	"archive/zip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Artifact is what Package wrote.
type Artifact struct {
	Zip        string // e.g. build/fieldline-telemetry-datasource-0.1.0.zip
	SHA256File string // Zip + ".sha256", in `sha256sum -c` format
	SHA256     string
	Report     *Report
}

// Package checks dist/ (see Check) and, if it passes, zips it as
// <OutDir>/<plugin id>-<version>.zip with a single top-level directory named after the plugin id, the layout
// `grafana cli plugins install --pluginUrl` and the catalog expect. The backend executables get mode 0755 in the
// zip's external attributes (Unix creator), every other file 0644, directories 0755. Everything in dist/ is
// packaged (as the create-plugin release workflow does), including source maps and the SDK's
// go_plugin_build_manifest.
func Package(opts Options) (*Artifact, error) {
	opts = opts.withDefaults()
	rep, err := Check(opts)
	if err != nil {
		return nil, fmt.Errorf("%s is not ready to package:\n%w", opts.Dist, err)
	}
	execs := map[string]bool{}
	for _, b := range rep.Binaries {
		execs[b.Name] = true
	}
	if err := os.MkdirAll(opts.OutDir, 0o755); err != nil {
		return nil, err
	}
	base := fmt.Sprintf("%s-%s.zip", rep.Plugin.ID, rep.Plugin.Info.Version)
	art := &Artifact{Zip: filepath.Join(opts.OutDir, base), Report: rep}
	art.SHA256File = art.Zip + ".sha256"

	tmp, err := os.CreateTemp(opts.OutDir, base+".*.tmp")
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp.Name())
	h := sha256.New()
	if err := writeZip(io.MultiWriter(tmp, h), opts.Dist, rep.Plugin.ID, execs); err != nil {
		tmp.Close()
		return nil, err
	}
	if err := tmp.Close(); err != nil {
		return nil, err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil { // CreateTemp made it 0600
		return nil, err
	}
	if err := os.Rename(tmp.Name(), art.Zip); err != nil {
		return nil, err
	}
	art.SHA256 = hex.EncodeToString(h.Sum(nil))
	if err := os.WriteFile(art.SHA256File, []byte(art.SHA256+"  "+base+"\n"), 0o644); err != nil {
		return nil, err
	}
	return art, nil
}

func writeZip(w io.Writer, dist, top string, execs map[string]bool) error {
	zw := zip.NewWriter(w)
	err := filepath.WalkDir(dist, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dist, path)
		if err != nil {
			return err
		}
		name := top
		if rel != "." {
			name = top + "/" + filepath.ToSlash(rel)
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		hdr := &zip.FileHeader{Name: name, Modified: fi.ModTime()}
		switch {
		case d.IsDir():
			hdr.Name += "/"
			hdr.SetMode(fs.ModeDir | 0o755)
		case !fi.Mode().IsRegular():
			return fmt.Errorf("%s is not a regular file: symlinks and devices are not packaged", path)
		case execs[filepath.ToSlash(rel)]:
			hdr.Method = zip.Deflate
			hdr.SetMode(0o755)
		default:
			hdr.Method = zip.Deflate
			hdr.SetMode(0o644)
		}
		fw, err := zw.CreateHeader(hdr)
		if err != nil || d.IsDir() {
			return err
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(fw, f)
		return err
	})
	if err != nil {
		zw.Close()
		return fmt.Errorf("zip %s: %w", dist, err)
	}
	return zw.Close()
}

// TopLevelDir returns the single top-level directory of a zip's entries, or an error naming the entries that
// are not under one.
func TopLevelDir(zr *zip.Reader) (string, error) {
	top := ""
	for _, f := range zr.File {
		first, _, _ := strings.Cut(f.Name, "/")
		if top == "" {
			top = first
		} else if first != top {
			return "", fmt.Errorf("entries under both %q and %q", top, first)
		}
	}
	if top == "" {
		return "", fmt.Errorf("empty zip")
	}
	return top, nil
}
