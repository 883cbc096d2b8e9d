// Package plugin is Fieldline's Grafana data-source backend: history queries on PostgreSQL/TimescaleDB (SQL)
// and InfluxDB (Flux), health checks and the discovery resources. One Datasource instance exists per data
// source; the SDK's instance manager creates it from the settings and disposes it when they change.
package plugin

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/backend/instancemgmt"
	"github.com/grafana/grafana-plugin-sdk-go/data"
	"github.com/grafana/grafana-plugin-sdk-go/data/sqlutil"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/fieldline-iot/fieldline/internal/redact"
	"github.com/fieldline-iot/fieldline/internal/timebucket"
	"github.com/fieldline-iot/fieldline/pkg/fluxquery"
	"github.com/fieldline-iot/fieldline/pkg/frames"
	"github.com/fieldline-iot/fieldline/pkg/live"
	"github.com/fieldline-iot/fieldline/pkg/sqlquery"
)

// PluginID is the id in plugin.json.
const PluginID = "fieldline-telemetry-datasource"

// queryConcurrency bounds the queries of one request that run at once.
const queryConcurrency = 4

// Limits of discovery (resources and variable queries).
const (
	discoveryLimit     = 1000
	discoveryMaxSeries = 20000
)

// Datasource is one data-source instance.
type Datasource struct {
	settings    Settings
	settingsErr error // invalid settings: every call answers with it (CheckHealth included)
	pg          *postgresBackend
	influx      *influxBackend
	redactor    *strings.Replacer
	resources   backend.CallResourceHandler
	uid         string       // the data source's UID: live channels are ds/<uid>/<path>
	live        *live.Engine // live streams (pkg/live); nil when the settings are invalid

	disposed  atomic.Bool
	disposeMu sync.Once
}

var (
	_ backend.QueryDataHandler      = (*Datasource)(nil)
	_ backend.CheckHealthHandler    = (*Datasource)(nil)
	_ backend.CallResourceHandler   = (*Datasource)(nil)
	_ instancemgmt.InstanceDisposer = (*Datasource)(nil)
)

// NewDatasource is the instance factory for datasource.Manage. Invalid settings do not fail the factory: the
// instance reports them from CheckHealth and every query, so the user sees which field is wrong.
func NewDatasource(ctx context.Context, s backend.DataSourceInstanceSettings) (instancemgmt.Instance, error) {
	d := &Datasource{redactor: redact.NewReplacer(s.DecryptedSecureJSONData)}
	d.resources = d.newResourceHandler()
	d.uid = s.UID
	settings, err := LoadSettings(s)
	var liveSettings live.Settings
	if err == nil {
		liveSettings, err = live.LoadSettings(s)
	}
	if err != nil {
		d.settingsErr = errors.New(d.redact(err.Error()))
		backend.Logger.FromContext(ctx).Warn("Invalid data source settings", "uid", s.UID, "error", d.settingsErr)
		return d, nil
	}
	d.settings = settings
	b := newBudgets(settings.MaxResponseBytes, settings.MaxBytesInFlight)
	if settings.Postgres != nil {
		if d.pg, err = newPostgresBackend(settings.Postgres, settings.StatementTimeout, b); err != nil {
			d.settingsErr = errors.New(d.redact(err.Error()))
			return d, nil
		}
	}
	if settings.Influx != nil {
		d.influx = newInfluxBackend(settings.Influx, settings.StatementTimeout, b)
	}
	d.live = d.newLiveEngine(s, liveSettings)
	backend.Logger.FromContext(ctx).Debug("Data source instance created", "uid", s.UID,
		"postgres", settings.Postgres != nil, "influx", settings.Influx != nil, "mqtt", settings.MQTT != nil)
	return d, nil
}

// Dispose ends the instance's goroutines and closes its pools. The SDK calls it a few seconds after the
// settings changed, while calls may still be running on this instance: those finish (the PostgreSQL pool waits
// for connections in use, bounded by the statement timeout) or fail with a clear error; new calls are
// answered "data source is being reconfigured".
func (d *Datasource) Dispose() {
	d.disposeMu.Do(func() {
		d.disposed.Store(true)
		if d.live != nil {
			d.live.Close() // ends the streams before the pools they read close
		}
		if d.influx != nil {
			d.influx.close()
		}
		if d.pg != nil {
			d.pg.close()
		}
	})
}

var errDisposed = live.ErrClosed

// QueryData answers each query independently: one failing query does not fail the others.
func (d *Datasource) QueryData(ctx context.Context, req *backend.QueryDataRequest) (*backend.QueryDataResponse, error) {
	resp := backend.NewQueryDataResponse()
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, queryConcurrency)
	for _, q := range req.Queries {
		wg.Add(1)
		go func(q backend.DataQuery) {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
				defer func() { <-sem }()
			case <-ctx.Done():
				mu.Lock()
				resp.Responses[q.RefID] = d.errorResponse(ctx, q.RefID, downstream(ctx.Err()))
				mu.Unlock()
				return
			}
			r := d.query(ctx, req.PluginContext, q)
			mu.Lock()
			resp.Responses[q.RefID] = r
			mu.Unlock()
		}(q)
	}
	wg.Wait()
	return resp, nil
}

func (d *Datasource) query(ctx context.Context, pc backend.PluginContext, dq backend.DataQuery) (res backend.DataResponse) {
	logger := backend.Logger.FromContext(ctx)
	start := time.Now()
	defer func() {
		if p := recover(); p != nil {
			logger.Error("Query panicked", "refId", dq.RefID, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			res = d.errorResponse(ctx, dq.RefID, backend.PluginError(fmt.Errorf("internal error while running the query")))
		}
	}()
	if d.disposed.Load() {
		return d.errorResponse(ctx, dq.RefID, downstream(errDisposed))
	}
	if d.settingsErr != nil {
		return d.errorResponse(ctx, dq.RefID, downstream(d.settingsErr))
	}
	q, err := ParseQuery(dq.JSON)
	if err != nil {
		return d.errorResponse(ctx, dq.RefID, downstream(err))
	}
	if q.RefID == "" {
		q.RefID = dq.RefID
	}
	result, err := d.run(ctx, q, dq)
	if err != nil {
		return d.errorResponse(ctx, dq.RefID, err)
	}
	rows := 0
	for _, f := range result {
		rows += f.Rows()
	}
	logger.Debug("Query done", "refId", dq.RefID, "source", q.Source, "mode", q.Mode, "frames", len(result),
		"rows", rows, "duration", time.Since(start))
	return backend.DataResponse{Frames: result}
}

// run dispatches one parsed query.
func (d *Datasource) run(ctx context.Context, q Query, dq backend.DataQuery) (data.Frames, error) {
	if q.Variable != "" {
		values, err := d.discover(ctx, q.Source, q.Variable, q.Metric, q.Devices, q.Sensors)
		if err != nil {
			return nil, err
		}
		return data.Frames{frames.Strings(q.RefID, string(q.Variable), values)}, nil
	}
	switch q.Source {
	case SourceMQTT:
		if !q.Live {
			return nil, downstream(errors.New("MQTT queries have no stored history: they are live only; set live, or query sql/flux for history"))
		}
		return d.liveMQTT(ctx, q)
	case SourceSQL:
		if d.pg == nil {
			return nil, downstream(errors.New("source sql: PostgreSQL is not configured for this data source"))
		}
		if q.Mode == ModeCode {
			return withLiveNotice(q, "Live tail is available for builder queries; this code query shows its history only")(d.codeSQL(ctx, q, dq))
		}
		if q.Live {
			return d.liveBuilderSQL(ctx, q, dq)
		}
		return d.builderSQL(ctx, q, dq)
	case SourceFlux:
		if d.influx == nil {
			return nil, downstream(errors.New("source flux: InfluxDB is not configured for this data source"))
		}
		if q.Mode == ModeCode {
			return d.influx.code(ctx, q.RefID, fluxquery.Expand(q.Flux, fluxquery.Vars{
				From: dq.TimeRange.From, To: dq.TimeRange.To, Window: effectiveInterval(q, dq),
				Bucket: d.influx.cfg.Bucket, Org: d.influx.cfg.Org, MaxDataPts: dq.MaxDataPoints,
			}), d.settings.RowLimit)
		}
		return withLiveNotice(q, "Live tail comes from PostgreSQL or MQTT; this Flux query shows its history only")(d.builderFlux(ctx, q, dq))
	}
	return nil, backend.PluginError(fmt.Errorf("unhandled source %q", q.Source))
}

// effectiveInterval is the query's interval, else Grafana's interval for the panel, else range/maxDataPoints.
func effectiveInterval(q Query, dq backend.DataQuery) time.Duration {
	if q.Interval > 0 {
		return q.Interval
	}
	iv := dq.Interval
	if iv <= 0 && dq.MaxDataPoints > 0 {
		iv = dq.TimeRange.Duration() / time.Duration(dq.MaxDataPoints)
	}
	if iv < time.Millisecond {
		iv = time.Millisecond
	}
	return iv.Truncate(time.Millisecond)
}

// builderInterval validates the bucket count of an aggregated builder query.
func builderInterval(q Query, dq backend.DataQuery) (time.Duration, error) {
	iv := effectiveInterval(q, dq)
	if n := timebucket.Count(dq.TimeRange.From, dq.TimeRange.To, iv); n > maxBuckets {
		return 0, downstream(fmt.Errorf("interval %v gives %d buckets for this time range (at most %d): choose a wider interval", iv, n, maxBuckets))
	}
	return iv, nil
}

func (d *Datasource) builderSQL(ctx context.Context, q Query, dq backend.DataQuery) (data.Frames, error) {
	req := sqlquery.Request{
		Metric: q.Metric, Devices: q.Devices, Sensors: q.Sensors, Aggregation: q.Aggregation,
		From: dq.TimeRange.From, To: dq.TimeRange.To, Limit: d.settings.RowLimit,
	}
	if q.Aggregation != sqlquery.None {
		iv, err := builderInterval(q, dq)
		if err != nil {
			return nil, err
		}
		req.Interval = iv
	}
	c, st, err := d.pg.builder(ctx, req)
	if err != nil {
		return nil, err
	}
	return d.builderFrames(q, c, req.Interval, st.From, st.To, st.SQL), nil
}

func (d *Datasource) builderFlux(ctx context.Context, q Query, dq backend.DataQuery) (data.Frames, error) {
	req := fluxquery.Request{
		Metric: q.Metric, Devices: q.Devices, Sensors: q.Sensors, Aggregation: fluxquery.Aggregation(q.Aggregation),
		From: dq.TimeRange.From, To: dq.TimeRange.To, Limit: d.settings.RowLimit,
	}
	if q.Aggregation != sqlquery.None {
		iv, err := builderInterval(q, dq)
		if err != nil {
			return nil, err
		}
		req.Interval = iv
	}
	c, fq, err := d.influx.builder(ctx, req)
	if err != nil {
		return nil, err
	}
	return d.builderFrames(q, c, req.Interval, fq.From, fq.To, fq.Flux), nil
}

// builderFrames shapes builder rows: time series (one frame per series, fill applied) or a table.
func (d *Datasource) builderFrames(q Query, c *frames.Collector, interval time.Duration, from, to time.Time, executed string) data.Frames {
	all := c.Sorted()
	var result data.Frames
	if q.Format == FormatTable {
		result = data.Frames{frames.Table(q.RefID, q.Metric, all, executed)}
	} else {
		var fill *frames.GridFill
		if q.Fill != FillNone && interval > 0 {
			fill = &frames.GridFill{Mode: q.Fill, From: from, To: to, Interval: interval}
		}
		result = frames.TimeSeries(q.RefID, q.Metric, all, fill, executed)
	}
	if c.Rows > d.settings.RowLimit || c.Truncated {
		// The statement fetched one row more than the limit to detect this; drop nothing silently.
		result[0].AppendNotices(data.Notice{Severity: data.NoticeSeverityWarning,
			Text: fmt.Sprintf("Results have been limited to %d rows because the row limit was reached", d.settings.RowLimit)})
	}
	return result
}

// codeSQL runs a code SQL query: macros through the SDK's sqlutil, rows through sqlutil.FrameFromRows, then
// the time-series format converts long to wide (data.LongToWide, as Grafana's SQL data sources do) and splits
// into dataplane multi frames.
func (d *Datasource) codeSQL(ctx context.Context, q Query, dq backend.DataQuery) (data.Frames, error) {
	info, err := d.pg.schemaInfo(ctx)
	if err != nil {
		return nil, err
	}
	sq := &sqlutil.Query{RawSQL: q.RawSQL, RefID: q.RefID, Interval: effectiveInterval(q, dq), TimeRange: dq.TimeRange, MaxDataPoints: dq.MaxDataPoints}
	if q.Format == FormatTable {
		sq.Format = sqlutil.FormatOptionTable
	}
	expanded, fill, err := sqlquery.Interpolate(sq, info.Timescale())
	if err != nil {
		return nil, downstream(err)
	}
	frame, err := d.pg.code(ctx, expanded, d.settings.RowLimit)
	if err != nil {
		return nil, err
	}
	frame.Name = q.RefID
	frame.RefID = q.RefID
	if q.Format == FormatTable {
		// Keep what the SDK put in the frame's meta (the row-limit notice) while setting the table type.
		notices := frameNotices(frame)
		frame.Meta = &data.FrameMeta{Type: data.FrameTypeTable, ExecutedQueryString: expanded, Notices: notices}
		return data.Frames{frame}, nil
	}
	notices := frameNotices(frame)
	if err := requireTime(frame); err != nil {
		return nil, downstream(err)
	}
	if frame.TimeSeriesSchema().Type == data.TimeSeriesTypeLong {
		var fm *data.FillMissing
		if fill != nil {
			fm = fill.Missing
		}
		wide, err := data.LongToWide(frame, fm)
		if err != nil {
			return nil, downstream(fmt.Errorf("convert rows to time series (sort the rows by time): %w", err))
		}
		frame = wide
	}
	result, err := frames.WideToMulti(q.RefID, frame, expanded)
	if err != nil {
		return nil, downstream(err)
	}
	if fill != nil {
		result = fillFrames(result, fill, dq.TimeRange)
	}
	if len(notices) > 0 {
		result[0].AppendNotices(notices...)
	}
	return result, nil
}

func frameNotices(f *data.Frame) []data.Notice {
	if f.Meta == nil {
		return nil
	}
	return f.Meta.Notices
}

// requireTime makes the time column of a code query non-nullable (time series need one), naming it "time".
func requireTime(f *data.Frame) error {
	idx := -1
	for i, field := range f.Fields {
		if field.Type() == data.FieldTypeTime || field.Type() == data.FieldTypeNullableTime {
			if field.Name == "time" {
				idx = i
				break
			}
			if idx < 0 {
				idx = i
			}
		}
	}
	if idx < 0 {
		return errors.New("time_series format needs a timestamp column (e.g. $__timeGroupAlias(time, $__interval) or \"time\"); use format table otherwise")
	}
	field := f.Fields[idx]
	if field.Type() == data.FieldTypeNullableTime {
		times := make([]time.Time, field.Len())
		for i := range times {
			p, _ := field.At(i).(*time.Time)
			if p == nil {
				return errors.New("time column has NULL values")
			}
			times[i] = p.UTC()
		}
		nf := data.NewField(field.Name, field.Labels, times)
		nf.Config = field.Config
		f.Fields[idx] = nf
	}
	return nil
}

// fillFrames fills the gaps of code-query series on the $__timeGroup grid over the query range.
func fillFrames(result data.Frames, fill *sqlquery.Fill, tr backend.TimeRange) data.Frames {
	from, to := timebucket.Range(tr.From, tr.To, fill.Interval)
	if timebucket.Count(from, to, fill.Interval) > maxBuckets {
		return result
	}
	mode, value := FillZero, 0.0
	switch fill.Missing.Mode {
	case data.FillModeNull:
		mode = FillNull
	case data.FillModePrevious:
		mode = FillPrevious
	case data.FillModeValue:
		value = fill.Missing.Value
	}
	g := &frames.GridFill{Mode: mode, Value: value, From: from, To: to, Interval: fill.Interval}
	out := make(data.Frames, 0, len(result))
	for _, f := range result {
		if len(f.Fields) != 2 {
			out = append(out, f)
			continue
		}
		s := &frames.Series{}
		for i := 0; i < f.Rows(); i++ {
			t, _ := f.Fields[0].At(i).(time.Time)
			v, err := f.Fields[1].NullableFloatAt(i)
			if err != nil || v == nil {
				continue
			}
			s.Times = append(s.Times, t)
			s.Values = append(s.Values, *v)
		}
		tf, vf := frames.FillGrid(f.Fields[1].Name, s, g)
		vf.Labels = f.Fields[1].Labels
		vf.Config = f.Fields[1].Config
		nf := data.NewFrame(f.Name, tf, vf)
		nf.RefID, nf.Meta = f.RefID, f.Meta
		out = append(out, nf)
	}
	return out
}

// discover lists metrics, devices or sensors from PostgreSQL when configured (and source is not flux), else
// from InfluxDB.
func (d *Datasource) discover(ctx context.Context, source string, label sqlquery.Label, metric string, devices, sensors []string) ([]string, error) {
	if d.settingsErr != nil {
		return nil, downstream(d.settingsErr)
	}
	if d.pg != nil && (source != SourceFlux || d.influx == nil) {
		disc := sqlquery.Discovery{Label: label, Devices: devices, Sensors: sensors, Limit: discoveryLimit, MaxSeries: discoveryMaxSeries}
		if metric != "" {
			disc.Metrics = []string{metric}
		}
		return d.pg.discover(ctx, disc)
	}
	if d.influx != nil {
		values, err := d.influx.discover(ctx, string(label), metric, devices, sensors, discoveryLimit)
		if err != nil {
			return nil, err
		}
		sort.Strings(values)
		return values, nil
	}
	return nil, downstream(errors.New("neither PostgreSQL nor InfluxDB is configured for this data source"))
}

// errorResponse builds a per-query error: downstream errors (database, network, the user's query) are
// ErrorSourceDownstream, anything else is a plugin error. Secrets are redacted from the message.
func (d *Datasource) errorResponse(ctx context.Context, refID string, err error) backend.DataResponse {
	src := backend.ErrorSourcePlugin
	status := backend.StatusInternal
	if backend.IsDownstreamError(err) {
		src = backend.ErrorSourceDownstream
		status = backend.StatusBadRequest
		if errors.Is(err, context.DeadlineExceeded) {
			status = backend.StatusTimeout
		}
	}
	msg := err.Error()
	if !isServerReply(err) {
		msg = d.redact(msg)
	}
	backend.Logger.FromContext(ctx).Debug("Query failed", "refId", refID, "errorSource", string(src), "error", msg)
	return backend.DataResponse{Error: errors.New(msg), Status: status, ErrorSource: src}
}

// serverReply marks an error whose text is the database's own reply to a query (InfluxDB's; PostgreSQL's are
// *pgconn.PgError). Such text can quote the query, so it is never redacted: replacing exactly the strings that
// equal a secret would tell a Viewer which of the guesses it sent is the password (an oracle, measured with
// thousands of guesses per query). It carries no secret of ours: the servers never echo credentials.
type serverReply struct{ error }

func (e serverReply) Unwrap() error { return e.error }

func isServerReply(err error) bool {
	var pgErr *pgconn.PgError
	var reply serverReply
	return errors.As(err, &pgErr) || errors.As(err, &reply)
}

// redact replaces every secret value with "[redacted]" in messages the plugin makes from connection and
// configuration errors (defense in depth: no code path is meant to put a secret into an error, but driver
// messages are not under our control). Database replies to queries are not redacted (see serverReply).
func (d *Datasource) redact(s string) string { return d.redactor.Replace(s) }
