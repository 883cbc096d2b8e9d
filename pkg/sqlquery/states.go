package sqlquery

import (
	"strconv"
	"strings"
	"time"
)

// StatesTable is the table fieldline-ingester writes text and boolean values to (time, device, metric, sensor,
// value text, kind 'text'|'bool'; migration 11).
const StatesTable = "states"

// StatesLookback bounds how far before the range the state a series is in at the range's start is looked for
// (a series whose last change is older starts at its first change in the range). It keeps the statement's cost
// bound by time, as every other builder statement is.
const StatesLookback = 30 * 24 * time.Hour

// StatesRequest selects a metric's state changes in [From, To) (To excluded, as for Build: the live seam).
type StatesRequest struct {
	Metric           string
	Devices, Sensors []string // nil or empty: all
	From, To         time.Time
	// State, when set, keeps only the changes to this value (e.g. "offline", for an annotation); the rows are
	// then those in the range only. Otherwise each series also starts with the state it was in at From.
	State string
	Limit int // rows kept; the statement returns at most Limit+1 so the caller knows it cut
}

// StatesSQL returns the statement for r. Columns: time, device, sensor, value (text; booleans are 'true'/'false'),
// ordered by series and time.
// A change is a row whose value differs from the series' previous row (repeated retained "online" messages
// after reconnects are one state, not many).
func StatesSQL(r StatesRequest) (sql string, args []any) {
	var sel strings.Builder
	args = []any{r.Metric, r.From, r.To}
	args = appendSelector(&sel, args, "device", r.Devices)
	args = appendSelector(&sel, args, "sensor", r.Sensors)
	args = append(args, StatesLookback.String())
	lookback := "$" + strconv.Itoa(len(args))
	var b strings.Builder
	b.WriteString("WITH s AS (\n  (SELECT DISTINCT ON (device, sensor) time, device, sensor, value FROM " + StatesTable +
		"\n    WHERE metric = $1 AND time >= $2::timestamptz - " + lookback + "::interval AND time < $2" + sel.String() +
		"\n    ORDER BY device, sensor, time DESC)\n  UNION ALL\n  SELECT time, device, sensor, value FROM " + StatesTable +
		"\n    WHERE metric = $1 AND time >= $2 AND time < $3" + sel.String() +
		"\n), c AS (\n  SELECT time, device, sensor, value, lag(value) OVER (PARTITION BY device, sensor ORDER BY time) AS prev FROM s\n)\n" +
		"SELECT time, device, sensor, value FROM c WHERE prev IS DISTINCT FROM value")
	if r.State != "" {
		args = append(args, r.State)
		b.WriteString(" AND value = $" + strconv.Itoa(len(args)) + " AND time >= $2")
	}
	args = append(args, r.Limit+1)
	b.WriteString("\nORDER BY device, sensor, time LIMIT $" + strconv.Itoa(len(args)))
	return b.String(), args
}

// StatesCodeSQL is the code SQL a states query becomes when the user switches the editor to code (see CodeSQL):
// the rows of the states table in the panel's range, as a table (text values would be labels in a time
// series).
func StatesCodeSQL(r StatesRequest) string {
	where := []string{"metric = " + Literal(r.Metric)}
	if in := literalList(r.Devices); in != "" {
		where = append(where, "device IN ("+in+")")
	}
	if in := literalList(r.Sensors); in != "" {
		where = append(where, "sensor IN ("+in+")")
	}
	if r.State != "" {
		where = append(where, "value = "+Literal(r.State))
	}
	where = append(where, "$__timeFilter(time)")
	return "SELECT time, device, sensor, value\nFROM " + StatesTable + "\nWHERE " + strings.Join(where, " AND ") + "\nORDER BY time"
}
