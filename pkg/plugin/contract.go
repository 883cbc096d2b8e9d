package plugin

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/grafana/grafana-plugin-sdk-go/backend"

	"github.com/fieldline-iot/fieldline/internal/mqttconn"
	"github.com/fieldline-iot/fieldline/internal/store"
	"github.com/fieldline-iot/fieldline/internal/telemetry"
	"github.com/fieldline-iot/fieldline/pkg/live"
	"github.com/fieldline-iot/fieldline/pkg/sqlquery"
)

// ContractFile is where the editors' copy of the contract lives, relative to the repository root. The frontend
// imports it (src/types.ts derives its unions from it, the editors their options and placeholders); a Go test
// fails when it differs from EditorContract, and `go test ./pkg/plugin -run TestContractFile -update` rewrites it.
const ContractFile = "src/contract.gen.ts"

// Contract is what the editors and the backend agree on: the query model's fields, allowed values and defaults,
// and the settings' keys, allowed values and defaults. Everything in it is read from the backend's own parsers
// and loaders (the defaults are what they produce for an absent field), so it cannot describe a backend that
// does not exist.
type Contract struct {
	QueryFields   []string            `json:"fields"`
	QueryValues   map[string][]string `json:"values"`
	QueryDefaults map[string]any      `json:"defaults"`

	JSONDataKeys   []string         `json:"jsonData"`
	SecureKeys     []string         `json:"secureJsonData"`
	SettingsValues map[string][]any `json:"settingsValues"`
	// SettingsDefaults: what the backend uses when a key is absent (postgres.sslMode: for a remote host;
	// postgres.sslModeLoopback: for localhost and loopback addresses).
	SettingsDefaults map[string]any `json:"settingsDefaults"`
}

// Allowed values of the query model's enumerations, in the order the editors offer them. ParseQuery accepts
// exactly these (plus documented aliases of older queries).
var (
	QuerySources   = []string{SourceSQL, SourceFlux, SourceInfluxQL, SourceMQTT}
	QueryModes     = []string{ModeBuilder, ModeCode, ModeStates}
	ResultFormats  = []string{FormatTimeSeries, FormatTable}
	FillModes      = []string{FillNone, FillNull, FillPrevious, FillZero}
	PayloadFormats = []string{string(telemetry.FormatValue), string(telemetry.FormatJSON), string(telemetry.FormatInflux)}
	VariableKinds  = []string{"devices", "metrics", "sensors"}
)

// EditorContract reads the contract off the backend's parsers and loaders.
func EditorContract() (Contract, error) {
	c := Contract{
		QueryValues: map[string][]string{
			"source": QuerySources, "mode": QueryModes, "format": ResultFormats, "fill": FillModes,
			"payloadFormat": PayloadFormats, "aggregation": aggregationNames(), "variable": VariableKinds,
			"jsonTimeFormat": telemetry.TimeFormatNames,
		},
		JSONDataKeys:     JSONDataKeys(),
		SecureKeys:       slices.Sorted(slices.Values(SecureJSONDataKeys)),
		SettingsValues:   map[string][]any{},
		SettingsDefaults: map[string]any{},
	}
	rt := reflect.TypeFor[queryJSON]()
	for i := range rt.NumField() {
		c.QueryFields = append(c.QueryFields, strings.Split(rt.Field(i).Tag.Get("json"), ",")[0])
	}
	slices.Sort(c.QueryFields)

	// Query defaults: what ParseQuery makes of a builder query that names only its metric, and a query without
	// a template or payload format.
	q, err := ParseQuery([]byte(`{"refId":"A","metric":"m"}`))
	if err != nil {
		return c, fmt.Errorf("contract: default query: %w", err)
	}
	payload, err := telemetry.ParseFormat(q.PayloadFormat)
	if err != nil {
		return c, fmt.Errorf("contract: default payload format: %w", err)
	}
	agg := string(q.Aggregation)
	if q.Aggregation == sqlquery.None {
		agg = "none"
	}
	c.QueryDefaults = map[string]any{
		"source": q.Source, "mode": q.Mode, "format": q.Format, "fill": q.Fill, "aggregation": agg,
		"payloadFormat": string(payload), "interval": "", "live": q.Live, "template": q.Template,
		"jsonTimeFormat": telemetry.TimeFormatNames[0],
	}

	// Settings defaults: what the loaders make of settings that name only the connections.
	conn := func(pgHost string) backend.DataSourceInstanceSettings {
		return backend.DataSourceInstanceSettings{JSONData: []byte(`{"postgres":{"host":"` + pgHost + `","database":"d","user":"u"},` +
			`"influx":{"url":"http://influx.example:8086","bucket":"b"},"mqtt":{"url":"tcp://broker.example:1883"}}`)}
	}
	s, err := LoadSettings(conn("db.example:5432"))
	if err != nil {
		return c, fmt.Errorf("contract: default settings: %w", err)
	}
	loop, err := LoadSettings(conn("localhost:5432"))
	if err != nil {
		return c, fmt.Errorf("contract: default settings: %w", err)
	}
	ls, err := live.LoadSettings(conn("db.example:5432"))
	if err != nil {
		return c, fmt.Errorf("contract: default live settings: %w", err)
	}
	for k, v := range map[string]any{
		"postgres.sslMode":         s.Postgres.SSLMode,
		"postgres.sslModeLoopback": loop.Postgres.SSLMode,
		"postgres.timescale":       string(s.Postgres.Timescale),
		"postgres.useRollup":       !s.Postgres.NoRollup,
		"postgres.maxConns":        s.Postgres.MaxConns,
		"influx.restrictFlux":      !s.Influx.UnrestrictedFlux,
		"mqtt.clientIdPrefix":      s.MQTT.ClientIDPrefix,
		"mqtt.allowSysTopics":      s.MQTT.AllowSys,
		"mqtt.qos":                 ls.QoS,
		"statementTimeout":         sqlquery.GrafanaInterval(s.StatementTimeout),
		"rowLimit":                 s.RowLimit,
		"maxResponseBytes":         s.MaxResponseBytes,
		"maxBytesInFlight":         s.MaxBytesInFlight,
		"liveSeamDelay":            sqlquery.GrafanaInterval(ls.SeamDelay),
		"liveFrameInterval":        sqlquery.GrafanaInterval(ls.FrameInterval),
		"liveMaxBufferedRows":      ls.MaxBufferedRows,
	} {
		c.SettingsDefaults[k] = v
	}

	// Allowed values, probed through the loaders.
	for _, m := range store.TimescaleModes {
		c.SettingsValues["postgres.timescale"] = append(c.SettingsValues["postgres.timescale"], string(m))
	}
	for _, m := range SSLModes {
		c.SettingsValues["postgres.sslMode"] = append(c.SettingsValues["postgres.sslMode"], m)
	}
	for qos := -1; qos <= 3; qos++ {
		j := fmt.Sprintf(`{"mqtt":{"url":"tcp://b:1883","qos":%d}}`, qos)
		if _, err := live.LoadSettings(backend.DataSourceInstanceSettings{JSONData: []byte(j)}); err == nil {
			c.SettingsValues["mqtt.qos"] = append(c.SettingsValues["mqtt.qos"], qos)
		}
	}
	for _, scheme := range mqttconn.SchemeNames() {
		c.SettingsValues["mqtt.url.scheme"] = append(c.SettingsValues["mqtt.url.scheme"], scheme)
	}
	return c, nil
}

func aggregationNames() []string {
	out := []string{"none"}
	for _, a := range sqlquery.Aggregations {
		if a != sqlquery.None {
			out = append(out, string(a))
		}
	}
	return out
}

// TypeScript renders the contract as the frontend's module (ContractFile).
func (c Contract) TypeScript() ([]byte, error) {
	var b bytes.Buffer
	b.WriteString("// Code generated from the backend's parsers and loaders (pkg/plugin/contract.go). DO NOT EDIT.\n")
	b.WriteString("// Regenerate: go test ./pkg/plugin -run TestContractFile -update\n\n")
	write := func(name, doc string, v any) error {
		j, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "/** %s */\nexport const %s = %s as const;\n\n", doc, name, j)
		return nil
	}
	for _, x := range []struct {
		name, doc string
		v         any
	}{
		{"QUERY_FIELDS", "The query model's fields (refId included).", c.QueryFields},
		{"QUERY_VALUES", "The values each enumerated query field accepts, in the order the editor offers them.", c.QueryValues},
		{"QUERY_DEFAULTS", "What the backend uses for a query field that is absent.", c.QueryDefaults},
		{"JSON_DATA_KEYS", "The jsonData keys the backend reads.", c.JSONDataKeys},
		{"SECURE_JSON_DATA_KEYS", "The secureJsonData keys the backend reads.", c.SecureKeys},
		{"SETTINGS_VALUES", "The values enumerated settings accept.", c.SettingsValues},
		{"SETTINGS_DEFAULTS", "What the backend uses for an absent setting (postgres.sslModeLoopback: for localhost).", c.SettingsDefaults},
	} {
		if err := write(x.name, x.doc, x.v); err != nil {
			return nil, err
		}
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}
