package store

import (
	"encoding/binary"
	"io"
	"math"

	"github.com/fieldline-iot/fieldline/internal/telemetry"
)

// copyReadingsSQL is the COPY statement binaryReadings feeds, in PostgreSQL's binary format.
const copyReadingsSQL = "COPY readings (time, device, metric, sensor, value, unit) FROM STDIN (FORMAT binary)"

// binaryReadings encodes numeric readings in PostgreSQL's binary COPY format (the COPY documentation's "Binary
// Format": a signature, then per row a field count and each field as a length and its bytes, then -1) for
// pgconn's CopyFrom, which streams what Read returns. pgx's CopyFrom does the same through its type map, which
// looks up an encode plan and boxes each of the six values of every row: 22 % of the ingester's CPU for
// one-reading messages (profile in docs/benchmarks.md). The six column types are fixed, so the encoding is
// written here, the timestamptz as pgx writes it (microseconds since 2000-01-01 UTC, sub-microsecond digits
// truncated), and TestBinaryCopyMatchesPgx checks it against pgx's on a real server.
type binaryReadings struct {
	rows    []telemetry.Reading
	order   []int32 // nil: rows in their order
	next    int     // next row to encode
	pending []byte  // encoded bytes not yet returned
	scratch []byte
	done    bool
}

var copySignature = []byte("PGCOPY\n\xff\r\n\x00\x00\x00\x00\x00\x00\x00\x00\x00") // signature, flags 0, no header extension

const microsecFromUnixEpochToY2K = 946_684_800 * 1_000_000

func newBinaryReadings(rows []telemetry.Reading, order []int32) *binaryReadings {
	b := &binaryReadings{rows: rows, order: order}
	b.pending = append(b.scratch[:0], copySignature...)
	return b
}

// Read fills p with whole rows where they fit, and with the rest of a row that did not.
func (b *binaryReadings) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if len(b.pending) == 0 {
			if b.done {
				break
			}
			b.pending = b.encodeNext(b.scratch[:0])
			b.scratch = b.pending[:0]
		}
		c := copy(p[n:], b.pending)
		n += c
		b.pending = b.pending[c:]
	}
	if n == 0 && b.done {
		return 0, io.EOF
	}
	return n, nil
}

// encodeNext appends the next row (or, after the last, the trailer) to buf.
func (b *binaryReadings) encodeNext(buf []byte) []byte {
	if b.next == len(b.rows) {
		b.done = true
		return binary.BigEndian.AppendUint16(buf, 0xffff) // trailer: -1
	}
	i := b.next
	if b.order != nil {
		i = int(b.order[i])
	}
	b.next++
	r := &b.rows[i]
	buf = binary.BigEndian.AppendUint16(buf, 6)
	us := r.Time.Unix()*1_000_000 + int64(r.Time.Nanosecond())/1000 - microsecFromUnixEpochToY2K
	buf = binary.BigEndian.AppendUint32(buf, 8)
	buf = binary.BigEndian.AppendUint64(buf, uint64(us))
	buf = appendText(buf, r.Device)
	buf = appendText(buf, r.Metric)
	buf = appendText(buf, r.Sensor)
	buf = binary.BigEndian.AppendUint32(buf, 8)
	buf = binary.BigEndian.AppendUint64(buf, math.Float64bits(r.Value))
	if r.Unit == "" {
		return binary.BigEndian.AppendUint32(buf, 0xffffffff) // NULL
	}
	return appendText(buf, r.Unit)
}

func appendText(buf []byte, s string) []byte {
	buf = binary.BigEndian.AppendUint32(buf, uint32(len(s)))
	return append(buf, s...)
}
