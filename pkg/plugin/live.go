package plugin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/data"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/fieldline-iot/fieldline/internal/store"
	"github.com/fieldline-iot/fieldline/pkg/live/mqttlive"
	"github.com/fieldline-iot/fieldline/pkg/live/pglisten"
)

// Live streaming (issue 4): SubscribeStream / PublishStream / RunStream on *Datasource.
//
// A live builder SQL query (aggregation none) answers its history up to the seam S = min(to, now) − δ and
// gives every series frame a channel of its own (see live_channel.go); RunStream for such a channel shares
// the instance's ONE LISTEN connection (pkg/live/pglisten), reads back rows ≥ S once the LISTEN is active, then
// forwards notified rows (read back by watermark when the batch did not fit in the payload), deduplicated by
// exact (device, metric, sensor, time, value). After a reconnect every stream reads back from where it was.
//
// A source "mqtt" query gets one channel; RunStream subscribes the instance's ONE MQTT client
// (pkg/live/mqttlive) to the topic filter and sends one series per concrete topic (and metric) in Grafana's
// labels push mode. Frames are paced by pkg/live/pacer.

var _ backend.StreamHandler = (*Datasource)(nil)

// liveState is the live part of a Datasource.
type liveState struct {
	settings LiveSettings
	registry liveRegistry
	key      []byte // signs channel paths (liveKey)

	mu       sync.Mutex
	listener *pglisten.Listener[store.Notification]
	mqtt     *mqttlive.Client

	streams atomic.Int64 // running streams
	frames  atomic.Int64 // frames sent
	rows    atomic.Int64 // rows sent
	dropped atomic.Int64 // rows dropped by full stream buffers
}

// LiveStats are counters of an instance's live streams (tests and benchmarks).
type LiveStats struct {
	Streams, Frames, Rows, Dropped int64
	ListenerConnections            int
	MQTTConnections                int
}

// LiveStats returns the instance's live counters.
func (d *Datasource) LiveStats() LiveStats {
	s := LiveStats{Streams: d.live.streams.Load(), Frames: d.live.frames.Load(), Rows: d.live.rows.Load(), Dropped: d.live.dropped.Load()}
	d.live.mu.Lock()
	defer d.live.mu.Unlock()
	if d.live.listener != nil {
		s.ListenerConnections = d.live.listener.Connections()
	}
	if d.live.mqtt != nil {
		s.MQTTConnections = d.live.mqtt.Connections()
	}
	return s
}

// SubscribeStream admits well-formed paths of this data source whose live source is configured.
func (d *Datasource) SubscribeStream(ctx context.Context, req *backend.SubscribeStreamRequest) (*backend.SubscribeStreamResponse, error) {
	notFound := &backend.SubscribeStreamResponse{Status: backend.SubscribeStreamStatusNotFound}
	if d.disposed.Load() || d.settingsErr != nil {
		return notFound, nil
	}
	sel, _, err := d.parsePath(requestUID(req.PluginContext), req.Path)
	if err != nil {
		backend.Logger.FromContext(ctx).Debug("Live subscription rejected", "path", req.Path, "error", err)
		return notFound, nil
	}
	if err := d.liveAvailable(sel); err != nil {
		return notFound, nil
	}
	return &backend.SubscribeStreamResponse{Status: backend.SubscribeStreamStatusOK}, nil
}

// PublishStream is denied: live channels carry data from the database or the broker only.
func (d *Datasource) PublishStream(context.Context, *backend.PublishStreamRequest) (*backend.PublishStreamResponse, error) {
	return &backend.PublishStreamResponse{Status: backend.PublishStreamStatusPermissionDenied}, nil
}

// RunStream runs one channel's stream until its context ends (no subscriber left) or the instance is
// disposed.
func (d *Datasource) RunStream(ctx context.Context, req *backend.RunStreamRequest, sender *backend.StreamSender) error {
	sel, regID, err := d.parsePath(requestUID(req.PluginContext), req.Path)
	if err != nil {
		return fmt.Errorf("live stream %q: %w", req.Path, err)
	}
	if err := d.liveAvailable(sel); err != nil {
		return err
	}
	if regID != "" {
		defer d.live.registry.hold(regID)()
	}
	d.live.mu.Lock()
	if d.disposed.Load() {
		d.live.mu.Unlock()
		return errDisposed
	}
	d.goroutines.Add(1)
	d.live.mu.Unlock()
	defer d.goroutines.Done()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(d.baseCtx, cancel)
	defer stop()

	d.live.streams.Add(1)
	defer d.live.streams.Add(-1)
	logger := backend.Logger.FromContext(ctx)
	logger.Debug("Live stream started", "path", req.Path)
	switch sel.Kind {
	case kindPostgres:
		err = d.runPostgresStream(ctx, sel, sender)
	case kindMQTT:
		err = d.runMQTTStream(ctx, sel, sender)
	}
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		err = nil // no subscriber left, or the instance went away
	}
	logger.Debug("Live stream stopped", "path", req.Path, "error", err)
	return err
}

func requestUID(pc backend.PluginContext) string {
	if pc.DataSourceInstanceSettings == nil {
		return ""
	}
	return pc.DataSourceInstanceSettings.UID
}

func (d *Datasource) liveAvailable(sel *liveSelector) error {
	switch {
	case sel.Kind == kindPostgres && d.pg == nil:
		return errors.New("live: PostgreSQL is not configured for this data source")
	case sel.Kind == kindMQTT && d.settings.MQTT == nil:
		return errors.New("live: MQTT is not configured for this data source")
	}
	return nil
}

// pgListener returns the instance's listener, starting it on first use.
func (d *Datasource) pgListener() *pglisten.Listener[store.Notification] {
	d.live.mu.Lock()
	defer d.live.mu.Unlock()
	if d.live.listener != nil {
		return d.live.listener
	}
	base := d.pg.pool.Config().ConnConfig
	l := pglisten.New(pglisten.Config[store.Notification]{
		Channel: store.Channel,
		Connect: func(ctx context.Context, onNotification pgconn.NotificationHandler) (*pgx.Conn, error) {
			cc := base.Copy()
			cc.RuntimeParams["application_name"] = "fieldline-grafana-live"
			cc.OnNotification = onNotification
			conn, err := pgx.ConnectConfig(ctx, cc)
			if err != nil {
				return nil, errors.New(d.redact(err.Error()))
			}
			return conn, nil
		},
		Decode: store.DecodeNotification,
		Logger: liveLogger(),
		// As for MQTT (mqttClient): under load, one read per frame interval.
		ReadInterval: d.live.settings.FrameInterval,
	})
	d.live.listener = l
	d.goroutines.Add(1)
	go func() {
		defer d.goroutines.Done()
		_ = l.Run(d.baseCtx)
	}()
	return l
}

// mqttClient returns the instance's shared MQTT client, creating it on first use.
func (d *Datasource) mqttClient() *mqttlive.Client {
	d.live.mu.Lock()
	defer d.live.mu.Unlock()
	if d.live.mqtt != nil {
		return d.live.mqtt
	}
	cfg := d.settings.MQTT
	c := mqttlive.New(mqttlive.Config{
		Options: mqttOptions(cfg, mqttClientID(cfg.ClientIDPrefix, "live")),
		QoS:     d.live.settings.QoS,
		Logger:  liveLogger(),
		// Under load, read the socket once per frame interval: a stream sends at most one frame per interval
		// anyway, and its pacer sends right after each read, so this adds no latency while one wake-up,
		// read and acknowledgement write serves every message of the interval.
		ReadInterval: d.live.settings.FrameInterval,
	})
	d.live.mqtt = c
	d.goroutines.Add(1)
	go func() {
		defer d.goroutines.Done()
		<-d.baseCtx.Done()
		c.Close()
	}()
	return c
}

// liveLogger routes the helper packages' slog output to the SDK logger.
func liveLogger() *slog.Logger { return slog.New(sdkLogHandler{}) }

type sdkLogHandler struct{ attrs []any }

func (h sdkLogHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h sdkLogHandler) Handle(_ context.Context, r slog.Record) error {
	args := append([]any{}, h.attrs...)
	r.Attrs(func(a slog.Attr) bool {
		args = append(args, a.Key, a.Value.String())
		return true
	})
	switch {
	case r.Level >= slog.LevelError:
		backend.Logger.Error(r.Message, args...)
	case r.Level >= slog.LevelWarn:
		backend.Logger.Warn(r.Message, args...)
	case r.Level >= slog.LevelInfo:
		backend.Logger.Info(r.Message, args...)
	default:
		backend.Logger.Debug(r.Message, args...)
	}
	return nil
}
func (h sdkLogHandler) WithAttrs(as []slog.Attr) slog.Handler {
	n := sdkLogHandler{attrs: append([]any{}, h.attrs...)}
	for _, a := range as {
		n.attrs = append(n.attrs, a.Key, a.Value.String())
	}
	return n
}
func (h sdkLogHandler) WithGroup(string) slog.Handler { return h }

// withLiveNotice adds an info notice to the first frame of a live query whose kind is not streamed.
func withLiveNotice(q Query, text string) func(data.Frames, error) (data.Frames, error) {
	return func(frames data.Frames, err error) (data.Frames, error) {
		if err == nil && q.Live && len(frames) > 0 {
			frames[0].AppendNotices(data.Notice{Severity: data.NoticeSeverityInfo, Text: text})
		}
		return frames, err
	}
}

// setChannel points frame f at a live channel for sel. When none can be had (the registry bound), the frame
// stays history only, with a notice that says why.
func (d *Datasource) setChannel(ctx context.Context, f *data.Frame, sel *liveSelector) {
	owner := ""
	if u := backend.UserFromContext(ctx); u != nil {
		owner = u.Login
	}
	path, err := d.channelPath(sel, owner)
	if err != nil {
		f.AppendNotices(data.Notice{Severity: data.NoticeSeverityWarning, Text: "Live: " + err.Error() + "; this panel shows history only until it is refreshed"})
		return
	}
	if f.Meta == nil {
		f.Meta = &data.FrameMeta{}
	}
	f.Meta.Channel = d.channel(path)
}
