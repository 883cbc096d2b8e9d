package plugin

import (
	"strings"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
)

func TestParseQuery(t *testing.T) {
	q, err := ParseQuery([]byte(`{"refId":"A","metric":"temperature","device":"pico, node1,pico","sensor":"*","aggregation":"mean","interval":"5m","fill":"previous","datasource":{"uid":"x"},"intervalMs":1000}`))
	if err != nil {
		t.Fatal(err)
	}
	if q.Source != SourceSQL || q.Mode != ModeBuilder || strings.Join(q.Devices, "|") != "pico|node1" || q.Sensors != nil ||
		q.Aggregation != "avg" || q.Interval != 5*time.Minute || q.Fill != FillPrevious || q.Format != FormatTimeSeries {
		t.Fatalf("unexpected %+v", q)
	}
	if q, err := ParseQuery([]byte(`{"source":"flux","flux":"from(bucket: v.bucket)"}`)); err != nil || q.Mode != ModeCode {
		t.Fatalf("code flux: %+v %v", q, err)
	}
	if q, err := ParseQuery([]byte(`{"variable":"devices","metric":"temperature"}`)); err != nil || q.Variable != "device" {
		t.Fatalf("variable: %+v %v", q, err)
	}
	bad := map[string]string{
		`{"source":"mongo"}`:                                 "source",
		`{"metric":""}`:                                      "metric is required",
		`{"metric":"t","aggregation":"median"}`:              "aggregation",
		`{"metric":"t","interval":"1M","aggregation":"avg"}`: "months",
		`{"metric":"t","interval":"soon"}`:                   "interval",
		`{"metric":"t","fill":"linear","aggregation":"avg"}`: "fill",
		`{"metric":"t","fill":"null"}`:                       "fill needs an aggregation",
		`{"metric":"t","format":"heatmap"}`:                  "format",
		`{"metric":"a\u0000b"}`:                              "control character",
		`{"source":"sql","mode":"code"}`:                     "rawSql is empty",
		`{"source":"mqtt"}`:                                  "topic is required",
		`{"variable":"units"}`:                               "variable",
		`{"metric":` + `"` + strings.Repeat("x", 300) + `"}`: "longer than",
	}
	for in, want := range bad {
		if _, err := ParseQuery([]byte(in)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want %q", in, err, want)
		}
	}
}

func TestLoadSettings(t *testing.T) {
	ok := backend.DataSourceInstanceSettings{
		JSONData: []byte(`{"postgres":{"host":"db.example:5433","database":"f","user":"grafana","timescale":"auto"},
			"influx":{"url":"http://influx:8086","org":"o","bucket":"b"},
			"mqtt":{"url":"ssl://broker:8883","username":"g"},"liveSource":"mqtt","statementTimeout":"10s","rowLimit":5000}`),
		DecryptedSecureJSONData: map[string]string{"postgresPassword": "pg-secret", "influxToken": "tok-secret", "mqttPassword": "mq-secret"},
	}
	s, err := LoadSettings(ok)
	if err != nil {
		t.Fatal(err)
	}
	if s.Postgres.SSLMode != "require" || s.Postgres.Password != "pg-secret" || s.Influx.Token != "tok-secret" || s.MQTT.TLS == nil ||
		s.StatementTimeout != 10*time.Second || s.RowLimit != 5000 {
		t.Fatalf("unexpected %+v", s)
	}
	bad := map[string]string{
		`{}`: "nothing configured",
		`{"postgres":{"host":"db:99999","database":"f","user":"u"}}`:                  "port",
		`{"postgres":{"host":"db:5432","user":"u"}}`:                                  "postgres.database",
		`{"postgres":{"host":"db:5432","database":"f","user":"u","sslMode":"maybe"}}`: "sslMode",
		`{"influx":{"url":"http://u:p@influx:8086","bucket":"b"}}`:                    "credentials",
		`{"influx":{"url":"influx:8086","bucket":"b"}}`:                               "influx.url",
		`{"mqtt":{"url":"http://broker"}}`:                                            "scheme",
		`{"mqtt":{"url":"tcp://broker:1883"},"statementTimeout":"forever"}`:           "statementTimeout",
		`{"mqtt":{"url":"tcp://broker:1883"},"rowLimit":0}`:                           "rowLimit",
	}
	// liveSource had no meaning (the live source follows the query) and is gone: settings saved with it, any
	// value, still load.
	for _, saved := range []string{`"postgres"`, `"mqtt"`, `"kafka"`, `7`} {
		if _, err := LoadSettings(backend.DataSourceInstanceSettings{JSONData: []byte(`{"mqtt":{"url":"tcp://broker:1883"},"liveSource":` + saved + `}`)}); err != nil {
			t.Errorf("settings saved with liveSource %s: %v", saved, err)
		}
	}
	for in, want := range bad {
		_, err := LoadSettings(backend.DataSourceInstanceSettings{JSONData: []byte(in), DecryptedSecureJSONData: ok.DecryptedSecureJSONData})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want %q", in, err, want)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("%s: error mentions a secret: %v", in, err)
		}
	}
}
