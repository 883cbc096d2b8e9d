// Package golden compares test output with text files under testdata/ (the SQL and Flux builders' goldens).
// `go test <pkg> -run <Test> -update` rewrites the files; review the diff before committing it. Frames are
// compared with the plugin SDK's experimental.CheckGoldenJSONResponse instead (pkg/plugin).
package golden

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden with the current output")

// Check compares got with testdata/<name>.golden byte for byte, naming the first line that differs; with
// -update it writes the file instead.
func Check(t testing.TB, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (create it with go test -run '%s' -update and review it)", err, t.Name())
	}
	if got == string(want) {
		return
	}
	g, w := strings.Split(got, "\n"), strings.Split(string(want), "\n")
	line := 0
	for line < len(g) && line < len(w) && g[line] == w[line] {
		line++
	}
	at := func(l []string) string {
		if line < len(l) {
			return l[line]
		}
		return "(end of text)"
	}
	t.Errorf("output differs from %s at line %d:\n got: %s\nwant: %s\n\nwhole output:\n%s", path, line+1, at(g), at(w), got)
}
