package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fieldline-iot/fieldline/internal/telemetry"
)

// WriterSessionSetup marks a connection as the ingester's: the optional foreign-writer NOTIFY trigger skips rows
// the ingester already announces per batch, and the rollup trigger takes its lock shared (see Writer.Write). Only
// sessions that write one statement per transaction may carry the mark. Use it as pgxpool.Config.AfterConnect.
func WriterSessionSetup(ctx context.Context, c *pgx.Conn) error {
	_, err := c.Exec(ctx, "SET fieldline.writer = 'ingester'")
	if err != nil {
		return fmt.Errorf("mark writer session: %w", err)
	}
	return nil
}

// Writer stores batches of readings: one transaction per batch with COPY into readings (numbers) and states (text
// and boolean values), and one NOTIFY on Channel (numbers) and on StatesChannel (states).
// The database's rollup trigger (migration 8) merges the batch into every rollup level and the series catalogue
// within the same transaction, as it does for every other writer.
type Writer struct {
	pool   *pgxpool.Pool
	notify bool
}

// NewWriter returns a writer for a schema prepared by Migrate (the same on both variants: the schema's trigger
// keeps the rollups). notify turns the per-batch NOTIFY on.
func NewWriter(pool *pgxpool.Pool, _ SchemaInfo, notify bool) *Writer {
	return &Writer{pool: pool, notify: notify}
}

// deadlockRetries bounds how often a batch is retried when PostgreSQL aborts it as a deadlock victim.
const deadlockRetries = 5

// Write stores the batch atomically: after it returns nil every row is committed; after an error none is.
//
// Batches merge into the rollups concurrently: on a session set up by WriterSessionSetup the rollup trigger takes
// its advisory lock shared (migration 10), and one COPY's merge locks rollup rows in one fixed order, the same for
// every batch. Other writers take the lock exclusively and merge alone. Should PostgreSQL still abort a batch as a
// deadlock victim (a foreign session that marks itself as the ingester's), the batch, rolled back whole, is retried.
func (w *Writer) Write(ctx context.Context, batch []telemetry.Reading) error {
	if len(batch) == 0 {
		return nil
	}
	var err error
	for attempt := 0; attempt <= deadlockRetries; attempt++ {
		if err = w.write(ctx, batch); !isDeadlock(err) {
			break
		}
	}
	return err
}

func isDeadlock(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "40P01" // deadlock_detected
}

func (w *Writer) write(ctx context.Context, batch []telemetry.Reading) error {
	numbers, states := splitStates(batch)
	err := pgx.BeginFunc(ctx, w.pool, func(tx pgx.Tx) error {
		if len(numbers) > 0 {
			tag, err := tx.Conn().PgConn().CopyFrom(ctx, newBinaryReadings(numbers, copyOrder(numbers)), copyReadingsSQL)
			if err != nil {
				return fmt.Errorf("copy %d readings: %w", len(numbers), err)
			}
			if n := tag.RowsAffected(); int(n) != len(numbers) {
				return fmt.Errorf("copy readings: stored %d of %d rows", n, len(numbers))
			}
		}
		if len(states) > 0 {
			n, err := tx.CopyFrom(ctx, pgx.Identifier{"states"}, stateColumns, &stateSource{rows: states, i: -1})
			if err != nil {
				return fmt.Errorf("copy %d states: %w", len(states), err)
			}
			if int(n) != len(states) {
				return fmt.Errorf("copy states: stored %d of %d rows", n, len(states))
			}
		}
		if w.notify {
			for _, c := range [...]struct {
				channel string
				rows    []telemetry.Reading
			}{{Channel, numbers}, {StatesChannel, states}} {
				if len(c.rows) == 0 {
					continue
				}
				if _, err := tx.Exec(ctx, "SELECT pg_notify($1, $2)", c.channel, EncodeNotification(c.rows)); err != nil {
					return fmt.Errorf("notify %s: %w", c.channel, err)
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("write batch to PostgreSQL: %w", err)
	}
	return nil
}

// splitStates returns the batch's numbers and its states. A batch without states (the common case) is returned
// as it is, without copying.
func splitStates(batch []telemetry.Reading) (numbers, states []telemetry.Reading) {
	first := -1
	for i := range batch {
		if batch[i].IsState() {
			first = i
			break
		}
	}
	if first < 0 {
		return batch, nil
	}
	numbers = make([]telemetry.Reading, 0, len(batch))
	numbers = append(numbers, batch[:first]...)
	for i := first; i < len(batch); i++ {
		if batch[i].IsState() {
			states = append(states, batch[i])
		} else {
			numbers = append(numbers, batch[i])
		}
	}
	return numbers, states
}

var stateColumns = []string{"time", "device", "metric", "sensor", "value", "kind"}

// stateSource feeds states to COPY.
type stateSource struct {
	rows []telemetry.Reading
	i    int
	vals [6]any
}

func (s *stateSource) Next() bool { s.i++; return s.i < len(s.rows) }
func (s *stateSource) Err() error { return nil }
func (s *stateSource) Values() ([]any, error) {
	r := &s.rows[s.i]
	s.vals[0], s.vals[1], s.vals[2], s.vals[3], s.vals[4], s.vals[5] = r.Time, r.Device, r.Metric, r.Sensor, r.Text, r.Kind.String()
	return s.vals[:], nil
}

// copyOrder is the order a batch's numeric readings are copied in (nil: as the batch came). A batch of many
// series (a gateway's) goes grouped in the order of readings' series index (metric, device, sensor; labels
// compare bytewise, COLLATE "C"), oldest first within a series, so consecutive rows go to the same index leaf:
// index insertion was 40 % of PostgreSQL's CPU for gateway batches (1 000 series in 20 000 readings, arriving
// message by message; perf), and in index order PostgreSQL's CPU per reading fell 15–20 % and the drain rose
// 12–19 % (docs/benchmarks.md). Oldest first rather than the index's time DESC: the rollup trigger sums a
// statement's rows in COPY order, so readings that arrive in time order sum as before, to the last bit. The
// batch itself is not reordered (the other sinks read it at the same time): the order is a stable permutation.
func copyOrder(rows []telemetry.Reading) []int32 {
	if !manySeries(rows) {
		return nil
	}
	return indexOrder(rows)
}

// fewSeries is the number of series up to which a batch is copied as it came: with few series each one's rows
// already meet in few index leaves, and grouping cost the ingester more (about 0.3 µs per reading for 20
// series of one-reading messages) than it saved PostgreSQL (nothing measurable).
const fewSeries = 64

// manySeries reports whether the batch's first rows hold more than fewSeries series (a sample: the distinct
// series of up to 512 rows, counted against a short list).
func manySeries(rows []telemetry.Reading) bool {
	var seen [fewSeries]seriesKey
	n := 0
next:
	for i := range min(len(rows), 512) {
		r := &rows[i]
		k := seriesKey{r.Metric, r.Device, r.Sensor}
		for j := range n {
			if seen[j] == k {
				continue next
			}
		}
		if n == fewSeries {
			return true
		}
		seen[n] = k
		n++
	}
	return false
}

type seriesKey struct{ metric, device, sensor string }

// indexOrder returns the permutation of rows grouped by series in index order, oldest first within a series,
// equal times in arrival order. A counting sort over the batch's series (a map lookup per row, a sort of the
// distinct series), then a time sort only within series whose rows did not arrive in time order: comparison
// sorting the whole batch was a fifth of the ingester's CPU for gateway batches.
func indexOrder(rows []telemetry.Reading) []int32 {
	group := make(map[seriesKey]int32)
	var keys []seriesKey
	of := make([]int32, len(rows)) // row → its series' index in keys
	for i := range rows {
		r := &rows[i]
		k := seriesKey{r.Metric, r.Device, r.Sensor}
		g, ok := group[k]
		if !ok {
			g = int32(len(keys))
			group[k] = g
			keys = append(keys, k)
		}
		of[i] = g
	}
	rank := make([]int32, len(keys)) // series → its place in index order
	byKey := make([]int32, len(keys))
	for g := range byKey {
		byKey[g] = int32(g)
	}
	slices.SortFunc(byKey, func(a, b int32) int {
		x, y := &keys[a], &keys[b]
		if c := strings.Compare(x.metric, y.metric); c != 0 {
			return c
		}
		if c := strings.Compare(x.device, y.device); c != 0 {
			return c
		}
		return strings.Compare(x.sensor, y.sensor)
	})
	start := make([]int32, len(keys)+1) // by rank: where the series' rows begin in order
	for r, g := range byKey {
		rank[g] = int32(r)
	}
	for _, g := range of {
		start[rank[g]+1]++
	}
	for r := 1; r <= len(keys); r++ {
		start[r] += start[r-1]
	}
	order := make([]int32, len(rows))
	next := slices.Clone(start[:len(keys)])
	for i, g := range of {
		r := rank[g]
		order[next[r]] = int32(i)
		next[r]++
	}
	for r := range len(keys) {
		part := order[start[r]:start[r+1]]
		sorted := true
		for k := 1; k < len(part); k++ {
			if rows[part[k]].Time.Before(rows[part[k-1]].Time) {
				sorted = false
				break
			}
		}
		if !sorted {
			slices.SortFunc(part, func(a, b int32) int {
				if c := rows[a].Time.Compare(rows[b].Time); c != 0 {
					return c
				}
				return int(a - b)
			})
		}
	}
	return order
}

// Rollup is one pre-aggregated level of readings: a table (a hypertable on TimescaleDB) with columns bucket,
// device, metric, sensor, count, sum, min, max, last, last_time, kept by the trigger fieldline_rollup on readings
// for every INSERT and COPY in the writing transaction.
type Rollup struct {
	Table string
	Width time.Duration
}

// Rollups lists the levels, finest first. Buckets are date_bin(width, time, '2000-01-03') (= time_bucket).
var Rollups = []Rollup{
	{Table: "readings_1m", Width: time.Minute},
	{Table: "readings_5m", Width: 5 * time.Minute},
	{Table: "readings_1h", Width: time.Hour},
}

// RollupFor returns the coarsest level whose width divides interval (nil when none does).
func RollupFor(interval time.Duration) *Rollup {
	for i := len(Rollups) - 1; i >= 0; i-- {
		if interval >= Rollups[i].Width && interval%Rollups[i].Width == 0 {
			return &Rollups[i]
		}
	}
	return nil
}

// SetNotifyTrigger creates (on) or drops (off) the optional trigger that NOTIFYs for rows written by other
// writers. Plain PostgreSQL gets a statement-level trigger with a transition table (one NOTIFY per statement);
// TimescaleDB gets a row-level trigger, which works on every hypertable version (statement-level triggers with
// transition tables need TimescaleDB 2.18+).
func SetNotifyTrigger(ctx context.Context, pool *pgxpool.Pool, info SchemaInfo, on bool) error {
	var sql string
	switch {
	case !on:
		sql = `DROP TRIGGER IF EXISTS fieldline_notify ON readings`
	case info.Variant == Timescale:
		sql = `DROP TRIGGER IF EXISTS fieldline_notify ON readings;
CREATE TRIGGER fieldline_notify AFTER INSERT ON readings FOR EACH ROW EXECUTE FUNCTION fieldline_notify_row()`
	default:
		sql = `DROP TRIGGER IF EXISTS fieldline_notify ON readings;
CREATE TRIGGER fieldline_notify AFTER INSERT ON readings REFERENCING NEW TABLE AS fieldline_new_rows
FOR EACH STATEMENT EXECUTE FUNCTION fieldline_notify_statement()`
	}
	if _, err := pool.Exec(ctx, sql); err != nil {
		return fmt.Errorf("set notify trigger (%v): %w", on, err)
	}
	return nil
}
