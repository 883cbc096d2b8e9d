package plugin

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/fieldline-iot/fieldline/pkg/fluxquery"
	"github.com/fieldline-iot/fieldline/pkg/influxql"
	"github.com/fieldline-iot/fieldline/pkg/sqlquery"
)

// readFrontend reads a file of the frontend (src/ at the repository root).
func readFrontend(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile("../../" + path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestEditorSettingsMatchBackend: the config editor sets exactly the jsonData keys the backend reads, and
// exactly its secureJsonData keys; a setting on one side only (a backend key nobody can set, an editor field the
// backend ignores) fails here.
func TestEditorSettingsMatchBackend(t *testing.T) {
	src := readFrontend(t, "src/components/ConfigEditor.tsx")
	prefix := map[string]string{"Pg": "postgres.", "Influx": "influx.", "Mqtt": "mqtt.", "Json": "", "Table": "postgres.table."}
	var editor []string
	for _, m := range regexp.MustCompile(`set(Pg|Influx|Mqtt|Json|Table)\(\{ *([A-Za-z]+)`).FindAllStringSubmatch(src, -1) {
		if (m[1] == "Json" && (m[2] == "postgres" || m[2] == "influx" || m[2] == "mqtt")) || (m[1] == "Pg" && m[2] == "table") {
			continue // the helpers setPg, setInflux, setMqtt, setTable themselves
		}
		editor = append(editor, prefix[m[1]]+m[2])
	}
	// the own-table fields are one list: [key, label, placeholder]
	if block := regexp.MustCompile(`(?s)as Array<\[keyof TableSettings`).FindStringIndex(src); block != nil {
		for _, m := range regexp.MustCompile(`\['([A-Za-z]+)', '[^']*', '[^']*'\]`).FindAllStringSubmatch(src[:block[0]], -1) {
			editor = append(editor, "postgres.table."+m[1])
		}
	}
	if strings.Contains(src, "<SecureSocksProxySettings") {
		editor = append(editor, "enableSecureSocksProxy") // @grafana/ui's component sets it
	}
	slices.Sort(editor)
	editor = slices.Compact(editor)
	if want := JSONDataKeys(); !slices.Equal(editor, want) {
		t.Errorf("jsonData keys differ:\n editor %v\nbackend %v", editor, want)
	}
	var secrets []string
	for _, m := range regexp.MustCompile(`(?:resetSecret|pemSecret)\('([A-Za-z]+)'\)`).FindAllStringSubmatch(src, -1) {
		secrets = append(secrets, m[1])
	}
	slices.Sort(secrets)
	if want := slices.Sorted(slices.Values(SecureJSONDataKeys)); !slices.Equal(secrets, want) {
		t.Errorf("secureJsonData keys differ: editor %v, backend %v", secrets, want)
	}
}

// TestContractFile: the frontend's copy of the contract (src/contract.gen.ts: fields, allowed values and defaults
// of the query model and the settings, read off the backend's parsers and loaders) is what the backend says now.
// A field, value or default changed on the Go side fails here until the file is regenerated (-update); the
// frontend derives its unions, options and placeholders from the file, so tsc then fails where it disagrees.
func TestContractFile(t *testing.T) {
	c, err := EditorContract()
	if err != nil {
		t.Fatal(err)
	}
	want, err := c.TypeScript()
	if err != nil {
		t.Fatal(err)
	}
	path := "../../" + ContractFile
	if *update {
		if err := os.WriteFile(path, append(want, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got := strings.TrimRight(readFrontend(t, ContractFile), "\n")
	if got != string(want) {
		t.Errorf("%s is stale: regenerate it with go test ./pkg/plugin -run TestContractFile -update, then fix what tsc reports", ContractFile)
	}
	// Every allowed value parses, and the parser's defaults are among the allowed values.
	for field, values := range c.QueryValues {
		for _, v := range values {
			raw := fmt.Sprintf(`{"refId":"A","metric":"m","aggregation":"avg","interval":"1m","rawSql":"SELECT 1","flux":"x","influxql":"SELECT 1","topic":"a/#",%q:%q}`, field, v)
			if field == "variable" {
				raw = fmt.Sprintf(`{"refId":"A","variable":%q}`, v)
			}
			if _, err := ParseQuery([]byte(raw)); err != nil {
				t.Errorf("%s %q: the backend refuses it: %v", field, v, err)
			}
		}
		if d, ok := c.QueryDefaults[field]; ok && !slices.Contains(values, d.(string)) {
			t.Errorf("default %s %q is not an allowed value %v", field, d, values)
		}
		raw := fmt.Sprintf(`{"refId":"A","metric":"m","topic":"a/#",%q:"not-a-value"}`, field)
		if _, err := ParseQuery([]byte(raw)); err == nil {
			t.Errorf("%s: the backend takes a value outside %v", field, values)
		}
	}
}

// TestQueryModelMatchesBackend: the frontend's query model (the FieldlineQuery interface) has exactly the fields
// the backend decodes; a field on one side only fails here.
func TestQueryModelMatchesBackend(t *testing.T) {
	src := readFrontend(t, "src/types.ts")
	block := regexp.MustCompile(`(?s)export interface FieldlineQuery extends DataQuery \{(.*?)\n\}`).FindStringSubmatch(src)
	if block == nil {
		t.Fatal("src/types.ts: FieldlineQuery not found")
	}
	ts := []string{"refId"} // from DataQuery
	for _, m := range regexp.MustCompile(`(?m)^  ([a-zA-Z]+)\??:`).FindAllStringSubmatch(block[1], -1) {
		ts = append(ts, m[1])
	}
	c, err := EditorContract()
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(ts)
	if !slices.Equal(ts, c.QueryFields) {
		t.Errorf("query fields differ:\n     TS %v\nbackend %v", ts, c.QueryFields)
	}
}

func stripDollar(l []string) []string {
	out := make([]string, len(l))
	for i, s := range l {
		out[i] = strings.TrimPrefix(s, "$")
	}
	return out
}

// TestEditorMacrosMatchBackend: the code editors' completion (src/completion.ts) offers exactly the SQL macros
// the backend expands (sqlquery.MacroNames, taken from Interpolate's own macro set) and exactly the Flux
// variables it replaces (fluxquery.Variables, the list Expand's pattern is built from). A macro on one side
// only fails here.
func TestEditorMacrosMatchBackend(t *testing.T) {
	src := readFrontend(t, "src/completion.ts")
	for _, c := range []struct {
		list, prefix string
		backend      []string
	}{
		{"SQL_MACROS", "$__", sqlquery.MacroNames()},
		{"FLUX_VARIABLES", "v.", fluxquery.Variables},
		{"INFLUXQL_MACROS", "$", stripDollar(influxql.Macros)},
	} {
		block := regexp.MustCompile(`(?s)export const ` + c.list + `[^=]*= \[(.*?)\n\];`).FindStringSubmatch(src)
		if block == nil {
			t.Fatalf("src/completion.ts: %s not found", c.list)
		}
		var editor []string
		for _, m := range regexp.MustCompile(`(?m)^    name: '([^']*)',$`).FindAllStringSubmatch(block[1], -1) {
			name, ok := strings.CutPrefix(m[1], c.prefix)
			if !ok {
				t.Errorf("%s: %q does not start with %q", c.list, m[1], c.prefix)
				continue
			}
			editor = append(editor, name)
		}
		if n := strings.Count(block[1], "name:"); n != len(editor) {
			t.Errorf("%s: %d entries have a name, %d in the form `    name: '…',`", c.list, n, len(editor))
		}
		slices.Sort(editor)
		if len(slices.Compact(slices.Clone(editor))) != len(editor) {
			t.Errorf("%s: a name appears twice: %v", c.list, editor)
		}
		backend := slices.Sorted(slices.Values(c.backend))
		if !slices.Equal(editor, backend) {
			t.Errorf("%s differs from the backend:\n editor %v\nbackend %v", c.list, editor, backend)
		}
	}
}
