package sqlquery

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
)

// update rewrites the golden files: go test ./pkg/sqlquery -run <Test> -update, then review the diff (git diff
// pkg/sqlquery/testdata) before committing it. Without it, the tests compare with the files.
var update = flag.Bool("update", false, "rewrite testdata/*.golden with the current output")

// checkGolden compares got with testdata/<name>.golden, byte for byte.
func checkGolden(t *testing.T, name, got string) {
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

// renderArgs writes one line per bound argument: its placeholder, Go type and value, so the golden files pin
// the arguments exactly (a time's location and an interval's fields included).
func renderArgs(b *strings.Builder, args []any) {
	b.WriteString("-- args --\n")
	for i, a := range args {
		fmt.Fprintf(b, "$%d %s\n", i+1, renderArg(a))
	}
}

func renderArg(a any) string {
	switch v := a.(type) {
	case time.Time:
		return fmt.Sprintf("time.Time %s (%s)", v.Format(time.RFC3339Nano), v.Location())
	case pgtype.Interval:
		return fmt.Sprintf("pgtype.Interval {Microseconds:%d Days:%d Months:%d Valid:%t}", v.Microseconds, v.Days, v.Months, v.Valid)
	default:
		return fmt.Sprintf("%T %#v", a, a)
	}
}
