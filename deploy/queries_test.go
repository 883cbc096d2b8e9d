package deploy

import (
	"context"
	"encoding/json"
	"math"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/jackc/pgx/v5/pgxpool"
	"gopkg.in/yaml.v3"

	"github.com/fieldline-iot/fieldline/internal/store"
	"github.com/fieldline-iot/fieldline/internal/telemetry"
	"github.com/fieldline-iot/fieldline/internal/testsvc"
	"github.com/fieldline-iot/fieldline/pkg/plugin"
)

// demoReadings are 30 minutes of the demo's series at one reading per 10 s, ending now; node2 stops 5 minutes
// before the end (a silent node).
func demoReadings(now time.Time) []telemetry.Reading {
	series := []struct {
		device, metric, sensor string
		base                   float64
	}{
		{"pico", "temperature", "dht22", 22.4}, {"pico", "humidity", "dht22", 39.7}, {"pico", "temperature", "internal", 30.6},
		{"node1", "temperature", "", 27.6}, {"node1", "humidity", "", 54.1}, {"node1", "gas_resistance", "", 101169},
		{"node2", "temperature", "", 36.8}, {"node2", "humidity", "", 48.8},
		{"signal", "rssi", "", -39}, {"signal", "snr", "", 11}, {"stats", "packets_received", "", 0}, {"stats", "crc_errors", "", 0},
	}
	var out []telemetry.Reading
	for i := range 180 {
		t := now.Add(-30 * time.Minute).Add(time.Duration(i) * 10 * time.Second)
		for _, s := range series {
			if s.device == "node2" && t.After(now.Add(-5*time.Minute)) {
				continue
			}
			v := s.base + math.Sin(float64(i)/9)
			switch s.metric {
			case "packets_received":
				v = float64(2 * (i + 1))
			case "crc_errors":
				v = float64(i / 40)
			}
			out = append(out, telemetry.Reading{Time: t, Device: s.device, Metric: s.metric, Sensor: s.sensor, Value: v})
		}
	}
	return out
}

// demoStates are the demo's retained status as the ingester stores it (value_type text): the Pico W online, its
// last will "offline" 20 minutes ago, online again a minute later; the gateway online all along.
func demoStates(now time.Time) []telemetry.Reading {
	state := func(ago time.Duration, device, value string) telemetry.Reading {
		return telemetry.Reading{Time: now.Add(-ago), Device: device, Metric: "status", Kind: telemetry.KindText, Text: value}
	}
	return []telemetry.Reading{
		state(30*time.Minute, "pico", "online"), state(30*time.Minute, "gateway", "online"),
		state(20*time.Minute, "pico", "offline"), state(19*time.Minute, "pico", "online"),
	}
}

// TestProvisionedQueriesRun runs every provisioned dashboard query (panels, variables, annotations) and alert-rule
// query through the plugin's QueryData against a real PostgreSQL database with the ingester's schema and demo
// readings and states (skipped when the services are not up): the code SQL (error rate, node silence) is valid
// against the real schema, and each query returns data.
func TestProvisionedQueriesRun(t *testing.T) {
	dbURL := testsvc.NewPostgresDB(t)
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	info, err := store.Migrate(ctx, pool, store.TimescaleAuto)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	rows := append(demoReadings(now), demoStates(now)...)
	w := store.NewWriter(pool, info, false)
	for len(rows) > 0 {
		n := min(len(rows), 500)
		if err := w.Write(ctx, rows[:n]); err != nil {
			t.Fatal(err)
		}
		rows = rows[n:]
	}

	// The provisioned data source, pointed at the test database instead of the compose service, as the role it
	// provisions (fieldline_reader, SELECT only through migration 7's grants): every panel and rule runs with
	// exactly the rights Grafana has.
	var f dsFile
	if err := yaml.Unmarshal([]byte(readFile(t, filepath.Join(root, "provisioning", "datasources", "fieldline.yaml"))), &f); err != nil {
		t.Fatal(err)
	}
	if user := f.Datasources[0].JSONData["postgres"].(map[string]any)["user"]; user != "fieldline_reader" {
		t.Fatalf("the provisioned data source reads as %v, want fieldline_reader", user)
	}
	u, _ := url.Parse(testsvc.RoleURL(t, "FIELDLINE_TEST_POSTGRES_READER_URL", dbURL))
	pw, _ := u.User.Password()
	jd := f.Datasources[0].JSONData
	jd["postgres"] = map[string]any{"host": u.Host, "database": strings.TrimPrefix(u.Path, "/"), "user": u.User.Username(), "sslMode": "disable"}
	delete(jd, "influx")
	delete(jd, "mqtt")
	raw, _ := json.Marshal(jd)
	inst, err := plugin.NewDatasource(ctx, backend.DataSourceInstanceSettings{UID: dsUID, Name: "Fieldline", JSONData: raw,
		DecryptedSecureJSONData: map[string]string{"postgresPassword": pw}, Updated: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	ds := inst.(*plugin.Datasource)
	defer ds.Dispose()

	run := func(name string, q json.RawMessage, from, to time.Time) backend.DataResponse {
		t.Helper()
		var ref struct {
			RefID string `json:"refId"`
		}
		_ = json.Unmarshal(q, &ref)
		resp, err := ds.QueryData(ctx, &backend.QueryDataRequest{Queries: []backend.DataQuery{{
			RefID: ref.RefID, JSON: q, TimeRange: backend.TimeRange{From: from, To: to}, Interval: 10 * time.Second, MaxDataPoints: 1000,
		}}})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		r := resp.Responses[ref.RefID]
		if r.Error != nil {
			t.Errorf("%s: %v", name, r.Error)
			return r
		}
		n := 0
		for _, fr := range r.Frames {
			if fr != nil && len(fr.Fields) > 0 {
				n += fr.Fields[0].Len()
			}
		}
		if n == 0 {
			t.Errorf("%s: no rows", name)
		}
		return r
	}

	files, _ := filepath.Glob(filepath.Join(root, "provisioning", "dashboards", "fieldline", "*.json"))
	for _, file := range files {
		var d dashboard
		if err := json.Unmarshal([]byte(readFile(t, file)), &d); err != nil {
			t.Fatal(err)
		}
		for _, v := range d.Templating.List {
			if v.Type == "query" {
				run(d.Title+" / variable "+v.Name, v.Query, now.Add(-time.Hour), now)
			}
		}
		for _, pn := range d.Panels {
			for _, q := range pn.Targets {
				run(d.Title+" / "+pn.Title, interpolate(q), now.Add(-time.Hour), now)
			}
		}
		for _, a := range d.Annotations.List {
			if a.BuiltIn != 1 {
				run(d.Title+" / annotation "+a.Name, a.Target, now.Add(-time.Hour), now)
			}
		}
	}

	var af alertFile
	if err := yaml.Unmarshal([]byte(readFile(t, filepath.Join(root, "provisioning", "alerting", "fieldline-rules.yaml"))), &af); err != nil {
		t.Fatal(err)
	}
	for _, g := range af.Groups {
		for _, r := range g.Rules {
			for _, d := range r.Data {
				if d.DatasourceUID != dsUID {
					continue
				}
				q, _ := json.Marshal(d.Model)
				resp := run("alert "+r.UID, q, now.Add(-time.Duration(d.RelativeTimeRange.From)*time.Second), now.Add(-time.Duration(d.RelativeTimeRange.To)*time.Second))
				if r.UID != "fieldline-node-silent" || resp.Error != nil {
					continue
				}
				// node2 stopped 5 minutes ago: its silence is about 300 s, everyone else's below 120 s.
				silent := map[string]float64{}
				for _, fr := range resp.Frames {
					for _, fl := range fr.Fields[1:] {
						if v, ok := fl.ConcreteAt(fl.Len() - 1); ok {
							silent[fl.Labels["device"]] = v.(float64)
						}
					}
				}
				if len(silent) != 5 || silent["node2"] < 290 || silent["node2"] > 400 || silent["node1"] > 120 || silent["pico"] > 120 {
					t.Errorf("silent seconds per device: %v (want node2 ≈ 300, the others < 120)", silent)
				}
			}
		}
	}
}
