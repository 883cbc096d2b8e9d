package plugin

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/fieldline-iot/fieldline/pkg/fluxquery"
	"github.com/fieldline-iot/fieldline/pkg/sqlquery"
)

// maxPreviewBody bounds a /preview request: a query is a few hundred bytes, code text at most a few KiB.
const maxPreviewBody = 256 << 10

// previewRequest is the body of POST /preview: the editor's query and the panel's range and interval.
type previewRequest struct {
	Query         json.RawMessage `json:"query"`
	From          int64           `json:"from"` // epoch milliseconds; 0: now − 6 h
	To            int64           `json:"to"`   // epoch milliseconds; 0: now
	IntervalMs    int64           `json:"intervalMs"`
	MaxDataPoints int64           `json:"maxDataPoints"`
}

// Preview is what the backend runs for a query: the editor shows it instead of building its own copy.
type Preview struct {
	Language string   `json:"language"`         // sql | flux | influxql
	Text     string   `json:"text"`             // the statement exactly as it runs (code: macros expanded)
	Params   []string `json:"params,omitempty"` // builder SQL: the values bound to $1, $2, …
	// Code is what "switch to code" seeds for a builder query: the user's own text from then on, with Grafana's
	// macros (SQL) or v.* variables (Flux) for the range, running on plain PostgreSQL and TimescaleDB alike.
	Code  string   `json:"code,omitempty"`
	Notes []string `json:"notes,omitempty"`
}

// previewHandler answers POST /preview with the statement QueryData would run for the query, built by the same
// builders (and, for SQL, for the database's variant and rollups). Nothing is run but the schema inspection.
func (d *Datasource) previewHandler(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		writeJSONError(w, http.StatusMethodNotAllowed, "use POST")
		return
	}
	if d.disposed.Load() {
		writeJSONError(w, http.StatusServiceUnavailable, errDisposed.Error())
		return
	}
	var req previewRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxPreviewBody))
	if err := dec.Decode(&req); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			writeJSONError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("preview request larger than %d bytes", maxPreviewBody))
			return
		}
		writeJSONError(w, http.StatusBadRequest, "preview request: want {\"query\": {...}, \"from\": ms, \"to\": ms}")
		return
	}
	p, err := d.preview(r, req)
	if err != nil {
		status := http.StatusBadRequest
		if errors.Is(err, errPreviewUpstream) {
			status = http.StatusBadGateway
		}
		writeJSONError(w, status, d.redact(err.Error()))
		return
	}
	writeJSON(w, http.StatusOK, p)
}

var errPreviewUpstream = errors.New("database")

func (d *Datasource) preview(r *http.Request, req previewRequest) (Preview, error) {
	if d.settingsErr != nil {
		return Preview{}, d.settingsErr
	}
	if len(req.Query) == 0 {
		return Preview{}, errors.New("preview request: query is required")
	}
	q, err := ParseQuery(req.Query)
	if err != nil {
		return Preview{}, err
	}
	if req.MaxDataPoints <= 0 {
		req.MaxDataPoints = 1000 // Grafana's default for a panel
	}
	now := time.Now()
	dq := backend.DataQuery{RefID: q.RefID, MaxDataPoints: req.MaxDataPoints, Interval: time.Duration(req.IntervalMs) * time.Millisecond,
		TimeRange: backend.TimeRange{From: now.Add(-6 * time.Hour), To: now}}
	if req.From > 0 {
		dq.TimeRange.From = time.UnixMilli(req.From)
	}
	if req.To > 0 {
		dq.TimeRange.To = time.UnixMilli(req.To)
	}
	if q.Variable != "" {
		return Preview{}, errors.New("no preview for variable queries")
	}
	switch q.Source {
	case SourceSQL:
		if d.pg == nil {
			return Preview{}, errors.New("source sql: PostgreSQL is not configured for this data source")
		}
		if q.Mode == ModeCode {
			text, _, err := d.expandSQL(r.Context(), q, dq)
			if err != nil {
				return Preview{}, fmt.Errorf("%w: %w", errPreviewUpstream, err)
			}
			return Preview{Language: "sql", Text: text}, nil
		}
		if q.Mode == ModeStates {
			sr := d.statesRequest(q, dq)
			text, args := sqlquery.StatesSQL(sr)
			p := Preview{Language: "sql", Text: text, Params: formatArgs(args), Code: sqlquery.StatesCodeSQL(sr)}
			if q.Live && q.Format != FormatTable {
				p.Notes = append(p.Notes, fmt.Sprintf("Live: history until %s (the seam), then the same series' new states pushed over Grafana Live",
					d.live.HistoryEnd(dq.TimeRange.To).UTC().Format(time.RFC3339)))
			}
			return p, nil
		}
		sr, err := d.sqlRequest(q, dq)
		if err != nil {
			return Preview{}, err
		}
		st, err := d.pg.statement(r.Context(), sr)
		if err != nil {
			return Preview{}, fmt.Errorf("%w: %w", errPreviewUpstream, err)
		}
		p := Preview{Language: "sql", Text: st.SQL, Params: formatArgs(st.Args), Code: sqlquery.CodeSQL(codeRequest(q, sr))}
		if st.Rollup {
			p.Notes = append(p.Notes, "Served from a rollup table, re-aggregated to the query's buckets")
		}
		switch {
		case !q.Live || q.Format == FormatTable:
		case q.Aggregation == sqlquery.None:
			p.Notes = append(p.Notes, fmt.Sprintf("Live: history until %s (the seam), then the same series' new rows pushed over Grafana Live",
				d.live.HistoryEnd(dq.TimeRange.To).UTC().Format(time.RFC3339)))
		default:
			p.Notes = append(p.Notes, "Live: history of the closed buckets, then each bucket pushed over Grafana Live once it has closed")
		}
		return p, nil
	case SourceFlux:
		if d.influx == nil {
			return Preview{}, errors.New("source flux: InfluxDB is not configured for this data source")
		}
		if q.Mode == ModeCode {
			return Preview{Language: "flux", Text: d.expandFlux(q, dq)}, nil
		}
		fr, err := d.fluxRequest(q, dq)
		if err != nil {
			return Preview{}, err
		}
		built, err := fluxquery.Build(fr)
		if err != nil {
			return Preview{}, err
		}
		code := fr
		if q.Interval == 0 {
			code.Interval = 0 // v.windowPeriod follows the panel
		}
		return Preview{Language: "flux", Text: built.Flux, Code: fluxquery.Code(code)}, nil
	case SourceInfluxQL:
		if d.influx == nil {
			return Preview{}, errors.New("source influxql: InfluxDB is not configured for this data source")
		}
		return Preview{Language: "influxql", Text: d.expandInfluxQL(q, dq)}, nil
	}
	return Preview{}, fmt.Errorf("no preview for source %q: MQTT queries subscribe to their topic filter", q.Source)
}

// codeRequest is the builder request the code seed is written from: the query's own interval, or none (then
// $__interval follows the panel).
func codeRequest(q Query, sr sqlquery.Request) sqlquery.Request {
	sr.Interval = q.Interval
	return sr
}

// formatArgs shows bound values the way psql would write them: $1 = 'temperature'.
func formatArgs(args []any) []string {
	out := make([]string, len(args))
	for i, a := range args {
		var v string
		switch x := a.(type) {
		case string:
			v = sqlquery.Literal(x)
		case []string:
			q := make([]string, len(x))
			for j, s := range x {
				q[j] = sqlquery.Literal(s)
			}
			v = "ARRAY[" + strings.Join(q, ", ") + "]"
		case time.Time:
			v = "'" + x.UTC().Format(time.RFC3339Nano) + "'"
		case pgtype.Interval:
			v = "'" + (time.Duration(x.Microseconds) * time.Microsecond).String() + "'"
		default:
			v = fmt.Sprint(x)
		}
		out[i] = fmt.Sprintf("$%d = %s", i+1, v)
	}
	return out
}
