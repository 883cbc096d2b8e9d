package plugin

import (
	"fmt"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/grafana/grafana-plugin-sdk-go/backend"

	"github.com/fieldline-iot/fieldline/internal/mqttconn"
	"github.com/fieldline-iot/fieldline/pkg/live"
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

// TestEditorSchemesMatchBackend: the config editor accepts exactly the broker URL schemes the backend
// (internal/mqttconn, shared with the ingester) accepts; a scheme on one side only fails here.
func TestEditorSchemesMatchBackend(t *testing.T) {
	m := regexp.MustCompile(`const MQTT_SCHEMES = \[([^\]]*)\]`).FindStringSubmatch(readFrontend(t, "src/validation.ts"))
	if m == nil {
		t.Fatal("src/validation.ts: MQTT_SCHEMES not found")
	}
	var editor []string
	for _, q := range regexp.MustCompile(`'([a-z]+)'`).FindAllStringSubmatch(m[1], -1) {
		editor = append(editor, q[1])
	}
	goSide := mqttconn.SchemeNames()
	slices.Sort(editor)
	slices.Sort(goSide)
	if !slices.Equal(editor, goSide) {
		t.Errorf("editor schemes %v, backend schemes %v", editor, goSide)
	}
}

// TestEditorQoSMatchesBackend: the editor offers every live QoS the backend takes (0, 1, 2) and no other.
func TestEditorQoSMatchesBackend(t *testing.T) {
	src := readFrontend(t, "src/components/ConfigEditor.tsx")
	block := regexp.MustCompile(`(?s)const QOS_OPTIONS[^=]*= \[(.*?)\];`).FindStringSubmatch(src)
	if block == nil {
		t.Fatal("src/components/ConfigEditor.tsx: QOS_OPTIONS not found")
	}
	var offered []int
	for _, v := range regexp.MustCompile(`value: (\d+)`).FindAllStringSubmatch(block[1], -1) {
		n, _ := strconv.Atoi(v[1])
		offered = append(offered, n)
	}
	var accepted []int
	for q := -1; q <= 3; q++ {
		j := []byte(`{"mqtt":{"url":"tcp://b:1883","qos":` + strconv.Itoa(q) + `}}`)
		if _, err := live.LoadSettings(backend.DataSourceInstanceSettings{JSONData: j}); err == nil {
			accepted = append(accepted, q)
		}
	}
	if !slices.Equal(offered, accepted) {
		t.Errorf("editor offers QoS %v, backend accepts %v", offered, accepted)
	}
}

// TestEditorSettingsMatchBackend: the config editor sets exactly the jsonData keys the backend reads, and
// exactly its secureJsonData keys; a setting on one side only (a backend key nobody can set, an editor field the
// backend ignores) fails here.
func TestEditorSettingsMatchBackend(t *testing.T) {
	src := readFrontend(t, "src/components/ConfigEditor.tsx")
	prefix := map[string]string{"Pg": "postgres.", "Influx": "influx.", "Mqtt": "mqtt.", "Json": ""}
	var editor []string
	for _, m := range regexp.MustCompile(`set(Pg|Influx|Mqtt|Json)\(\{ *([A-Za-z]+)`).FindAllStringSubmatch(src, -1) {
		if m[1] == "Json" && (m[2] == "postgres" || m[2] == "influx" || m[2] == "mqtt") {
			continue // the helpers setPg, setInflux, setMqtt themselves
		}
		editor = append(editor, prefix[m[1]]+m[2])
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

// tsUnion returns the string literals of `export type name = 'a' | 'b';` in src/types.ts.
func tsUnion(t *testing.T, src, name string) []string {
	t.Helper()
	m := regexp.MustCompile(`export type ` + name + ` = ([^;]*);`).FindStringSubmatch(src)
	if m == nil {
		t.Fatalf("src/types.ts: type %s not found", name)
	}
	var out []string
	for _, q := range regexp.MustCompile(`'([a-z_]+)'`).FindAllStringSubmatch(m[1], -1) {
		out = append(out, q[1])
	}
	return out
}

// TestQueryModelMatchesBackend: the frontend's query model has exactly the fields the backend decodes, and its
// enumerations hold exactly the values the backend accepts (each TS value parses; a value the backend takes that
// TS lacks is caught by the per-field lists of accepted values below).
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
	var goFields []string
	rt := reflect.TypeFor[queryJSON]()
	for i := range rt.NumField() {
		goFields = append(goFields, strings.Split(rt.Field(i).Tag.Get("json"), ",")[0])
	}
	slices.Sort(ts)
	slices.Sort(goFields)
	if !slices.Equal(ts, goFields) {
		t.Errorf("query fields differ:\n     TS %v\nbackend %v", ts, goFields)
	}

	for _, c := range []struct {
		tsType, field string
		accepted      []string // the values the backend's parser documents
	}{
		{"QuerySource", "source", []string{SourceSQL, SourceFlux, SourceMQTT}},
		{"QueryMode", "mode", []string{ModeBuilder, ModeCode}},
		{"FillMode", "fill", []string{FillNone, FillNull, FillPrevious, FillZero}},
		{"ResultFormat", "format", []string{FormatTimeSeries, FormatTable}},
		{"PayloadFormat", "payloadFormat", []string{"value", "json", "influx"}},
	} {
		values := tsUnion(t, src, c.tsType)
		if a, b := slices.Sorted(slices.Values(values)), slices.Sorted(slices.Values(c.accepted)); !slices.Equal(a, b) {
			t.Errorf("%s: TS %v, backend %v", c.tsType, a, b)
		}
		for _, v := range values {
			raw := fmt.Sprintf(`{"refId":"A","metric":"m","aggregation":"avg","interval":"1m","rawSql":"SELECT 1","flux":"x","topic":"a/#",%q:%q}`, c.field, v)
			if _, err := ParseQuery([]byte(raw)); err != nil {
				t.Errorf("%s %q: the backend refuses it: %v", c.tsType, v, err)
			}
		}
	}
}
