package sqlquery

import (
	"strconv"
	"strings"
	"time"
)

// ReadBack selects the raw rows a live stream reads back from PostgreSQL: a metric's readings from From (to
// To, when set), newest first, at most Limit+1 rows (one more than kept, so the caller knows it cut).
type ReadBack struct {
	Metric string
	From   time.Time
	To     time.Time // zero: no upper bound
	// Devices and Sensors select series as in Request, except that an empty non-nil list selects nothing.
	Devices, Sensors []string
	// ExcludeDevices[i], ExcludeSensors[i] are series to leave out (a one-series channel of the same query
	// carries them); nil: none.
	ExcludeDevices, ExcludeSensors []string
	Limit                          int
	// Table, when set, is the user's own table to read instead of readings.
	Table *Table
	// States reads the states table (value is text) instead of readings or Table.
	States bool
}

// ReadBackSQL returns the statement for r, with the same series selection SQL as Build; ok is false when r
// selects nothing (no statement to run). Columns: time, device, sensor, value.
func ReadBackSQL(r ReadBack) (sql string, args []any, ok bool) {
	if (r.Devices != nil && len(r.Devices) == 0) || (r.Sensors != nil && len(r.Sensors) == 0) {
		return "", nil, false
	}
	var b strings.Builder
	args = []any{r.Metric, r.From}
	relation := r.Table.Relation()
	if r.States {
		relation = StatesTable
	}
	b.WriteString("SELECT time, device, sensor, value FROM " + relation + " WHERE metric = $1 AND time >= $2")
	if !r.To.IsZero() {
		args = append(args, r.To)
		b.WriteString(" AND time <= $" + strconv.Itoa(len(args)))
	}
	args = appendSelector(&b, args, "device", r.Devices)
	args = appendSelector(&b, args, "sensor", r.Sensors)
	if r.ExcludeDevices != nil {
		args = append(args, r.ExcludeDevices, r.ExcludeSensors)
		b.WriteString(" AND (device, sensor) NOT IN (SELECT * FROM unnest($" + strconv.Itoa(len(args)-1) +
			"::text[], $" + strconv.Itoa(len(args)) + "::text[]))")
	}
	args = append(args, r.Limit+1)
	b.WriteString(" ORDER BY time DESC LIMIT $" + strconv.Itoa(len(args)))
	return b.String(), args, true
}
