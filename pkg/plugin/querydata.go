package plugin

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sort"
	"sync"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/data"
	"github.com/grafana/grafana-plugin-sdk-go/data/sqlutil"

	"github.com/fieldline-iot/fieldline/internal/timebucket"
	"github.com/fieldline-iot/fieldline/pkg/fluxquery"
	"github.com/fieldline-iot/fieldline/pkg/frames"
	"github.com/fieldline-iot/fieldline/pkg/influxql"
	"github.com/fieldline-iot/fieldline/pkg/sqlquery"
)

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
		values, err := d.discover(ctx, q.Source, q.Mode == ModeStates, q.Variable, q.Metric, q.Devices, q.Sensors)
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
		if q.Mode == ModeStates {
			return d.statesSQL(ctx, q, dq)
		}
		if q.Live {
			return d.liveBuilderSQL(ctx, q, dq)
		}
		return d.builderSQL(ctx, q, dq, true)
	case SourceFlux:
		if d.influx == nil {
			return nil, downstream(errors.New("source flux: InfluxDB is not configured for this data source"))
		}
		if q.Mode == ModeCode {
			return d.influx.code(ctx, q.RefID, d.expandFlux(q, dq), q.Format, d.settings.RowLimit)
		}
		return withLiveNotice(q, "Live tail comes from PostgreSQL or MQTT; this Flux query shows its history only")(d.builderFlux(ctx, q, dq))
	case SourceInfluxQL:
		if d.influx == nil {
			return nil, downstream(errors.New("source influxql: InfluxDB is not configured for this data source"))
		}
		return withLiveNotice(q, "Live tail comes from PostgreSQL or MQTT; this InfluxQL query shows its history only")(
			d.influx.influxQL(ctx, q.RefID, d.expandInfluxQL(q, dq), q.Format, d.settings.RowLimit))
	}
	return nil, backend.PluginError(fmt.Errorf("unhandled source %q", q.Source))
}

// expandFlux expands Grafana's v.* variables of a code Flux query (QueryData and the /preview resource).
func (d *Datasource) expandFlux(q Query, dq backend.DataQuery) string {
	return fluxquery.Expand(q.Flux, fluxquery.Vars{
		From: dq.TimeRange.From, To: dq.TimeRange.To, Window: effectiveInterval(q, dq),
		Bucket: d.influx.cfg.Bucket, Org: d.influx.cfg.Org, MaxDataPts: dq.MaxDataPoints,
	})
}

// expandInfluxQL expands Grafana's InfluxQL macros of a code InfluxQL query (QueryData and the /preview resource).
func (d *Datasource) expandInfluxQL(q Query, dq backend.DataQuery) string {
	return influxql.Expand(q.InfluxQL, influxql.Vars{From: dq.TimeRange.From, To: dq.TimeRange.To, Interval: effectiveInterval(q, dq)})
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

// bucketWidth is the bucket width of a builder query: 0 for raw rows; for an aggregation the effective
// interval, refused when it gives more than maxBuckets buckets over the range.
func bucketWidth(q Query, dq backend.DataQuery) (time.Duration, error) {
	if q.Aggregation == sqlquery.None {
		return 0, nil
	}
	iv := effectiveInterval(q, dq)
	if n := timebucket.Count(dq.TimeRange.From, dq.TimeRange.To, iv); n > maxBuckets {
		return 0, downstream(fmt.Errorf("interval %v gives %d buckets for this time range (at most %d): choose a wider interval", iv, n, maxBuckets))
	}
	return iv, nil
}

// builderSQL runs a builder SQL query; wide allows the one-frame shape for aggregated time series (see
// builderFrames; the live path needs one frame per series).
func (d *Datasource) builderSQL(ctx context.Context, q Query, dq backend.DataQuery, wide bool) (data.Frames, error) {
	req, err := d.sqlRequest(q, dq)
	if err != nil {
		return nil, err
	}
	c, st, err := d.pg.builder(ctx, req)
	if err != nil {
		return nil, err
	}
	return d.builderFrames(q, c, req.Interval, st.From, st.To, st.SQL, wide), nil
}

// sqlRequest is the SQL builder's request for a query (QueryData and the /preview resource).
func (d *Datasource) sqlRequest(q Query, dq backend.DataQuery) (sqlquery.Request, error) {
	iv, err := bucketWidth(q, dq)
	if err != nil {
		return sqlquery.Request{}, err
	}
	return sqlquery.Request{Interval: iv,
		Metric: q.Metric, Devices: q.Devices, Sensors: q.Sensors, Aggregation: q.Aggregation,
		From: dq.TimeRange.From, To: dq.TimeRange.To, Limit: d.settings.RowLimit,
	}, nil
}

func (d *Datasource) builderFlux(ctx context.Context, q Query, dq backend.DataQuery) (data.Frames, error) {
	req, err := d.fluxRequest(q, dq)
	if err != nil {
		return nil, err
	}
	c, fq, err := d.influx.builder(ctx, req)
	if err != nil {
		return nil, err
	}
	return d.builderFrames(q, c, req.Interval, fq.From, fq.To, fq.Flux, true), nil
}

// fluxRequest is the Flux builder's request for a query (QueryData and the /preview resource).
func (d *Datasource) fluxRequest(q Query, dq backend.DataQuery) (fluxquery.Request, error) {
	iv, err := bucketWidth(q, dq)
	if err != nil {
		return fluxquery.Request{}, err
	}
	return fluxquery.Request{Interval: iv, Bucket: d.influx.cfg.Bucket, Schema: d.influx.cfg.Schema,
		Metric: q.Metric, Devices: q.Devices, Sensors: q.Sensors, Aggregation: fluxquery.Aggregation(q.Aggregation),
		From: dq.TimeRange.From, To: dq.TimeRange.To, Limit: d.settings.RowLimit,
	}, nil
}

// builderFrames shapes builder rows: a table, or time series. An aggregated query (interval > 0) answers one
// time-series-wide frame when wide is set and its series share their buckets (always with a fill mode: every
// series is on the whole grid; without one, when no series lacks a bucket another has); otherwise, and for raw
// rows, one time-series-multi frame per series (fill applied). The live path asks for multi frames: it gives
// each series frame its own channel.
func (d *Datasource) builderFrames(q Query, c *frames.Collector, interval time.Duration, from, to time.Time, executed string, wide bool) data.Frames {
	all := c.Sorted()
	var result data.Frames
	if q.Format == FormatTable {
		result = data.Frames{frames.Table(q.RefID, q.Metric, all, executed)}
	} else {
		var fill *frames.GridFill
		if q.Fill != FillNone && interval > 0 {
			fill = &frames.GridFill{Mode: q.Fill, From: from, To: to, Interval: interval}
		}
		if wide && interval > 0 {
			if f, ok := frames.Wide(q.RefID, q.Metric, all, fill, executed); ok {
				result = data.Frames{f}
			}
		}
		if result == nil {
			result = frames.TimeSeries(q.RefID, q.Metric, all, fill, executed)
		}
	}
	if c.Rows > d.settings.RowLimit || c.Truncated {
		// The statement fetched one row more than the limit to detect this; drop nothing silently.
		result[0].AppendNotices(data.Notice{Severity: data.NoticeSeverityWarning,
			Text: fmt.Sprintf("Results have been limited to %d rows because the row limit was reached", d.settings.RowLimit)})
	}
	return result
}

// expandSQL expands the macros of a code SQL query (QueryData and the /preview resource).
func (d *Datasource) expandSQL(ctx context.Context, q Query, dq backend.DataQuery) (string, *sqlquery.Fill, error) {
	info, err := d.pg.schemaInfo(ctx)
	if err != nil {
		return "", nil, err
	}
	sq := &sqlutil.Query{RawSQL: q.RawSQL, RefID: q.RefID, Interval: effectiveInterval(q, dq), TimeRange: dq.TimeRange, MaxDataPoints: dq.MaxDataPoints}
	if q.Format == FormatTable {
		sq.Format = sqlutil.FormatOptionTable
	}
	expanded, fill, err := sqlquery.Interpolate(sq, info.Timescale())
	if err != nil {
		return "", nil, downstream(err)
	}
	return expanded, fill, nil
}

// codeSQL runs a code SQL query: macros through the SDK's sqlutil, rows through sqlutil.FrameFromRows, then
// the time-series format converts long to wide (data.LongToWide, as Grafana's SQL data sources do) and splits
// into dataplane multi frames.
func (d *Datasource) codeSQL(ctx context.Context, q Query, dq backend.DataQuery) (data.Frames, error) {
	expanded, fill, err := d.expandSQL(ctx, q, dq)
	if err != nil {
		return nil, err
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
	return frames.FillFrames(result, &frames.GridFill{Mode: mode, Value: value, From: from, To: to, Interval: fill.Interval})
}

// discover lists metrics, devices or sensors from PostgreSQL when configured (and source is not flux), else
// from InfluxDB.
func (d *Datasource) discover(ctx context.Context, source string, states bool, label sqlquery.Label, metric string, devices, sensors []string) ([]string, error) {
	if d.settingsErr != nil {
		return nil, downstream(d.settingsErr)
	}
	if states {
		if d.pg == nil {
			return nil, downstream(errors.New("states are stored in PostgreSQL, which is not configured for this data source"))
		}
		disc := sqlquery.Discovery{Label: label, Devices: devices, Sensors: sensors, Limit: discoveryLimit, MaxSeries: discoveryMaxSeries, States: true}
		if metric != "" {
			disc.Metrics = []string{metric}
		}
		return d.pg.discover(ctx, disc)
	}
	influx := source == SourceFlux || source == SourceInfluxQL // both read InfluxDB
	if d.pg != nil && (!influx || d.influx == nil) {
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
