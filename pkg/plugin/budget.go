package plugin

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"

	"golang.org/x/sync/semaphore"
)

// Byte budgets for code queries (SQL and Flux), whose size a Viewer chooses: `SELECT repeat('x', 300000000)`
// used to be read whole, taking the plugin process (and every data source instance and live stream in it) to
// 1.7 GB. Each code query may read maxResponseBytes from its database; the bytes are counted where they
// arrive (the PostgreSQL connection, the InfluxDB HTTP response body), so the query fails before the plugin
// holds more than the budget, and all code queries of an instance together hold at most maxBytesInFlight
// (each reserves its budget before it runs; more wait, bounded by the request's context).

// ErrResponseTooLarge is the error a code query ends with when it reads past its budget.
var ErrResponseTooLarge = errors.New("response too large")

// readBudget is one query's allowance, shared by the readers counting its bytes.
type readBudget struct {
	left     atomic.Int64
	exceeded atomic.Bool
	limit    int64
}

func newReadBudget(limit int64) *readBudget {
	b := &readBudget{limit: limit}
	b.left.Store(limit)
	return b
}

// take counts n bytes; false once the budget is spent.
func (b *readBudget) take(n int) bool {
	if b.left.Add(-int64(n)) < 0 {
		b.exceeded.Store(true)
		return false
	}
	return true
}

// err is the error a query over its budget reports: it names the setting, and is the query's fault
// (downstream), not the plugin's.
func (b *readBudget) err() error {
	return downstream(fmt.Errorf("%w: this query read more than maxResponseBytes (%d bytes) from the database; narrow it (time range, columns, LIMIT) or raise maxResponseBytes in the data source settings", ErrResponseTooLarge, b.limit))
}

type budgetKey struct{}

func withBudget(ctx context.Context, b *readBudget) context.Context {
	return context.WithValue(ctx, budgetKey{}, b)
}

func budgetFrom(ctx context.Context) *readBudget {
	b, _ := ctx.Value(budgetKey{}).(*readBudget)
	return b
}

// budgets is an instance's pool of bytes in flight.
type budgets struct {
	perQuery int64
	sem      *semaphore.Weighted
}

func newBudgets(perQuery, inFlight int64) *budgets {
	return &budgets{perQuery: perQuery, sem: semaphore.NewWeighted(inFlight)}
}

// acquire reserves one query's budget (waiting while other code queries hold the instance's bytes); release
// gives it back.
func (b *budgets) acquire(ctx context.Context) (*readBudget, func(), error) {
	if err := b.sem.Acquire(ctx, b.perQuery); err != nil {
		return nil, nil, downstream(fmt.Errorf("waiting for other code queries of this data source to finish (maxBytesInFlight): %w", err))
	}
	return newReadBudget(b.perQuery), func() { b.sem.Release(b.perQuery) }, nil
}

// budgetConn counts the bytes a PostgreSQL connection reads against the budget of the query it serves (set
// by arm when a code query acquires the connection; nil between queries).
type budgetConn struct {
	net.Conn
	budget atomic.Pointer[readBudget]
}

func (c *budgetConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if b := c.budget.Load(); b != nil && n > 0 && !b.take(n) {
		return n, ErrResponseTooLarge // pgconn closes the connection: the pool discards it
	}
	return n, err
}

func (c *budgetConn) arm(b *readBudget) { c.budget.Store(b) }

// budgetConnOf finds the budgetConn of a code-SQL connection: the connection itself, or under the TLS
// connection pgx layers over it (the budget then counts the bytes as they arrive, encrypted).
func budgetConnOf(c net.Conn) (*budgetConn, bool) {
	for c != nil {
		if bc, ok := c.(*budgetConn); ok {
			return bc, true
		}
		u, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			return nil, false
		}
		c = u.NetConn()
	}
	return nil, false
}

// budgetBody counts an HTTP response body (InfluxDB's CSV) against the budget in the request's context.
type budgetBody struct {
	io.ReadCloser
	b *readBudget
}

func (r *budgetBody) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	if n > 0 && !r.b.take(n) {
		return n, ErrResponseTooLarge
	}
	return n, err
}

// budgetTransport wraps response bodies of requests whose context carries a budget.
type budgetTransport struct{ next http.RoundTripper }

func (t budgetTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err != nil || resp.Body == nil {
		return resp, err
	}
	if b := budgetFrom(req.Context()); b != nil {
		body := resp.Body
		if resp.Header.Get("Content-Encoding") == "gzip" {
			// Count what the answer decompresses to (what the plugin parses and holds), not the wire bytes:
			// a compressed CSV is many times smaller. The client then reads plain text.
			zr, err := gzip.NewReader(body)
			if err != nil {
				body.Close()
				return nil, fmt.Errorf("InfluxDB: gzip response: %w", err)
			}
			body = readCloser{Reader: zr, Closer: body}
			resp.Header.Del("Content-Encoding")
			resp.ContentLength = -1
		}
		resp.Body = &budgetBody{ReadCloser: body, b: b}
	}
	return resp, nil
}

type readCloser struct {
	io.Reader
	io.Closer
}
