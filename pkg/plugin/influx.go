package plugin

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/data"
	influxdb2 "github.com/influxdata/influxdb-client-go/v2"
	"github.com/influxdata/influxdb-client-go/v2/api"

	"github.com/fieldline-iot/fieldline/pkg/fluxquery"
	"github.com/fieldline-iot/fieldline/pkg/frames"
)

// influxBackend reads InfluxDB through the v2 query API (Flux).
type influxBackend struct {
	cfg     *InfluxSettings
	client  influxdb2.Client
	query   api.QueryAPI
	budgets *budgets
	// transport is this instance's own (its TLS settings, the secure socks proxy): its idle connections go
	// with the instance.
	transport *http.Transport
	// http is the client of both APIs (v2 Flux, v1 InfluxQL): the transport, byte budgets, the timeout.
	http *http.Client
}

func newInfluxBackend(cfg *InfluxSettings, timeout time.Duration, b *budgets, socks secureSocks) (*influxBackend, error) {
	t := http.DefaultTransport.(*http.Transport).Clone()
	if err := socks.http(t); err != nil {
		return nil, err
	}
	// Response bodies of code Flux queries are counted against their byte budget (budget.go) as they arrive,
	// decompressed: what the client parses and the plugin holds.
	// The client is the plugin's own, so influxdb2's SetTLSConfig would not reach it: the TLS settings go into
	// its transport (set up above with the proxy).
	t.TLSClientConfig = cfg.TLS
	hc := &http.Client{Timeout: timeout + time.Second, Transport: budgetTransport{next: t}}
	opts := influxdb2.DefaultOptions().
		SetHTTPClient(hc).
		SetApplicationName("fieldline-grafana").
		SetUseGZip(true)
	c := influxdb2.NewClientWithOptions(cfg.URL, cfg.Token, opts)
	return &influxBackend{cfg: cfg, client: c, query: c.QueryAPI(cfg.Org), budgets: b, transport: t, http: hc}, nil
}

func (b *influxBackend) close() {
	b.client.Close()
	b.transport.CloseIdleConnections() // the client's Close leaves a custom HTTP client's connections open
}

// run executes Flux and hands every record to fn (with the table's metadata when a new table starts).
func (b *influxBackend) run(ctx context.Context, flux string, fn func(rec *fluxRecord) error) error {
	res, err := b.query.Query(ctx, flux)
	if err != nil {
		return downstream(fmt.Errorf("InfluxDB: %w", serverReply{err}))
	}
	defer func() { _ = res.Close() }()
	var rec fluxRecord
	lastID, lastResult := -1, ""
	for res.Next() {
		r := res.Record()
		// TableChanged reports a new schema (CSV header); tables sharing a schema differ only in the table
		// column, so both are watched.
		if res.TableChanged() || r.Table() != lastID || r.Result() != lastResult {
			lastID, lastResult = r.Table(), r.Result()
			rec.table++
			rec.columns = rec.columns[:0]
			rec.group = rec.group[:0]
			for _, c := range res.TableMetadata().Columns() {
				rec.columns = append(rec.columns, c.Name())
				rec.group = append(rec.group, c.IsGroup())
			}
		}
		rec.values = r.Values()
		if err := fn(&rec); err != nil {
			return err
		}
	}
	if err := res.Err(); err != nil {
		return downstream(fmt.Errorf("InfluxDB: %w", serverReply{err}))
	}
	return nil
}

type fluxRecord struct {
	table   int
	columns []string
	group   []bool
	values  map[string]any
}

func (r *fluxRecord) str(col string) string {
	s, _ := r.values[col].(string)
	return s
}

// builder runs a builder Flux query.
func (b *influxBackend) builder(ctx context.Context, req fluxquery.Request) (*frames.Collector, fluxquery.Query, error) {
	req.Bucket = b.cfg.Bucket
	q, err := fluxquery.Build(req)
	if err != nil {
		return nil, q, err
	}
	c := frames.NewCollector()
	err = b.run(ctx, q.Flux, func(r *fluxRecord) error {
		t, ok := r.values["_time"].(time.Time)
		if !ok {
			return nil
		}
		v, ok := toFloat(r.values["_value"])
		if !ok {
			return nil
		}
		var extra data.Labels
		for _, tag := range req.Schema.LabelTags {
			if s := r.str(tag); s != "" {
				if extra == nil {
					extra = data.Labels{}
				}
				extra[tag] = s
			}
		}
		c.AddExtra(t.UTC(), r.str(req.Schema.Device()), r.str(req.Schema.Sensor()), extra, v)
		return nil
	})
	if err != nil {
		return nil, q, err
	}
	return c, q, nil
}

// code runs a code Flux query and shapes every result table into frames (fluxFrames).
func (b *influxBackend) code(ctx context.Context, refID, flux, format string, rowLimit int64) (data.Frames, error) {
	if !b.cfg.UnrestrictedFlux {
		if err := fluxquery.CheckRestricted(flux); err != nil {
			return nil, downstream(err)
		}
	}
	return b.budgeted(ctx, func(ctx context.Context) (data.Frames, error) {
		return b.codeFrames(ctx, refID, flux, format, rowLimit)
	})
}

// budgeted runs a code query (Flux or InfluxQL) within the instance's byte budget: what its answer may hold,
// counted as it arrives (budget.go); past it the query fails with the error that names the setting.
func (b *influxBackend) budgeted(ctx context.Context, run func(context.Context) (data.Frames, error)) (data.Frames, error) {
	budget, release, err := b.budgets.acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	result, err := run(withBudget(ctx, budget))
	if err != nil && budget.exceeded.Load() {
		return nil, budget.err()
	}
	return result, err
}

// fluxTable is one result table as it arrived: its columns, which of them are the group key, and its rows.
type fluxTable struct {
	columns []string
	group   []bool
	rows    [][]any
}

func (b *influxBackend) codeFrames(ctx context.Context, refID, flux, format string, rowLimit int64) (data.Frames, error) {
	var tables []*fluxTable
	var cur *fluxTable
	lastTable := 0
	var rows int64
	truncated := false
	err := b.run(ctx, flux, func(r *fluxRecord) error {
		if rows >= rowLimit {
			truncated = true
			return nil
		}
		rows++
		if r.table != lastTable || cur == nil {
			lastTable = r.table
			cur = &fluxTable{columns: slices.Clone(r.columns), group: slices.Clone(r.group)}
			tables = append(tables, cur)
		}
		row := make([]any, len(cur.columns))
		for i, col := range cur.columns {
			row[i] = r.values[col]
		}
		cur.rows = append(cur.rows, row)
		return nil
	})
	if err != nil {
		return nil, err
	}
	result := fluxFrames(refID, flux, format, tables)
	if truncated {
		result[0].AppendNotices(data.Notice{Severity: data.NoticeSeverityWarning,
			Text: fmt.Sprintf("Results have been limited to %d rows because the row limit was reached", rowLimit)})
	}
	return result, nil
}

// fluxFrames shapes code Flux result tables, as Grafana's InfluxDB data source does and for what panels and
// alerting read:
//   - format table: one table frame per result table, every column (times, numbers, strings, booleans);
//   - a table with _time: one time-series-multi frame per numeric value column, labels the group-key string
//     columns (minus _start, _stop, _field, _measurement), named after _measurement for _value;
//   - a one-row table without _time (mean(), last() after group()): one numeric-multi frame per numeric column,
//     which Stat panels and alerting take;
//   - a longer table without _time: a table frame.
func fluxFrames(refID, flux, format string, tables []*fluxTable) data.Frames {
	var result data.Frames
	add := func(f *data.Frame, typ data.FrameType) {
		f.RefID = refID
		f.Meta = &data.FrameMeta{Type: typ, TypeVersion: data.FrameTypeVersion{0, 1}, ExecutedQueryString: flux}
		if typ == data.FrameTypeTable {
			f.Meta.TypeVersion = data.FrameTypeVersion{}
		}
		result = append(result, f)
	}
	for _, t := range tables {
		timeCol := slices.Index(t.columns, "_time")
		switch {
		case format == FormatTable || (timeCol < 0 && len(t.rows) > 1):
			add(fluxTableFrame(refID, t), data.FrameTypeTable)
		case timeCol < 0:
			for _, f := range fluxNumericFrames(t) {
				add(f, data.FrameTypeNumericMulti)
			}
		default:
			for _, f := range fluxSeriesFrames(t, timeCol) {
				add(f, data.FrameTypeTimeSeriesMulti)
			}
		}
	}
	if len(result) == 0 {
		add(data.NewFrame(refID), data.FrameTypeTimeSeriesMulti)
	}
	return result
}

// fluxValueColumns returns a table's labels (group-key strings) and its value columns (the other columns, bar
// Flux's bookkeeping), and the measurement that names _value.
func fluxValueColumns(t *fluxTable) (labels data.Labels, values []int, measurement string) {
	labels = data.Labels{}
	for i, col := range t.columns {
		switch col {
		case "_time", "_start", "_stop", "result", "table", "_field":
			continue
		case "_measurement":
			if len(t.rows) > 0 {
				measurement, _ = t.rows[0][i].(string)
			}
			continue
		}
		if t.group[i] {
			if s, ok := t.rows[0][i].(string); ok && s != "" {
				labels[col] = s
			}
			continue
		}
		values = append(values, i)
	}
	return labels, values, measurement
}

func fluxValueName(col, measurement string) string {
	if col == "_value" && measurement != "" {
		return measurement
	}
	return col
}

// floats returns the i-th column of the rows in order as floats (nil where not a number), and whether any was one.
func (t *fluxTable) floats(i int, order []int) ([]*float64, bool) {
	out := make([]*float64, len(order))
	numeric := false
	for j, k := range order {
		if v, ok := toFloat(t.rows[k][i]); ok {
			out[j] = &v
			numeric = true
		}
	}
	return out, numeric
}

func fluxSeriesFrames(t *fluxTable, timeCol int) []*data.Frame {
	labels, values, measurement := fluxValueColumns(t)
	order := make([]int, 0, len(t.rows))
	for k, row := range t.rows {
		if _, ok := row[timeCol].(time.Time); ok {
			order = append(order, k)
		}
	}
	sort.SliceStable(order, func(i, j int) bool {
		return t.rows[order[i]][timeCol].(time.Time).Before(t.rows[order[j]][timeCol].(time.Time))
	})
	times := make([]time.Time, len(order))
	for j, k := range order {
		times[j] = t.rows[k][timeCol].(time.Time).UTC()
	}
	var out []*data.Frame
	for _, i := range values {
		vals, numeric := t.floats(i, order)
		if !numeric {
			continue
		}
		name := fluxValueName(t.columns[i], measurement)
		out = append(out, data.NewFrame(name, data.NewField(data.TimeSeriesTimeFieldName, nil, times), data.NewField(name, labels, vals)))
	}
	return out
}

func fluxNumericFrames(t *fluxTable) []*data.Frame {
	labels, values, measurement := fluxValueColumns(t)
	var out []*data.Frame
	for _, i := range values {
		vals, numeric := t.floats(i, []int{0})
		if !numeric {
			continue
		}
		name := fluxValueName(t.columns[i], measurement)
		out = append(out, data.NewFrame(name, data.NewField(name, labels, vals)))
	}
	return out
}

// fluxTableFrame is a table as Grafana's table panel shows it: every column, typed by its values.
func fluxTableFrame(refID string, t *fluxTable) *data.Frame {
	f := data.NewFrame(refID)
	for i, col := range t.columns {
		if col == "result" || col == "table" {
			continue
		}
		var field *data.Field
		switch kind := fluxColumnKind(t, i); kind {
		case "time":
			v := make([]*time.Time, len(t.rows))
			for k, row := range t.rows {
				if x, ok := row[i].(time.Time); ok {
					x = x.UTC()
					v[k] = &x
				}
			}
			field = data.NewField(col, nil, v)
		case "float":
			v := make([]*float64, len(t.rows))
			for k, row := range t.rows {
				if x, ok := toFloat(row[i]); ok {
					v[k] = &x
				}
			}
			field = data.NewField(col, nil, v)
		case "bool":
			v := make([]*bool, len(t.rows))
			for k, row := range t.rows {
				if x, ok := row[i].(bool); ok {
					v[k] = &x
				}
			}
			field = data.NewField(col, nil, v)
		default:
			v := make([]*string, len(t.rows))
			for k, row := range t.rows {
				if row[i] != nil {
					x := fmt.Sprint(row[i])
					v[k] = &x
				}
			}
			field = data.NewField(col, nil, v)
		}
		f.Fields = append(f.Fields, field)
	}
	return f
}

// fluxColumnKind is a column's type by its first non-null value.
func fluxColumnKind(t *fluxTable, i int) string {
	for _, row := range t.rows {
		switch row[i].(type) {
		case nil:
			continue
		case time.Time:
			return "time"
		case bool:
			return "bool"
		case string:
			return "string"
		}
		if _, ok := toFloat(row[i]); ok {
			return "float"
		}
		return "string"
	}
	return "string"
}

// discover lists tag values (device, sensor) or measurements (metric) with the v1 schema functions, which
// InfluxDB 1.8 and 2.x both provide.
func (b *influxBackend) discover(ctx context.Context, label string, metric string, devices, sensors []string, limit int) ([]string, error) {
	var flux strings.Builder
	flux.WriteString("import \"influxdata/influxdb/v1\"\n")
	pred := []string{}
	if metric != "" && label != "metric" {
		pred = append(pred, "r._measurement == "+fluxquery.String(metric))
	}
	schema := b.cfg.Schema
	addIn := func(tag string, values []string) {
		if len(values) == 0 {
			return
		}
		var alts []string
		for _, v := range values {
			alts = append(alts, fluxquery.Column(tag)+" == "+fluxquery.String(v))
		}
		pred = append(pred, "("+strings.Join(alts, " or ")+")")
	}
	addIn(schema.Device(), devices)
	addIn(schema.Sensor(), sensors)
	predicate := "(r) => true"
	if len(pred) > 0 {
		predicate = "(r) => " + strings.Join(pred, " and ")
	}
	if label == "metric" {
		// Measurements are the values of the _measurement tag: v1.measurements() takes no start on InfluxDB 1.8
		// ("function does not take a parameter start") and no predicate, tagValues both, on 1.8 and 2.x.
		fmt.Fprintf(&flux, "v1.tagValues(bucket: %s, tag: \"_measurement\", predicate: %s", fluxquery.String(b.cfg.Bucket), predicate)
	} else {
		tag := schema.Device()
		if label == "sensor" {
			tag = schema.Sensor()
		}
		fmt.Fprintf(&flux, "v1.tagValues(bucket: %s, tag: %s, predicate: %s", fluxquery.String(b.cfg.Bucket), fluxquery.String(tag), predicate)
	}
	flux.WriteString(", start: -3650d)\n")
	fmt.Fprintf(&flux, "  |> sort() |> limit(n: %d)\n", limit)
	out := []string{}
	err := b.run(ctx, flux.String(), func(r *fluxRecord) error {
		if s, ok := r.values["_value"].(string); ok && s != "" {
			out = append(out, s)
		}
		return nil
	})
	return out, err
}

// health checks the server and that the bucket exists.
func (b *influxBackend) health(ctx context.Context) (string, error) {
	h, err := b.client.Health(ctx)
	if err != nil {
		return "", fmt.Errorf("unreachable: %w", err)
	}
	if h.Status != "pass" {
		msg := ""
		if h.Message != nil {
			msg = *h.Message
		}
		return "", fmt.Errorf("server reports %s: %s", h.Status, msg)
	}
	found := false
	flux := "buckets() |> filter(fn: (r) => r.name == " + fluxquery.String(b.cfg.Bucket) +
		" or r.name == " + fluxquery.String(b.cfg.Bucket+"/autogen") + ")"
	if err := b.run(ctx, flux, func(*fluxRecord) error { found = true; return nil }); err != nil {
		return "", fmt.Errorf("list buckets: %w", err)
	}
	if !found {
		return "", fmt.Errorf("bucket %q not found", b.cfg.Bucket)
	}
	version := ""
	if h.Version != nil && *h.Version != "unknown" {
		version = " " + *h.Version
	}
	return fmt.Sprintf("InfluxDB%s ok: bucket %q present", version, b.cfg.Bucket), nil
}

func toFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case int64:
		return float64(x), true
	case uint64:
		return float64(x), true
	case bool:
		if x {
			return 1, true
		}
		return 0, true
	}
	return 0, false
}
