package sqlquery

import "github.com/fieldline-iot/fieldline/internal/tablemap"

// Table maps a table the user already has onto the columns every builder statement reads (internal/tablemap).
type Table = tablemap.Table
