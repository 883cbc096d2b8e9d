package plugin

import (
	"context"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/data"
	"github.com/jackc/pgx/v5"

	"github.com/fieldline-iot/fieldline/pkg/live"
)

// Live streaming is pkg/live's engine; the Datasource makes one per instance (newLiveEngine), hands it the
// live queries' QueryData (liveBuilderSQL, liveMQTT) and delegates Grafana's stream calls to it.

var _ backend.StreamHandler = (*Datasource)(nil)

// newLiveEngine makes the instance's live engine from its settings.
func (d *Datasource) newLiveEngine(s backend.DataSourceInstanceSettings, settings live.Settings) *live.Engine {
	cfg := live.Config{UID: s.UID, Settings: settings, Secure: s.DecryptedSecureJSONData, Redact: d.redact}
	if d.pg != nil {
		cfg.Postgres = livePostgres{d.pg}
		cfg.Table, cfg.NotifyChannel = d.pg.cfg.Table, d.pg.cfg.NotifyChannel
	}
	if m := d.settings.MQTT; m != nil {
		cfg.MQTT = &live.MQTT{
			Options:  func(role string) *mqtt.ClientOptions { return mqttOptions(m, mqttClientID(m, role)) },
			Dial:     d.socks.mqtt(),
			AllowSys: m.AllowSys, TopicPrefixes: m.TopicPrefixes,
		}
	}
	return live.New(cfg)
}

// livePostgres gives the engine the instance's read-only transactions and connection settings.
type livePostgres struct{ pg *postgresBackend }

func (p livePostgres) ReadOnly(ctx context.Context, fn func(pgx.Tx) error) error {
	return p.pg.readOnly(ctx, fn)
}
func (p livePostgres) ConnConfig() *pgx.ConnConfig { return p.pg.pool.Config().ConnConfig }

// LiveStats returns the instance's live counters (tests and benchmarks).
func (d *Datasource) LiveStats() live.Stats {
	if d.live == nil {
		return live.Stats{}
	}
	return d.live.Stats()
}

// SubscribeStream admits well-formed paths of this data source whose live source is configured.
func (d *Datasource) SubscribeStream(ctx context.Context, req *backend.SubscribeStreamRequest) (*backend.SubscribeStreamResponse, error) {
	if d.live == nil || d.disposed.Load() {
		return &backend.SubscribeStreamResponse{Status: backend.SubscribeStreamStatusNotFound}, nil
	}
	return d.live.SubscribeStream(ctx, req)
}

// PublishStream is denied: live channels carry data from the database or the broker only.
func (d *Datasource) PublishStream(ctx context.Context, req *backend.PublishStreamRequest) (*backend.PublishStreamResponse, error) {
	return &backend.PublishStreamResponse{Status: backend.PublishStreamStatusPermissionDenied}, nil
}

// RunStream runs one channel's stream until no subscriber is left or the instance is disposed.
func (d *Datasource) RunStream(ctx context.Context, req *backend.RunStreamRequest, sender *backend.StreamSender) error {
	if d.live == nil {
		return d.settingsErr
	}
	return d.live.RunStream(ctx, req, sender)
}

// liveBuilderSQL answers a live builder SQL query: history until the seam, and a channel per series frame.
func (d *Datasource) liveBuilderSQL(ctx context.Context, q Query, dq backend.DataQuery) (data.Frames, error) {
	if q.Format == FormatTable {
		result, err := d.builderSQL(ctx, q, dq, false)
		if err != nil {
			return nil, err
		}
		result[0].AppendNotices(data.Notice{Severity: data.NoticeSeverityInfo,
			Text: "Live tail is available for time-series queries; this table shows its history only"})
		return result, nil
	}
	iv, err := bucketWidth(q, dq)
	if err != nil {
		return nil, err
	}
	lq := live.SQLQuery{RefID: q.RefID, Metric: q.Metric, Devices: q.Devices, Sensors: q.Sensors,
		Agg: string(q.Aggregation), Interval: iv, From: dq.TimeRange.From, To: dq.TimeRange.To}
	return d.live.SQLFrames(ctx, lq, func(to time.Time) (data.Frames, error) {
		hq := dq
		hq.TimeRange.To = to
		return d.builderSQL(ctx, q, hq, false) // one frame per series: SQLFrames gives each its channel
	})
}

// liveMQTT answers a live source "mqtt" query: an empty labels-mode frame with the channel.
func (d *Datasource) liveMQTT(ctx context.Context, q Query) (data.Frames, error) {
	f, err := d.live.MQTTFrames(ctx, live.MQTTQuery{RefID: q.RefID, Topic: q.Topic, Template: q.Template, PayloadFormat: q.PayloadFormat, JSON: q.JSON})
	if err != nil {
		return nil, downstream(err)
	}
	return f, nil
}

// withLiveNotice adds an info notice to the first frame of a live query whose kind is not streamed.
func withLiveNotice(q Query, text string) func(data.Frames, error) (data.Frames, error) {
	return func(result data.Frames, err error) (data.Frames, error) {
		if err == nil && q.Live && len(result) > 0 {
			result[0].AppendNotices(data.Notice{Severity: data.NoticeSeverityInfo, Text: text})
		}
		return result, err
	}
}
