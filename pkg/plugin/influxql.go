package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/data"

	"github.com/fieldline-iot/fieldline/pkg/influxql"
)

// InfluxQL: code queries in InfluxDB's SQL-like language through the v1 query API, which InfluxDB 1.x serves and
// InfluxDB 2.x and 3 keep for compatibility (database = the bucket, "db/rp" for a retention policy; the token as
// "Authorization: Token"). Only read statements pass (influxql.CheckReadOnly), and the query goes as GET, which
// InfluxDB 1.x limits to SELECT and SHOW itself. The answer counts against the code-query byte budget.

// influxQLResponse is the v1 /query answer (epoch=ms).
type influxQLResponse struct {
	Results []struct {
		Series []influxQLSeries `json:"series"`
		Error  string           `json:"error"`
	} `json:"results"`
	Error string `json:"error"`
}

type influxQLSeries struct {
	Name    string            `json:"name"`
	Tags    map[string]string `json:"tags"`
	Columns []string          `json:"columns"`
	Values  [][]any           `json:"values"`
}

// influxQL runs a code InfluxQL query (macros already expanded) and shapes its series into frames.
func (b *influxBackend) influxQL(ctx context.Context, refID, q, format string, rowLimit int64) (data.Frames, error) {
	if err := influxql.CheckReadOnly(q); err != nil {
		return nil, downstream(err)
	}
	return b.budgeted(ctx, func(ctx context.Context) (data.Frames, error) {
		resp, err := b.influxQLRun(ctx, q)
		if err != nil {
			return nil, err
		}
		return influxQLFrames(refID, q, format, resp, rowLimit), nil
	})
}

func (b *influxBackend) influxQLRun(ctx context.Context, q string) (*influxQLResponse, error) {
	db, rp, _ := strings.Cut(b.cfg.Bucket, "/")
	params := url.Values{"db": {db}, "q": {q}, "epoch": {"ms"}}
	if rp != "" {
		params.Set("rp", rp)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.cfg.URL+"/query?"+params.Encode(), nil)
	if err != nil {
		return nil, fmt.Errorf("InfluxQL: %w", err)
	}
	if b.cfg.Token != "" {
		req.Header.Set("Authorization", "Token "+b.cfg.Token)
	}
	req.Header.Set("Accept", "application/json")
	res, err := b.http.Do(req)
	if err != nil {
		return nil, downstream(fmt.Errorf("InfluxDB (InfluxQL): %w", err))
	}
	defer func() { _ = res.Body.Close() }()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, downstream(fmt.Errorf("InfluxDB (InfluxQL): read the answer: %w", err))
	}
	var out influxQLResponse
	if jerr := json.Unmarshal(body, &out); jerr != nil || res.StatusCode/100 != 2 {
		msg := strings.TrimSpace(string(body))
		if out.Error != "" {
			msg = out.Error
		}
		if len(msg) > 300 {
			msg = msg[:300] + "…"
		}
		return nil, downstream(fmt.Errorf("InfluxDB (InfluxQL): %s: %s", res.Status, msg))
	}
	if out.Error != "" {
		return nil, downstream(fmt.Errorf("InfluxDB (InfluxQL): %s", out.Error))
	}
	for i, r := range out.Results {
		if r.Error != "" {
			return nil, downstream(fmt.Errorf("InfluxDB (InfluxQL), statement %d: %s", i+1, r.Error))
		}
	}
	return &out, nil
}

// influxQLFrames shapes series as Grafana's InfluxDB data source does: with a time column, one
// time-series-multi frame per numeric column (labels the series' tags, named measurement.column); without one
// (SHOW …), or with format table, a table frame per series. At most rowLimit rows in all.
func influxQLFrames(refID, q, format string, resp *influxQLResponse, rowLimit int64) data.Frames {
	var result data.Frames
	meta := func(typ data.FrameType) *data.FrameMeta {
		m := &data.FrameMeta{Type: typ, ExecutedQueryString: q}
		if typ != data.FrameTypeTable {
			m.TypeVersion = data.FrameTypeVersion{0, 1}
		}
		return m
	}
	var rows int64
	truncated := false
	for _, r := range resp.Results {
		for _, s := range r.Series {
			if left := rowLimit - rows; int64(len(s.Values)) > left {
				s.Values, truncated = s.Values[:max(left, 0)], true
			}
			rows += int64(len(s.Values))
			if len(s.Columns) > 0 && s.Columns[0] == "time" && format != FormatTable {
				result = append(result, influxQLSeriesFrames(refID, s, meta(data.FrameTypeTimeSeriesMulti))...)
				continue
			}
			f := influxQLTable(refID, s)
			f.Meta = meta(data.FrameTypeTable)
			result = append(result, f)
		}
	}
	if len(result) == 0 {
		f := data.NewFrame(refID)
		f.RefID, f.Meta = refID, meta(data.FrameTypeTimeSeriesMulti)
		result = data.Frames{f}
	}
	if truncated {
		result[0].AppendNotices(data.Notice{Severity: data.NoticeSeverityWarning,
			Text: fmt.Sprintf("Results have been limited to %d rows because the row limit was reached", rowLimit)})
	}
	return result
}

func influxQLSeriesFrames(refID string, s influxQLSeries, meta *data.FrameMeta) data.Frames {
	order := make([]int, len(s.Values))
	times := make([]time.Time, len(s.Values))
	for i, row := range s.Values {
		order[i] = i
		if ms, ok := row[0].(float64); ok {
			times[i] = time.UnixMilli(int64(ms)).UTC()
		}
	}
	sort.SliceStable(order, func(a, b int) bool { return times[order[a]].Before(times[order[b]]) })
	sorted := make([]time.Time, len(order))
	for i, k := range order {
		sorted[i] = times[k]
	}
	labels := data.Labels(s.Tags)
	var out data.Frames
	for c := 1; c < len(s.Columns); c++ {
		vals := make([]*float64, len(order))
		numeric := false
		for i, k := range order {
			if c < len(s.Values[k]) {
				if v, ok := toFloat(s.Values[k][c]); ok {
					vals[i], numeric = &v, true
				}
			}
		}
		if !numeric {
			continue
		}
		name := s.Name + "." + s.Columns[c]
		f := data.NewFrame(name, data.NewField(data.TimeSeriesTimeFieldName, nil, sorted), data.NewField(name, labels, vals))
		f.RefID, f.Meta = refID, meta
		out = append(out, f)
	}
	return out
}

// influxQLTable is a series as a table: its columns (time as time, numbers, strings), then its tags.
func influxQLTable(refID string, s influxQLSeries) *data.Frame {
	f := data.NewFrame(s.Name)
	f.RefID = refID
	for c, col := range s.Columns {
		kind := "string"
		for _, row := range s.Values {
			if c < len(row) && row[c] != nil {
				if _, ok := row[c].(float64); ok {
					kind = "float"
				}
				break
			}
		}
		if col == "time" {
			kind = "time"
		}
		switch kind {
		case "time":
			v := make([]*time.Time, len(s.Values))
			for i, row := range s.Values {
				if ms, ok := row[c].(float64); ok {
					t := time.UnixMilli(int64(ms)).UTC()
					v[i] = &t
				}
			}
			f.Fields = append(f.Fields, data.NewField(col, nil, v))
		case "float":
			v := make([]*float64, len(s.Values))
			for i, row := range s.Values {
				if c < len(row) {
					if x, ok := toFloat(row[c]); ok {
						v[i] = &x
					}
				}
			}
			f.Fields = append(f.Fields, data.NewField(col, nil, v))
		default:
			v := make([]*string, len(s.Values))
			for i, row := range s.Values {
				if c < len(row) && row[c] != nil {
					x := fmt.Sprint(row[c])
					v[i] = &x
				}
			}
			f.Fields = append(f.Fields, data.NewField(col, nil, v))
		}
	}
	keys := make([]string, 0, len(s.Tags))
	for k := range s.Tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := make([]string, len(s.Values))
		for i := range v {
			v[i] = s.Tags[k]
		}
		f.Fields = append(f.Fields, data.NewField(k, nil, v))
	}
	return f
}

var errInfluxQLEmpty = errors.New("code query: influxql is empty")
