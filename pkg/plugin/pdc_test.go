package plugin

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	sdkproxy "github.com/grafana/grafana-plugin-sdk-go/backend/proxy"
	"github.com/grafana/grafana-plugin-sdk-go/config"

	"github.com/fieldline-iot/fieldline/internal/testsvc"
)

// TestSecureSocksProxy: with Private Data source Connect on (the data source's enableSecureSocksProxy and the
// Grafana server's proxy settings, which the SDK reads from the request context), PostgreSQL, InfluxDB and the
// broker are reached through a SOCKS5 proxy the test starts, by names only the proxy resolves (as in a private
// network): health, a builder SQL query, a builder Flux query, live MQTT topics. Without the proxy the same
// names are unreachable; with a wrong proxy password nothing connects; WebSocket brokers are refused with a
// clear error.
func TestSecureSocksProxy(t *testing.T) {
	rows := dataset()
	pgURL, _ := newPostgres(t, rows)
	influx := newInflux(t, rows)
	pgu, _ := url.Parse(pgURL)
	iu, _ := url.Parse(influx.URL)
	mu, _ := url.Parse(testsvc.MQTTURL(t))
	proxy := testsvc.NewSOCKS5(t, "fieldline-test", "pdc-secret", map[string]string{
		"pg.private.test:5432":     pgu.Host,
		"influx.private.test:8086": iu.Host,
		"mqtt.private.test:1883":   mu.Host,
	})

	settings := func(enable bool, mqttURL string) backend.DataSourceInstanceSettings {
		pw, _ := pgu.User.Password()
		j := map[string]any{
			"postgres": map[string]any{"host": "pg.private.test:5432", "database": strings.TrimPrefix(pgu.Path, "/"),
				"user": pgu.User.Username(), "sslMode": "disable"},
			"influx":                 map[string]any{"url": "http://influx.private.test:8086", "org": influx.Org, "bucket": influx.Bucket},
			"mqtt":                   map[string]any{"url": mqttURL},
			"enableSecureSocksProxy": enable,
		}
		raw, _ := json.Marshal(j)
		return backend.DataSourceInstanceSettings{UID: "fieldline-test", Name: "Fieldline", Type: "fieldline-telemetry-datasource", JSONData: raw,
			DecryptedSecureJSONData: map[string]string{"postgresPassword": pw, "influxToken": influx.Token, "secureSocksProxyPassword": "pdc-secret"}}
	}
	grafana := func() context.Context {
		return config.WithGrafanaConfig(context.Background(), config.NewGrafanaCfg(map[string]string{
			sdkproxy.PluginSecureSocksProxyEnabled:       "true",
			sdkproxy.PluginSecureSocksProxyProxyAddress:  proxy.Addr,
			sdkproxy.PluginSecureSocksProxyAllowInsecure: "true", // the test proxy speaks SOCKS5 without TLS
		}))
	}
	open := func(ctx context.Context, s backend.DataSourceInstanceSettings) *Datasource {
		inst, err := NewDatasource(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		d := inst.(*Datasource)
		t.Cleanup(d.Dispose)
		return d
	}
	health := func(d *Datasource) *backend.CheckHealthResult {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		res, err := d.CheckHealth(ctx, &backend.CheckHealthRequest{})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}

	t.Run("through the proxy", func(t *testing.T) {
		d := open(grafana(), settings(true, "tcp://mqtt.private.test:1883"))
		if !d.socks.enabled() {
			t.Fatal("the proxy is configured on both sides but not used")
		}
		if res := health(d); res.Status != backend.HealthStatusOk {
			t.Fatalf("health through the proxy: %v %s", res.Status, res.Message)
		}
		from, to := base.Add(10*time.Minute), base.Add(70*time.Minute)
		sqlResp := runOne(t, d, dq(t, "A", map[string]any{"source": "sql", "metric": "temperature", "aggregation": "avg", "interval": "5m"}, from, to, time.Minute))
		fluxResp := runOne(t, d, dq(t, "B", map[string]any{"source": "flux", "metric": "temperature", "aggregation": "avg", "interval": "5m"}, from, to, time.Minute))
		if sqlResp.Error != nil || fluxResp.Error != nil {
			t.Fatalf("queries through the proxy: sql %v, flux %v", sqlResp.Error, fluxResp.Error)
		}
		sameSeries(t, "sql vs flux through the proxy", seriesOf(t, sqlResp.Frames), seriesOf(t, fluxResp.Frames), 1e-9)

		// Live MQTT: a retained message the plugin's live client (through the proxy) lists under /topics.
		topic := testsvc.RandomName("pdc") + "/temperature/dht22"
		pub := mqttPublisher(t)
		publish(t, pub, topic, true, "21.5")
		t.Cleanup(func() { publish(t, pub, topic, true, "") })
		srv := resourceServer(t, d)
		body, status := get(t, srv+"/topics?filter="+url.QueryEscape(strings.Split(topic, "/")[0]+"/#"))
		if status != http.StatusOK || !strings.Contains(body, topic) {
			t.Fatalf("/topics through the proxy: %d %s", status, body)
		}
		targets := proxy.Targets()
		for _, want := range []string{"pg.private.test:5432", "influx.private.test:8086", "mqtt.private.test:1883"} {
			if !slices.Contains(targets, want) {
				t.Errorf("the proxy never saw %s (targets %v)", want, targets)
			}
		}
	})

	t.Run("without the proxy the private names are unreachable", func(t *testing.T) {
		before := len(proxy.Targets())
		d := open(grafana(), settings(false, "tcp://mqtt.private.test:1883"))
		if res := health(d); res.Status != backend.HealthStatusError {
			t.Fatalf("private names reached without the proxy: %v %s", res.Status, res.Message)
		}
		if n := len(proxy.Targets()); n != before {
			t.Errorf("the proxy was used although the data source does not enable it")
		}
	})

	t.Run("a Grafana server without the proxy connects directly", func(t *testing.T) {
		d := open(context.Background(), settings(true, "tcp://mqtt.private.test:1883"))
		if d.socks.enabled() {
			t.Fatal("no proxy is configured on the server, yet one is used")
		}
	})

	t.Run("wrong proxy password", func(t *testing.T) {
		s := settings(true, "tcp://mqtt.private.test:1883")
		s.DecryptedSecureJSONData["secureSocksProxyPassword"] = "wrong"
		refused := proxy.Refused()
		d := open(grafana(), s)
		res := health(d)
		if res.Status != backend.HealthStatusError {
			t.Fatalf("connected with a wrong proxy password: %s", res.Message)
		}
		if strings.Contains(res.Message, "wrong") || strings.Contains(res.Message, "pdc-secret") {
			t.Errorf("the health message echoes a proxy password: %s", res.Message)
		}
		if proxy.Refused() == refused {
			t.Error("the proxy refused nothing")
		}
	})

	t.Run("WebSocket brokers are refused with a reason", func(t *testing.T) {
		d := open(grafana(), settings(true, "ws://mqtt.private.test:9001"))
		res := health(d)
		if res.Status != backend.HealthStatusError || !strings.Contains(res.Message, "secure SOCKS proxy") {
			t.Fatalf("ws:// through the proxy: %v %s", res.Status, res.Message)
		}
	})
}
