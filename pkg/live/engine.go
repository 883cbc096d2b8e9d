// Package live is Fieldline's live engine: the Grafana Live streams of one data-source instance, behind the
// SDK's StreamHandler (SubscribeStream, RunStream, PublishStream), which the plugin's Datasource delegates to.
//
//   - Sources: PostgreSQL LISTEN/NOTIFY through the instance's ONE listener connection (pglisten) and MQTT
//     through its ONE shared client (mqttlive), both started on first use and stopped by Close.
//   - Channels (channel.go): every live query execution gets channel paths of its own, a signed binary
//     selector (or a registry id for long ones); paths are authenticated and validated again before use.
//   - The seam (seam.go): a live SQL query answers its history up to S = min(to, now) − δ and its stream takes
//     over from S, reading back rows ≥ S once LISTEN is active, with no gap and no duplicate (postgres.go).
//   - Pacing: frames are coalesced by pacer (at most one per FrameInterval under load, the first row after a
//     quiet spell at once) with a bounded buffer.
//   - Sharing (share.go): the streams whose selectors differ only in seam and nonce (N panels on one query) are
//     members of one group with one source; each frame is built and JSON-encoded once and sent by every member,
//     each member joining at its own seam.
//
// Frames come from pkg/frames, SQL from pkg/sqlquery: the engine runs them, it does not build them.
package live

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/data"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/fieldline-iot/fieldline/internal/mqttconn"
	"github.com/fieldline-iot/fieldline/internal/store"
	"github.com/fieldline-iot/fieldline/pkg/live/mqttlive"
	"github.com/fieldline-iot/fieldline/pkg/live/pglisten"
	"github.com/fieldline-iot/fieldline/pkg/sqlquery"
)

// Postgres is what the engine needs of the data source's PostgreSQL connection.
type Postgres interface {
	// ReadOnly runs fn in a read-only transaction (the live read-back).
	ReadOnly(ctx context.Context, fn func(pgx.Tx) error) error
	// ConnConfig is the connection configuration the listener copies for its LISTEN connection.
	ConnConfig() *pgx.ConnConfig
}

// MQTT is what the engine needs of the data source's broker settings.
type MQTT struct {
	// Options returns the connection options for a new client of the given role ("live"), with a fresh
	// client id.
	Options func(role string) *mqtt.ClientOptions
	// Dial, when set, opens the broker connections (Grafana's secure SOCKS proxy); nil: direct.
	Dial          mqttconn.ContextDialer
	AllowSys      bool     // admit $SYS/... filters
	TopicPrefixes []string // when set, filters must be under one of them
}

// Config configures an Engine.
type Config struct {
	UID      string // the data source's UID: channels are ds/<uid>/<path>
	Settings Settings
	// Secure is the data source's decrypted secure settings: the key that signs channel paths derives from
	// them (see channelKey).
	Secure   map[string]string
	Postgres Postgres // nil: PostgreSQL not configured
	// Table, when set, is the user's own table (sqlquery.Table): live SQL reads it back and listens on
	// NotifyChannel, whose payloads are its rows as JSON; no NotifyChannel: live SQL is refused.
	Table         *sqlquery.Table
	NotifyChannel string
	MQTT          *MQTT // nil: MQTT not configured
	// Redact removes secrets from messages that quote connection errors.
	Redact func(string) string
}

// ErrClosed answers calls on an engine that Close has ended (the data source is being reconfigured).
var ErrClosed = errors.New("data source is being reconfigured: retry the request")

var _ backend.StreamHandler = (*Engine)(nil)

// Engine runs the live streams of one data-source instance.
type Engine struct {
	cfg      Config
	uid      string
	settings Settings
	registry registry
	key      []byte // signs channel paths (channelKey)

	// ctx lives as long as the engine: the goroutines it owns (streams, listener, client) watch it, and Close
	// cancels it and waits for them.
	ctx        context.Context
	cancel     context.CancelFunc
	goroutines sync.WaitGroup

	mu       sync.Mutex // guards closed, listener, mqtt; RunStream joins goroutines under it
	closed   bool
	listener *pglisten.Listener[store.Notification]
	states   *pglisten.Listener[store.Notification] // StatesChannel, started on the first states stream
	mqtt     *mqttlive.Client

	// Shared streams (share.go): the groups running, by key. Lock order: groupsMu, then mu.
	groupsMu  sync.Mutex
	groups    map[string]*group
	ownGroups atomic.Uint64 // keys of unshared streams

	streams atomic.Int64 // running streams
	frames  atomic.Int64 // frames sent
	rows    atomic.Int64 // rows sent
	dropped atomic.Int64 // rows dropped by full stream buffers
}

// New returns an engine; it connects nothing until a stream or resource needs a source.
func New(cfg Config) *Engine {
	if cfg.Redact == nil {
		cfg.Redact = func(s string) string { return s }
	}
	e := &Engine{cfg: cfg, uid: cfg.UID, settings: cfg.Settings, key: channelKey(cfg.UID, cfg.Secure)}
	e.ctx, e.cancel = context.WithCancel(context.Background())
	return e
}

// Close ends every stream and source and waits for their goroutines. Later calls get ErrClosed.
func (e *Engine) Close() {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return
	}
	e.closed = true
	e.mu.Unlock()
	e.cancel()
	e.goroutines.Wait()
}

func (e *Engine) redact(s string) string { return e.cfg.Redact(s) }

// Stats are counters of an instance's live streams (tests and benchmarks).
type Stats struct {
	Streams, Frames, Rows, Dropped int64
	// Sources is the number of source streams running: streams whose channels differ only in seam and
	// nonce share one (share.go).
	Sources             int
	ListenerConnections int
	MQTTConnections     int
}

// Stats returns the engine's counters.
func (e *Engine) Stats() Stats {
	s := Stats{Streams: e.streams.Load(), Frames: e.frames.Load(), Rows: e.rows.Load(), Dropped: e.dropped.Load(), Sources: e.groupCount()}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.listener != nil {
		s.ListenerConnections = e.listener.Connections()
	}
	if e.states != nil {
		s.ListenerConnections += e.states.Connections()
	}
	if e.mqtt != nil {
		s.MQTTConnections = e.mqtt.Connections()
	}
	return s
}

// SubscribeStream admits well-formed paths of this data source whose live source is configured.
func (e *Engine) SubscribeStream(ctx context.Context, req *backend.SubscribeStreamRequest) (*backend.SubscribeStreamResponse, error) {
	notFound := &backend.SubscribeStreamResponse{Status: backend.SubscribeStreamStatusNotFound}
	e.mu.Lock()
	closed := e.closed
	e.mu.Unlock()
	if closed {
		return notFound, nil
	}
	sel, _, err := e.ParsePath(requestUID(req.PluginContext), req.Path)
	if err != nil {
		backend.Logger.FromContext(ctx).Debug("Live subscription rejected", "path", req.Path, "error", err)
		return notFound, nil
	}
	if err := e.available(sel); err != nil {
		return notFound, nil
	}
	return &backend.SubscribeStreamResponse{Status: backend.SubscribeStreamStatusOK}, nil
}

// PublishStream is denied: live channels carry data from the database or the broker only.
func (e *Engine) PublishStream(context.Context, *backend.PublishStreamRequest) (*backend.PublishStreamResponse, error) {
	return &backend.PublishStreamResponse{Status: backend.PublishStreamStatusPermissionDenied}, nil
}

// RunStream runs one channel's stream until its context ends (no subscriber left) or the engine is closed.
func (e *Engine) RunStream(ctx context.Context, req *backend.RunStreamRequest, sender *backend.StreamSender) error {
	sel, regID, err := e.ParsePath(requestUID(req.PluginContext), req.Path)
	if err != nil {
		return fmt.Errorf("live stream %q: %w", req.Path, err)
	}
	if err := e.available(sel); err != nil {
		return err
	}
	if regID != "" {
		defer e.registry.hold(regID)()
	}
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return ErrClosed
	}
	e.goroutines.Add(1)
	e.mu.Unlock()
	defer e.goroutines.Done()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(e.ctx, cancel)
	defer stop()

	e.streams.Add(1)
	defer e.streams.Add(-1)
	logger := backend.Logger.FromContext(ctx)
	logger.Debug("Live stream started", "path", req.Path)
	err = e.runShared(ctx, sel, sender)
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		err = nil // no subscriber left, or the engine went away
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

func (e *Engine) available(sel *Selector) error {
	switch {
	case sel.Kind == KindPostgres && e.cfg.Postgres == nil:
		return errors.New("live: PostgreSQL is not configured for this data source")
	case sel.Kind == KindPostgres && !sel.States && e.cfg.Table != nil && e.cfg.NotifyChannel == "":
		return errors.New("live: the data source reads your own table; set postgres.table.notifyChannel to the channel its trigger notifies on")
	case sel.Kind == KindMQTT && e.cfg.MQTT == nil:
		return errors.New("live: MQTT is not configured for this data source")
	}
	return nil
}

// start runs fn on a goroutine the engine waits for in Close; false when the engine is closed. Callers hold
// e.mu.
func (e *Engine) startLocked(fn func()) bool {
	if e.closed {
		return false
	}
	e.goroutines.Add(1)
	go func() {
		defer e.goroutines.Done()
		fn()
	}()
	return true
}

// pgListener returns the instance's listener for readings (states: for the states table), starting it on first
// use: one LISTEN connection per channel in use, shared by every stream of the instance.
func (e *Engine) pgListener(states bool) *pglisten.Listener[store.Notification] {
	e.mu.Lock()
	defer e.mu.Unlock()
	slot := &e.listener
	if states {
		slot = &e.states
	}
	if *slot != nil {
		return *slot
	}
	base := e.cfg.Postgres.ConnConfig()
	channel, decode := store.Channel, store.DecodeNotification
	switch {
	case states:
		channel = store.StatesChannel
	case e.cfg.Table != nil:
		channel, decode = e.cfg.NotifyChannel, newRowDecoder(e.cfg.Table)
	}
	l := pglisten.New(pglisten.Config[store.Notification]{
		Channel: channel,
		Connect: func(ctx context.Context, onNotification pgconn.NotificationHandler) (*pgx.Conn, error) {
			cc := base.Copy()
			cc.RuntimeParams["application_name"] = "fieldline-grafana-live"
			cc.OnNotification = onNotification
			conn, err := pgx.ConnectConfig(ctx, cc)
			if err != nil {
				return nil, errors.New(e.redact(err.Error()))
			}
			return conn, nil
		},
		Decode: decode,
		Logger: Logger(),
		// As for MQTT (MQTTClient): under load, one read per frame interval.
		ReadInterval: e.settings.FrameInterval,
	})
	*slot = l
	e.startLocked(func() { _ = l.Run(e.ctx) })
	return l
}

// MQTTClient returns the instance's shared MQTT client, creating it on first use (nil when MQTT is not
// configured). The plugin's topics resource shares it.
// MQTTConnected reports whether the live client exists and is connected (it is made on first use).
func (e *Engine) MQTTConnected() bool {
	e.mu.Lock()
	c := e.mqtt
	e.mu.Unlock()
	return c != nil && c.IsConnected()
}

func (e *Engine) MQTTClient() *mqttlive.Client {
	if e.cfg.MQTT == nil {
		return nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.mqtt != nil {
		return e.mqtt
	}
	c := mqttlive.New(mqttlive.Config{
		Options: e.cfg.MQTT.Options("live"),
		Dial:    e.cfg.MQTT.Dial,
		QoS:     e.settings.QoS,
		Logger:  Logger(),
		// Under load, read the socket once per frame interval: a stream sends at most one frame per interval
		// anyway, and its pacer sends right after each read, so this adds no latency while one wake-up,
		// read and acknowledgement write serves every message of the interval.
		ReadInterval: e.settings.FrameInterval,
	})
	e.mqtt = c
	if !e.startLocked(func() { <-e.ctx.Done(); c.Close() }) {
		c.Close()
	}
	return c
}

// Logger routes the live packages' slog output to the SDK logger.
func Logger() *slog.Logger { return slog.New(sdkLogHandler{}) }

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

// setChannel points frame f at a live channel for sel. When none can be had (the registry bound), the frame
// stays history only, with a notice that says why.
func (e *Engine) setChannel(ctx context.Context, f *data.Frame, sel *Selector) {
	owner := ""
	if u := backend.UserFromContext(ctx); u != nil {
		owner = u.Login
	}
	path, err := e.ChannelPath(sel, owner)
	if err != nil {
		f.AppendNotices(data.Notice{Severity: data.NoticeSeverityWarning, Text: "Live: " + err.Error() + "; this panel shows history only until it is refreshed"})
		return
	}
	if f.Meta == nil {
		f.Meta = &data.FrameMeta{}
	}
	f.Meta.Channel = e.Channel(path)
}
