package sqlquery

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend/gtime"
	"github.com/grafana/grafana-plugin-sdk-go/data"
	"github.com/grafana/grafana-plugin-sdk-go/data/sqlutil"

	"github.com/fieldline-iot/fieldline/internal/timebucket"
)

// Fill is the gap handling a code query asked for through the third argument of $__timeGroup.
type Fill struct {
	Missing  *data.FillMissing
	Interval time.Duration
}

// Interpolate expands Grafana's SQL macros in a code query with the SDK's sqlutil.Interpolate, overriding the
// time macros for PostgreSQL/TimescaleDB the way Grafana's own PostgreSQL data source does:
//
//	$__time(col)                     col AS "time"
//	$__timeEpoch(col)                extract(epoch from col) AS "time"
//	$__timeFilter(col)               col >= 'from' AND col < 'to'   (half-open, like Flux's range())
//	$__timeFrom() / $__timeTo()      'from' / 'to' (RFC 3339 literals)
//	$__timeGroup(col, iv[, fill])    time_bucket('iv', col) on TimescaleDB, date_bin('iv', col, '2000-01-03')
//	                                 on plain PostgreSQL: the builder's buckets; fill = NULL | previous | number
//	$__timeGroupAlias(col, iv[, f])  the same AS "time"
//	$__unixEpochFilter(col), $__unixEpochFrom(), $__unixEpochTo(), $__unixEpochGroup(col, iv), …Alias
//	$__interval, $__interval_ms      the query interval (SDK defaults)
//
// iv may be a duration ("5m", '1h') or $__interval / $__interval_ms. The returned Fill is non-nil when a
// $__timeGroup asked for gap filling.
func Interpolate(q *sqlutil.Query, timescale bool) (string, *Fill, error) {
	var fill *Fill
	out, err := sqlutil.Interpolate(q, macroSet(q, timescale, &fill))
	if err != nil {
		return "", nil, fmt.Errorf("interpolate macros: %w", err)
	}
	return out, fill, nil
}

// unsupportedMacros are the SDK's default macros that do not apply to this data source: they fail clearly
// instead of emitting SQL Server syntax or an empty string.
var unsupportedMacros = []string{"table", "column"}

// MacroNames returns the names (without "$__") of the macros a code SQL query may use, sorted: the macros
// Interpolate defines and the SDK defaults it keeps, without the unsupported ones. The query editor's
// completion list (src/completion.ts) is checked against it by pkg/plugin's TestEditorMacrosMatchBackend.
func MacroNames() []string {
	var fill *Fill
	set := map[string]bool{}
	for name := range sqlutil.DefaultMacros {
		set[name] = true
	}
	for name := range macroSet(&sqlutil.Query{}, false, &fill) {
		set[name] = true
	}
	for _, name := range unsupportedMacros {
		delete(set, name)
	}
	names := make([]string, 0, len(set))
	for name := range set {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// macroSet returns the macros Interpolate uses for q; a $__timeGroup that asks for gap filling sets *fill.
func macroSet(q *sqlutil.Query, timescale bool, fill **Fill) sqlutil.Macros {
	intervalArg := func(name, arg string) (time.Duration, error) {
		arg = strings.Trim(strings.TrimSpace(arg), `'"`)
		switch arg {
		case "$__interval", "$__interval_ms", "auto":
			if q.Interval <= 0 {
				return 0, fmt.Errorf("macro %s: the query has no interval", name)
			}
			return q.Interval, nil
		}
		d, err := gtime.ParseInterval(arg)
		if err != nil {
			return 0, fmt.Errorf("macro %s: interval %q: %w", name, arg, err)
		}
		if err := timebucket.Validate(d); err != nil {
			return 0, fmt.Errorf("macro %s: %w", name, err)
		}
		return d, nil
	}
	needArgs := func(name string, args []string, n int) error {
		if len(args) < n || strings.TrimSpace(args[0]) == "" {
			return fmt.Errorf("macro $__%s needs %d argument(s), got %d", name, n, len(args))
		}
		return nil
	}
	from := q.TimeRange.From.UTC().Format(time.RFC3339Nano)
	to := q.TimeRange.To.UTC().Format(time.RFC3339Nano)

	timeGroup := func(name string, args []string) (string, error) {
		if err := needArgs(name, args, 2); err != nil {
			return "", err
		}
		if len(args) > 3 {
			return "", fmt.Errorf("macro $__%s takes a column, an interval and an optional fill value", name)
		}
		d, err := intervalArg(name, args[1])
		if err != nil {
			return "", err
		}
		if len(args) == 3 {
			m, err := parseFill(args[2])
			if err != nil {
				return "", fmt.Errorf("macro $__%s: %w", name, err)
			}
			*fill = &Fill{Missing: m, Interval: d}
		}
		lit := "'" + strconv.FormatInt(d.Microseconds(), 10) + " microseconds'"
		return bucketExpr(timescale, lit, args[0]), nil
	}

	macros := sqlutil.Macros{
		"time": func(_ *sqlutil.Query, args []string) (string, error) {
			if err := needArgs("time", args, 1); err != nil {
				return "", err
			}
			return args[0] + ` AS "time"`, nil
		},
		"timeEpoch": func(_ *sqlutil.Query, args []string) (string, error) {
			if err := needArgs("timeEpoch", args, 1); err != nil {
				return "", err
			}
			return "extract(epoch from " + args[0] + `) AS "time"`, nil
		},
		"timeFilter": func(_ *sqlutil.Query, args []string) (string, error) {
			if err := needArgs("timeFilter", args, 1); err != nil {
				return "", err
			}
			return fmt.Sprintf("%s >= '%s' AND %s < '%s'", args[0], from, args[0], to), nil
		},
		"timeFrom": func(*sqlutil.Query, []string) (string, error) { return "'" + from + "'", nil },
		"timeTo":   func(*sqlutil.Query, []string) (string, error) { return "'" + to + "'", nil },
		"timeGroup": func(_ *sqlutil.Query, args []string) (string, error) {
			return timeGroup("timeGroup", args)
		},
		"timeGroupAlias": func(_ *sqlutil.Query, args []string) (string, error) {
			s, err := timeGroup("timeGroupAlias", args)
			if err != nil {
				return "", err
			}
			return s + ` AS "time"`, nil
		},
		"unixEpochFilter": func(_ *sqlutil.Query, args []string) (string, error) {
			if err := needArgs("unixEpochFilter", args, 1); err != nil {
				return "", err
			}
			return fmt.Sprintf("%s >= %d AND %s <= %d", args[0], q.TimeRange.From.Unix(), args[0], q.TimeRange.To.Unix()), nil
		},
		"unixEpochFrom": func(*sqlutil.Query, []string) (string, error) {
			return strconv.FormatInt(q.TimeRange.From.Unix(), 10), nil
		},
		"unixEpochTo": func(*sqlutil.Query, []string) (string, error) {
			return strconv.FormatInt(q.TimeRange.To.Unix(), 10), nil
		},
		"unixEpochGroup": func(_ *sqlutil.Query, args []string) (string, error) {
			return unixEpochGroup("unixEpochGroup", args, intervalArg)
		},
		"unixEpochGroupAlias": func(_ *sqlutil.Query, args []string) (string, error) {
			s, err := unixEpochGroup("unixEpochGroupAlias", args, intervalArg)
			if err != nil {
				return "", err
			}
			return s + ` AS "time"`, nil
		},
	}
	for _, name := range unsupportedMacros {
		macros[name] = unsupported(name)
	}
	return macros
}

func unixEpochGroup(name string, args []string, intervalArg func(string, string) (time.Duration, error)) (string, error) {
	if len(args) < 2 {
		return "", fmt.Errorf("macro $__%s needs a column and an interval", name)
	}
	d, err := intervalArg(name, args[1])
	if err != nil {
		return "", err
	}
	s := strconv.FormatFloat(d.Seconds(), 'f', -1, 64)
	return fmt.Sprintf("floor((%s)/%s)*%s", args[0], s, s), nil
}

func unsupported(name string) sqlutil.MacroFunc {
	return func(*sqlutil.Query, []string) (string, error) {
		return "", fmt.Errorf("macro $__%s is not supported by this data source", name)
	}
}

func parseFill(arg string) (*data.FillMissing, error) {
	arg = strings.TrimSpace(arg)
	switch strings.ToLower(arg) {
	case "null":
		return &data.FillMissing{Mode: data.FillModeNull}, nil
	case "previous":
		return &data.FillMissing{Mode: data.FillModePrevious}, nil
	}
	v, err := strconv.ParseFloat(arg, 64)
	if err != nil {
		return nil, fmt.Errorf("fill value %q: want NULL, previous or a number", arg)
	}
	return &data.FillMissing{Mode: data.FillModeValue, Value: v}, nil
}
