package plugin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
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
	// transport is this instance's own (its TLS settings): its idle connections go with the instance.
	transport *http.Transport
}

func newInfluxBackend(cfg *InfluxSettings, timeout time.Duration, b *budgets) *influxBackend {
	// Response bodies of code Flux queries are counted against their byte budget (budget.go) as they arrive,
	// decompressed: what the client parses and the plugin holds.
	// The client is the plugin's own, so influxdb2's SetTLSConfig would not reach it: the TLS settings go into
	// its transport.
	tr := &http.Transport{Proxy: http.ProxyFromEnvironment}
	if d, ok := http.DefaultTransport.(*http.Transport); ok {
		tr = d.Clone()
	}
	tr.TLSClientConfig = cfg.TLS
	hc := &http.Client{Timeout: timeout + time.Second, Transport: budgetTransport{next: tr}}
	opts := influxdb2.DefaultOptions().
		SetHTTPClient(hc).
		SetApplicationName("fieldline-grafana").
		SetUseGZip(true)
	c := influxdb2.NewClientWithOptions(cfg.URL, cfg.Token, opts)
	return &influxBackend{cfg: cfg, client: c, query: c.QueryAPI(cfg.Org), budgets: b, transport: tr}
}

func (b *influxBackend) close() {
	b.client.Close()
	b.transport.CloseIdleConnections()
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
		c.Add(t.UTC(), r.str("device"), r.str("sensor"), v)
		return nil
	})
	if err != nil {
		return nil, q, err
	}
	return c, q, nil
}

// code runs a code Flux query: one frame per result table (dataplane multi), time field _time, value fields the
// numeric non-group columns, labels the group-key string columns (minus _start, _stop, _field, _measurement).
// The value field is named after _measurement when the table has one, else after the column.
func (b *influxBackend) code(ctx context.Context, refID, flux string, rowLimit int64) (data.Frames, error) {
	if !b.cfg.UnrestrictedFlux {
		if err := fluxquery.CheckRestricted(flux); err != nil {
			return nil, downstream(err)
		}
	}
	budget, release, err := b.budgets.acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	result, err := b.codeFrames(withBudget(ctx, budget), refID, flux, rowLimit)
	if err != nil && budget.exceeded.Load() {
		return nil, budget.err()
	}
	return result, err
}

func (b *influxBackend) codeFrames(ctx context.Context, refID, flux string, rowLimit int64) (data.Frames, error) {
	type table struct {
		labels data.Labels
		name   string
		times  []time.Time
		values map[string][]*float64
		order  []string
	}
	var tables []*table
	var cur *table
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
			cur = &table{labels: data.Labels{}, values: map[string][]*float64{}}
			for i, col := range r.columns {
				switch col {
				case "_time", "_start", "_stop", "result", "table", "_field":
					continue
				case "_measurement":
					cur.name = r.str(col)
					continue
				}
				if r.group[i] {
					if s, ok := r.values[col].(string); ok && s != "" {
						cur.labels[col] = s
					}
					continue
				}
				cur.order = append(cur.order, col)
			}
			tables = append(tables, cur)
		}
		t, ok := r.values["_time"].(time.Time)
		if !ok {
			return errors.New("result table has no _time column; use format table or keep _time")
		}
		cur.times = append(cur.times, t.UTC())
		for _, col := range cur.order {
			var p *float64
			if v, ok := toFloat(r.values[col]); ok {
				p = &v
			}
			cur.values[col] = append(cur.values[col], p)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	meta := &data.FrameMeta{Type: data.FrameTypeTimeSeriesMulti, TypeVersion: data.FrameTypeVersion{0, 1}, ExecutedQueryString: flux}
	var result data.Frames
	for _, t := range tables {
		idx := make([]int, len(t.times))
		for i := range idx {
			idx[i] = i
		}
		sort.SliceStable(idx, func(i, j int) bool { return t.times[idx[i]].Before(t.times[idx[j]]) })
		times := make([]time.Time, len(idx))
		for i, k := range idx {
			times[i] = t.times[k]
		}
		for _, col := range t.order {
			src := t.values[col]
			numeric := false
			for _, v := range src {
				if v != nil {
					numeric = true
					break
				}
			}
			if !numeric {
				continue
			}
			vals := make([]*float64, len(idx))
			for i, k := range idx {
				vals[i] = src[k]
			}
			name := col
			if col == "_value" && t.name != "" {
				name = t.name
			}
			vf := data.NewField(name, t.labels, vals)
			f := data.NewFrame(name, data.NewField(data.TimeSeriesTimeFieldName, nil, times), vf)
			f.RefID = refID
			f.Meta = meta
			result = append(result, f)
		}
	}
	if len(result) == 0 {
		f := data.NewFrame(refID)
		f.RefID = refID
		f.Meta = meta
		result = data.Frames{f}
	}
	if truncated {
		result[0].AppendNotices(data.Notice{Severity: data.NoticeSeverityWarning,
			Text: fmt.Sprintf("Results have been limited to %d rows because the row limit was reached", rowLimit)})
	}
	return result, nil
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
	addIn := func(tag string, values []string) {
		if len(values) == 0 {
			return
		}
		var alts []string
		for _, v := range values {
			alts = append(alts, "r."+tag+" == "+fluxquery.String(v))
		}
		pred = append(pred, "("+strings.Join(alts, " or ")+")")
	}
	addIn("device", devices)
	addIn("sensor", sensors)
	predicate := "(r) => true"
	if len(pred) > 0 {
		predicate = "(r) => " + strings.Join(pred, " and ")
	}
	if label == "metric" {
		fmt.Fprintf(&flux, "v1.measurements(bucket: %s", fluxquery.String(b.cfg.Bucket))
		// measurements() has no predicate on 1.8; tag filters go through tagValues of _measurement.
		if len(pred) > 0 {
			flux.Reset()
			flux.WriteString("import \"influxdata/influxdb/v1\"\n")
			fmt.Fprintf(&flux, "v1.tagValues(bucket: %s, tag: \"_measurement\", predicate: %s", fluxquery.String(b.cfg.Bucket), predicate)
		}
	} else {
		fmt.Fprintf(&flux, "v1.tagValues(bucket: %s, tag: %s, predicate: %s", fluxquery.String(b.cfg.Bucket), fluxquery.String(label), predicate)
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
