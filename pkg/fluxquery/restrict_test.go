package fluxquery

import (
	"strings"
	"testing"
)

func TestCheckRestricted(t *testing.T) {
	ok := []string{
		`from(bucket: "b") |> range(start: -1h)`,
		`import "strings"
import s "experimental/aggregate"
// import "http" (a comment)
from(bucket: "b") |> range(start: -1h) |> filter(fn: (r) => r.host == "x" and r._measurement =~ /"http"|host:/)`,
		`from(bucket: "b") |> range(start: -1h) |> rename(columns: {host: "server"})`, // host: outside from()'s own arguments
		`data = from(bucket: "b", start: -1h)
data |> map(fn: (r) => ({r with note: "import \"http\" host: x"}))`,
		`package main
import "array"
array.from(rows: [{a: 1}])`,
	}
	for _, q := range ok {
		if err := CheckRestricted(q); err != nil {
			t.Errorf("refused a safe query: %v\n%s", err, q)
		}
	}
	bad := map[string]string{
		`import "http"
http.post(url: "http://127.0.0.1:9/", data: bytes(v: "x"))`: `import "http"`,
		`import   h   "experimental/http"
h.get(url: "http://x")`: `experimental/http`,
		`import "sql"
sql.from(driverName: "postgres", dataSourceName: "postgres://x", query: "SELECT 1")`: `"sql"`,
		`import "csv"
csv.from(file: "/etc/passwd")`: `"csv"`,
		`import "influxdata/influxdb/secrets"
secrets.get(key: "k")`: `secrets`,
		`import "socket"`: `"socket"`,
		`from(bucket: "b", host: "http://evil:8086", token: "t") |> range(start: -1h)`:               `host:`,
		`from(bucket: "b") |> range(start: -1h) |> to(bucket: "x", host: "http://evil", token: "t")`: `host:`,
		`x = 1
import "http"`: `top`,
	}
	for q, want := range bad {
		err := CheckRestricted(q)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("query not refused (or wrong reason %v, want %q):\n%s", err, want, q)
		}
	}
}

// FuzzCheckRestricted: no input panics, and a refused import stays refused behind any prefix of comments.
func FuzzCheckRestricted(f *testing.F) {
	f.Add(`import "http"`)
	f.Add(`from(bucket: "b", host: "h")`)
	f.Add(`r._value =~ /a\/b"c/ and "x\"y"`)
	f.Add("// c\n\"unterminated")
	f.Fuzz(func(t *testing.T, src string) {
		_ = CheckRestricted(src)
		if !strings.Contains(src, "\n") && !strings.Contains(src, "\"") {
			if CheckRestricted("// "+src+"\nimport \"http\"") == nil {
				t.Fatalf("a comment line hid import \"http\": %q", src)
			}
		}
	})
}
