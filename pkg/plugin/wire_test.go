package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend/grpcplugin"
	"github.com/grafana/grafana-plugin-sdk-go/data"
	"github.com/grafana/grafana-plugin-sdk-go/genproto/pluginv2"
	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/fieldline-iot/fieldline/internal/store"
	"github.com/fieldline-iot/fieldline/internal/telemetry"
)

// clientPlugin is the host side of one of the SDK's gRPC plugin services (what Grafana's
// pkg/plugins/backendplugin/grpcplugin does): it only turns the connection into a pluginv2 client.
type clientPlugin struct {
	goplugin.NetRPCUnsupportedPlugin
	client func(*grpc.ClientConn) any
}

func (p *clientPlugin) GRPCServer(*goplugin.GRPCBroker, *grpc.Server) error {
	return errors.New("host side only")
}

func (p *clientPlugin) GRPCClient(_ context.Context, _ *goplugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return p.client(c), nil
}

// TestWireProtocol builds the plugin executable and starts it the way Grafana does — hashicorp go-plugin with
// the SDK's handshake (protocol 2, grafana_plugin_type=datasource) over gRPC — then calls CheckHealth,
// QueryData and CallResource through the pluginv2 stubs against the real databases.
func TestWireProtocol(t *testing.T) {
	rows := dataset()
	pgURL, pool := newPostgres(t, rows)
	influx := newInflux(t, rows)
	settings := settingsFor(t, pgURL, &influx, nil)

	bin := filepath.Join(t.TempDir(), "gpx_fieldline")
	build := exec.Command("go", "build", "-o", bin, "github.com/fieldline-iot/fieldline/pkg")
	build.Env = os.Environ()
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	cmd := exec.Command(bin)
	cmd.Env = os.Environ()
	client := goplugin.NewClient(&goplugin.ClientConfig{
		HandshakeConfig: goplugin.HandshakeConfig{
			ProtocolVersion:  grpcplugin.ProtocolVersion,
			MagicCookieKey:   grpcplugin.MagicCookieKey,
			MagicCookieValue: grpcplugin.MagicCookieValue,
		},
		VersionedPlugins: map[int]goplugin.PluginSet{grpcplugin.ProtocolVersion: {
			"diagnostics": &clientPlugin{client: func(c *grpc.ClientConn) any { return pluginv2.NewDiagnosticsClient(c) }},
			"data":        &clientPlugin{client: func(c *grpc.ClientConn) any { return pluginv2.NewDataClient(c) }},
			"resource":    &clientPlugin{client: func(c *grpc.ClientConn) any { return pluginv2.NewResourceClient(c) }},
			"stream":      &clientPlugin{client: func(c *grpc.ClientConn) any { return pluginv2.NewStreamClient(c) }},
		}},
		Cmd:              cmd,
		AllowedProtocols: []goplugin.Protocol{goplugin.ProtocolGRPC},
		Logger:           hclog.New(&hclog.LoggerOptions{Name: "plugin", Level: hclog.Warn, Output: os.Stderr}),
		StartTimeout:     30 * time.Second,
	})
	t.Cleanup(client.Kill)
	rpc, err := client.Client()
	if err != nil {
		t.Fatalf("start plugin: %v", err)
	}
	dispense := func(name string) any {
		raw, err := rpc.Dispense(name)
		if err != nil {
			t.Fatalf("dispense %s: %v", name, err)
		}
		return raw
	}
	diag := dispense("diagnostics").(pluginv2.DiagnosticsClient)
	dataClient := dispense("data").(pluginv2.DataClient)
	resources := dispense("resource").(pluginv2.ResourceClient)
	streams := dispense("stream").(pluginv2.StreamClient)

	pc := &pluginv2.PluginContext{
		OrgId:    1,
		PluginId: PluginID,
		DataSourceInstanceSettings: &pluginv2.DataSourceInstanceSettings{
			Id: settings.ID, Uid: settings.UID, //nolint:staticcheck // the field Grafana still sends on the wire
			Name: settings.Name, JsonData: settings.JSONData,
			DecryptedSecureJsonData: settings.DecryptedSecureJSONData, LastUpdatedMS: settings.Updated.UnixMilli(),
		},
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	health, err := diag.CheckHealth(ctx, &pluginv2.CheckHealthRequest{PluginContext: pc})
	if err != nil {
		t.Fatalf("CheckHealth: %v", err)
	}
	if health.Status != pluginv2.CheckHealthResponse_OK || !strings.Contains(health.Message, "PostgreSQL") || !strings.Contains(health.Message, "InfluxDB") {
		t.Fatalf("CheckHealth: %v %q", health.Status, health.Message)
	}
	t.Logf("health: %s", health.Message)

	from, to := base.Add(10*time.Minute), base.Add(70*time.Minute)
	query := func(refID string, model map[string]any) *pluginv2.DataQuery {
		model["refId"] = refID
		raw, _ := json.Marshal(model)
		return &pluginv2.DataQuery{RefId: refID, Json: raw, IntervalMS: 60000, MaxDataPoints: 1000,
			TimeRange: &pluginv2.TimeRange{FromEpochMS: from.UnixMilli(), ToEpochMS: to.UnixMilli()}}
	}
	resp, err := dataClient.QueryData(ctx, &pluginv2.QueryDataRequest{PluginContext: pc, Queries: []*pluginv2.DataQuery{
		query("sql", map[string]any{"source": "sql", "metric": "temperature", "aggregation": "avg", "interval": "5m"}),
		query("flux", map[string]any{"source": "flux", "metric": "temperature", "aggregation": "avg", "interval": "5m"}),
		query("bad", map[string]any{"source": "sql", "mode": "code", "rawSql": "DROP TABLE readings"}),
	}})
	if err != nil {
		t.Fatalf("QueryData: %v", err)
	}
	decode := func(refID string) data.Frames {
		r := resp.Responses[refID]
		if r == nil || r.Error != "" {
			t.Fatalf("%s: %v", refID, r)
		}
		frames, err := data.UnmarshalArrowFrames(r.Frames)
		if err != nil {
			t.Fatalf("%s: decode arrow frames: %v", refID, err)
		}
		return frames
	}
	sqlSeries := seriesOf(t, decode("sql"))
	if len(sqlSeries) != 3 || len(sqlSeries["device=pico,sensor=dht22"]) != 12 {
		t.Fatalf("sql over the wire: %d series", len(sqlSeries))
	}
	sameSeries(t, "wire sql vs flux", sqlSeries, seriesOf(t, decode("flux")), 1e-9)
	if bad := resp.Responses["bad"]; bad == nil || !strings.Contains(bad.Error, "read-only") || bad.ErrorSource != "downstream" {
		t.Fatalf("DROP over the wire: %+v", bad)
	}

	call := func(path string) (int32, string) {
		stream, err := resources.CallResource(ctx, &pluginv2.CallResourceRequest{PluginContext: pc, Path: strings.SplitN(path, "?", 2)[0], Method: "GET", Url: path})
		if err != nil {
			t.Fatalf("CallResource %s: %v", path, err)
		}
		var code int32
		var body []byte
		for {
			msg, err := stream.Recv()
			if err != nil {
				break
			}
			if msg.Code != 0 {
				code = msg.Code
			}
			body = append(body, msg.Body...)
		}
		return code, string(body)
	}
	if code, body := call("devices?metric=temperature"); code != 200 || strings.TrimSpace(body) != `["node1","pico"]` {
		t.Fatalf("/devices: %d %s", code, body)
	}
	if code, body := call("sensors?device=pico&metric=temperature"); code != 200 || strings.TrimSpace(body) != `["dht22","internal"]` {
		t.Fatalf("/sensors: %d %s", code, body)
	}
	if code, body := call("topics"); code != 404 || !strings.Contains(body, "MQTT not configured") {
		t.Fatalf("/topics: %d %s", code, body)
	}

	// Live over the wire: a live query's channel, SubscribeStream, then RunStream receiving the frame of a
	// row written (with NOTIFY) after the stream started; PublishStream is denied.
	now := time.Now()
	liveResp, err := dataClient.QueryData(ctx, &pluginv2.QueryDataRequest{PluginContext: pc, Queries: []*pluginv2.DataQuery{{
		RefId: "live", Json: []byte(`{"refId":"live","source":"sql","metric":"temperature","device":"wire","live":true}`),
		TimeRange: &pluginv2.TimeRange{FromEpochMS: now.Add(-time.Hour).UnixMilli(), ToEpochMS: now.UnixMilli()}}}})
	if err != nil || liveResp.Responses["live"].Error != "" {
		t.Fatalf("live QueryData: %v %v", err, liveResp)
	}
	liveFrames, err := data.UnmarshalArrowFrames(liveResp.Responses["live"].Frames)
	if err != nil || len(liveFrames) != 1 || liveFrames[0].Meta == nil || liveFrames[0].Meta.Channel == "" {
		t.Fatalf("live frames: %v %v", liveFrames, err)
	}
	path := strings.TrimPrefix(liveFrames[0].Meta.Channel, "ds/"+settings.UID+"/")
	sub, err := streams.SubscribeStream(ctx, &pluginv2.SubscribeStreamRequest{PluginContext: pc, Path: path})
	if err != nil || sub.Status != pluginv2.SubscribeStreamResponse_OK {
		t.Fatalf("SubscribeStream: %v %v", sub, err)
	}
	if pub, err := streams.PublishStream(ctx, &pluginv2.PublishStreamRequest{PluginContext: pc, Path: path, Data: []byte("{}")}); err != nil || pub.Status != pluginv2.PublishStreamResponse_PERMISSION_DENIED {
		t.Fatalf("PublishStream: %v %v", pub, err)
	}
	sctx, stopStream := context.WithCancel(ctx)
	defer stopStream()
	run, err := streams.RunStream(sctx, &pluginv2.RunStreamRequest{PluginContext: pc, Path: path})
	if err != nil {
		t.Fatalf("RunStream: %v", err)
	}
	info, err := store.Migrate(ctx, pool, store.TimescaleAuto)
	if err != nil {
		t.Fatal(err)
	}
	w := store.NewWriter(pool, info, true)
	writeErr := make(chan error, 1)
	go func() {
		// The stream reads back from its seam once its LISTEN is up, so writing right away is fine either way.
		writeErr <- w.Write(ctx, []telemetry.Reading{{Time: time.Now().UTC().Truncate(time.Microsecond), Device: "wire", Metric: "temperature", Sensor: "s", Value: 42.5}})
	}()
	for {
		pkt, err := run.Recv()
		if err != nil {
			t.Fatalf("RunStream Recv: %v", err)
		}
		var f data.Frame
		if err := json.Unmarshal(pkt.Data, &f); err != nil {
			t.Fatalf("stream packet: %v", err)
		}
		if f.Rows() == 1 && len(f.Fields) == 3 {
			if v, _ := f.Fields[2].FloatAt(0); v == 42.5 && f.Fields[0].At(0) == `{device="wire", sensor="s"}` {
				break
			}
		}
		t.Logf("stream frame: %d rows", f.Rows())
	}
	if err := <-writeErr; err != nil {
		t.Fatal(err)
	}
}
