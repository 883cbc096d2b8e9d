package sqlquery

import (
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
)

// renderArgs writes one line per bound argument: its placeholder, Go type and value, so the golden files pin
// the arguments exactly (a time's location and an interval's fields included).
func renderArgs(b *strings.Builder, args []any) {
	b.WriteString("-- args --\n")
	for i, a := range args {
		fmt.Fprintf(b, "$%d %s\n", i+1, renderArg(a))
	}
}

func renderArg(a any) string {
	switch v := a.(type) {
	case time.Time:
		return fmt.Sprintf("time.Time %s (%s)", v.Format(time.RFC3339Nano), v.Location())
	case pgtype.Interval:
		return fmt.Sprintf("pgtype.Interval {Microseconds:%d Days:%d Months:%d Valid:%t}", v.Microseconds, v.Days, v.Months, v.Valid)
	default:
		return fmt.Sprintf("%T %#v", a, a)
	}
}
