// Package sqlquery turns Fieldline's builder queries into parameterized SQL for the readings table and its
// rollups, on plain PostgreSQL (date_bin) and on TimescaleDB (time_bucket), and provides the SQL
// macros of code queries and the series-discovery statements.
//
// Every user value (metric, device, sensor, time range, interval, limit) is bound as a parameter: statements
// are assembled only from constant fragments chosen by enumerated options.
package sqlquery

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/fieldline-iot/fieldline/internal/store"
	"github.com/fieldline-iot/fieldline/internal/timebucket"
)

// Aggregation is a builder aggregation; None selects raw rows.
type Aggregation string

// Builder aggregations.
const (
	None  Aggregation = ""
	Avg   Aggregation = "avg"
	Min   Aggregation = "min"
	Max   Aggregation = "max"
	Last  Aggregation = "last"
	Count Aggregation = "count"
	Sum   Aggregation = "sum"
)

// Aggregations are the builder aggregations, None (raw rows) first.
var Aggregations = []Aggregation{None, Avg, Min, Max, Last, Count, Sum}

// ParseAggregation accepts avg, min, max, last, count, sum, and "" or "none" (raw rows).
func ParseAggregation(s string) (Aggregation, error) {
	switch a := Aggregation(strings.ToLower(strings.TrimSpace(s))); a {
	case "", "none", "raw":
		return None, nil
	case "mean", "average":
		return Avg, nil
	case Avg, Min, Max, Last, Count, Sum:
		return a, nil
	}
	return "", fmt.Errorf("aggregation %q: want avg, min, max, last, count, sum or none", s)
}

// MaxSelectorValues bounds a device or sensor list of a query (and of a live channel made from one).
const MaxSelectorValues = 100

// Request is one builder query.
type Request struct {
	Metric      string
	Devices     []string // empty: every device
	Sensors     []string // empty: every sensor
	Aggregation Aggregation
	Interval    time.Duration // bucket width; required when Aggregation is not None
	From, To    time.Time     // [From, To); widened to whole buckets when aggregating
	Limit       int64         // maximum rows returned; the statement fetches Limit+1 to detect truncation
}

// Options describe the database the statement runs on.
type Options struct {
	Timescale bool // time_bucket and last() instead of date_bin and array_agg
	NoRollup  bool // never read the rollups (schemas before 9, where foreign writers bypassed them)
	// Table, when set, is the user's own table the statements read instead of readings.
	Table *Table
	// TableRollups, with Table, are the rollups installed on that table for this very mapping
	// (store.InstallTableRollups); nil: aggregates are computed from the table's rows.
	TableRollups *store.TableRollups
}

// Statement is a statement ready to run: one row per (device, sensor, time) with columns
// time timestamptz, device text, sensor text, value float8. Raw reads come grouped by series, time ascending
// within a series; aggregated reads come in time order (callers group rows by series).
//
// A statement that re-aggregates rollup rows into wider buckets reads the rollup rows in bucket order and merges
// them as ReadRows streams them (see regroup.go); read every statement's rows with ReadRows.
type Statement struct {
	SQL      string
	Args     []any
	Rollup   bool      // served from a rollup (readings_1m, readings_5m or readings_1h)
	From, To time.Time // the effective range (widened to whole buckets when aggregating)

	regroup *regroup // set when ReadRows merges rollup rows into the request's buckets
}

// Build returns the statement for a request.
//
// Rollup choice: when the query aggregates, the coarsest rollup whose width divides the interval
// (store.RollupFor: 1 h, 5 min or 1 min) serves it, so 7 days at 10 minutes re-aggregates 5-minute rows.
// The rollups cover every committed reading from any writer: a trigger on readings merges each statement's rows
// into every level in the writing transaction (store migrations 8 and 9), on plain PostgreSQL and TimescaleDB.
// Options.NoRollup serves aggregates from the raw table (schemas before 9 fed by foreign writers).
func Build(req Request, opt Options) (Statement, error) {
	if req.Metric == "" {
		return Statement{}, errors.New("builder query: metric is required")
	}
	if !req.To.After(req.From) {
		return Statement{}, fmt.Errorf("builder query: empty time range %s .. %s", req.From.Format(time.RFC3339), req.To.Format(time.RFC3339))
	}
	if req.Limit <= 0 {
		return Statement{}, errors.New("builder query: row limit must be positive")
	}
	st := Statement{From: req.From.UTC(), To: req.To.UTC()}
	var level *store.Rollup // the coarsest rollup whose width divides the interval
	if req.Aggregation != None {
		if err := timebucket.Validate(req.Interval); err != nil {
			return Statement{}, fmt.Errorf("builder query: %w", err)
		}
		st.From, st.To = timebucket.Range(req.From, req.To, req.Interval)
		switch {
		case opt.NoRollup:
		case opt.Table == nil:
			level = store.RollupFor(req.Interval)
		case opt.TableRollups != nil:
			level = opt.TableRollups.For(req.Interval)
		}
		st.Rollup = level != nil
	}

	var b strings.Builder
	args := []any{req.Metric, st.From, st.To}
	timeCol, table := "time", "readings"
	if st.Rollup {
		timeCol, table = "bucket", level.Table
	}
	oneMinute := st.Rollup && req.Interval == level.Width // one rollup row per bucket: no re-aggregation
	if st.Rollup && !oneMinute {
		return buildRegroup(req, st, level), nil
	}

	switch {
	case req.Aggregation == None:
		b.WriteString("SELECT time, device, sensor, value FROM ")
		b.WriteString(opt.Table.Relation())
	case oneMinute:
		// 1-minute buckets are the rollup rows themselves: no regrouping.
		b.WriteString("SELECT bucket AS time, device, sensor, ")
		b.WriteString(rollupRowExpr(req.Aggregation))
		b.WriteString(" AS value FROM ")
		b.WriteString(table)
	default:
		args = append(args, pgtype.Interval{Microseconds: req.Interval.Microseconds(), Valid: true})
		b.WriteString("SELECT ")
		b.WriteString(bucketExpr(opt.Timescale, "$4", timeCol))
		b.WriteString(" AS time, device, sensor, ")
		b.WriteString(rawAggExpr(req.Aggregation, opt.Timescale))
		b.WriteString(" AS value FROM ")
		b.WriteString(opt.Table.Relation())
	}
	b.WriteString(" WHERE metric = $1 AND ")
	b.WriteString(timeCol)
	b.WriteString(" >= $2 AND ")
	b.WriteString(timeCol)
	b.WriteString(" < $3")
	args = appendSelector(&b, args, "device", req.Devices)
	args = appendSelector(&b, args, "sensor", req.Sensors)
	if req.Aggregation != None && !oneMinute {
		b.WriteString(" GROUP BY 2, 3, 1")
	}
	switch {
	case req.Aggregation == None:
		// The series index (metric, device, sensor, time DESC) read backwards: time ascending per series, no
		// sort. Series come in descending label order; callers order the frames.
		b.WriteString(" ORDER BY metric DESC, device DESC, sensor DESC, time")
	case oneMinute:
		// The rollup's (metric, bucket) index order: no sort. The frame builder groups rows by series itself.
		b.WriteString(" ORDER BY bucket")
	default:
		b.WriteString(" ORDER BY 1")
	}
	args = append(args, req.Limit+1)
	b.WriteString(" LIMIT $")
	b.WriteString(strconv.Itoa(len(args)))
	st.SQL = b.String()
	st.Args = args
	return st, nil
}

// buildRegroup reads the rollup rows of [From, To) in the (metric, bucket) index order, with the columns the
// aggregation merges; ReadRows regroups them into buckets of the request's interval. The LIMIT is on rollup rows:
// each output row merges at most interval/width of them, so a result stopped there has more than Limit rows.
func buildRegroup(req Request, st Statement, level *store.Rollup) Statement {
	maxInput := (req.Limit + 1) * int64(req.Interval/level.Width)
	args := []any{req.Metric, st.From, st.To}
	var b strings.Builder
	b.WriteString("SELECT bucket, device, sensor, ")
	b.WriteString(regroupColumns(req.Aggregation))
	b.WriteString(" FROM ")
	b.WriteString(level.Table)
	b.WriteString(" WHERE metric = $1 AND bucket >= $2 AND bucket < $3")
	args = appendSelector(&b, args, "device", req.Devices)
	args = appendSelector(&b, args, "sensor", req.Sensors)
	args = append(args, maxInput)
	b.WriteString(" ORDER BY bucket LIMIT $")
	b.WriteString(strconv.Itoa(len(args)))
	st.SQL, st.Args = b.String(), args
	st.regroup = &regroup{width: req.Interval, agg: req.Aggregation, maxInput: maxInput}
	return st
}

// appendSelector adds "AND col = $n" (one value: lets the planner use the series index for ordering) or
// "AND col = ANY($n)" (several values). No values means no filter.
func appendSelector(b *strings.Builder, args []any, col string, values []string) []any {
	switch len(values) {
	case 0:
		return args
	case 1:
		args = append(args, values[0])
		fmt.Fprintf(b, " AND %s = $%d", col, len(args))
	default:
		args = append(args, values)
		fmt.Fprintf(b, " AND %s = ANY($%d::text[])", col, len(args))
	}
	return args
}

func bucketExpr(timescale bool, param, col string) string {
	if timescale {
		return "time_bucket(" + param + "::interval, " + col + ")"
	}
	return "date_bin(" + param + "::interval, " + col + ", '" + timebucket.OriginSQL + "'::timestamptz)"
}

func rawAggExpr(a Aggregation, timescale bool) string {
	switch a {
	case Avg:
		return "avg(value)"
	case Min:
		return "min(value)"
	case Max:
		return "max(value)"
	case Count:
		return "count(*)::float8"
	case Sum:
		return "sum(value)"
	case Last:
		if timescale {
			return "last(value, time)"
		}
		return "(array_agg(value ORDER BY time DESC))[1]"
	}
	panic("sqlquery: unknown aggregation " + string(a))
}

// rollupRowExpr reads one rollup row as a 1-minute aggregate.
func rollupRowExpr(a Aggregation) string {
	switch a {
	case Avg:
		return "sum / count"
	case Min:
		return "min"
	case Max:
		return "max"
	case Count:
		return "count::float8"
	case Sum:
		return "sum"
	case Last:
		return "last"
	}
	panic("sqlquery: unknown aggregation " + string(a))
}
