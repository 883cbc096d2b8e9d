package plugin

import (
	"context"
	"fmt"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/data"
	"github.com/jackc/pgx/v5"

	"github.com/fieldline-iot/fieldline/pkg/frames"
	"github.com/fieldline-iot/fieldline/pkg/live"
	"github.com/fieldline-iot/fieldline/pkg/sqlquery"
)

// statesSQL answers a states query (mode states): the state changes of the metric's series, as text frames for
// the State timeline and Stat panels, or, as a table, with the time/text/tags columns annotations read. Live
// time-series queries continue over Grafana Live from the seam, as builder queries do.
func (d *Datasource) statesSQL(ctx context.Context, q Query, dq backend.DataQuery) (data.Frames, error) {
	if !q.Live || q.Format == FormatTable {
		return d.statesHistory(ctx, q, dq)
	}
	lq := live.SQLQuery{RefID: q.RefID, Metric: q.Metric, Devices: q.Devices, Sensors: q.Sensors,
		From: dq.TimeRange.From, To: dq.TimeRange.To, States: true}
	return d.live.SQLFrames(ctx, lq, func(to time.Time) (data.Frames, error) {
		hq := dq
		hq.TimeRange.To = to
		return d.statesHistory(ctx, q, hq)
	})
}

// statesRequest is the states statement's request for a query (QueryData and the /preview resource).
func (d *Datasource) statesRequest(q Query, dq backend.DataQuery) sqlquery.StatesRequest {
	return sqlquery.StatesRequest{Metric: q.Metric, Devices: q.Devices, Sensors: q.Sensors, State: q.State,
		From: dq.TimeRange.From, To: dq.TimeRange.To, Limit: int(d.settings.RowLimit)}
}

func (d *Datasource) statesHistory(ctx context.Context, q Query, dq backend.DataQuery) (data.Frames, error) {
	sql, args := sqlquery.StatesSQL(d.statesRequest(q, dq))
	var rows []frames.StateRow
	err := d.pg.readOnly(ctx, func(tx pgx.Tx) error {
		rs, err := tx.Query(ctx, sql, args...)
		if err != nil {
			return err
		}
		defer rs.Close()
		for rs.Next() {
			var r frames.StateRow
			if err := rs.Scan(&r.Time, &r.Device, &r.Sensor, &r.Value); err != nil {
				return err
			}
			r.Time = r.Time.UTC()
			rows = append(rows, r)
		}
		return rs.Err()
	})
	if err != nil {
		return nil, downstream(fmt.Errorf("PostgreSQL: states query (the states table is made by fieldline-ingester's migrations): %w", err))
	}
	truncated := int64(len(rows)) > d.settings.RowLimit
	if truncated {
		rows = rows[:d.settings.RowLimit]
	}
	var result data.Frames
	if q.Format == FormatTable {
		result = data.Frames{frames.StatesTable(q.RefID, q.Metric, rows, sql)}
	} else {
		result = frames.States(q.RefID, q.Metric, rows, sql)
	}
	if truncated {
		result[0].AppendNotices(data.Notice{Severity: data.NoticeSeverityWarning,
			Text: fmt.Sprintf("Results have been limited to %d rows because the row limit was reached", d.settings.RowLimit)})
	}
	return result, nil
}
