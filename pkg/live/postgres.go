package live

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"math"
	"slices"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/data"
	"github.com/jackc/pgx/v5"

	"github.com/fieldline-iot/fieldline/internal/retry"
	"github.com/fieldline-iot/fieldline/internal/store"
	"github.com/fieldline-iot/fieldline/internal/telemetry"
	"github.com/fieldline-iot/fieldline/internal/timebucket"
	"github.com/fieldline-iot/fieldline/pkg/frames"
	"github.com/fieldline-iot/fieldline/pkg/live/pacer"
	"github.com/fieldline-iot/fieldline/pkg/sqlquery"
)

// pgItem is what the listener hands a postgres stream.
type pgItem struct {
	kind      uint8
	reconnect bool
	r         telemetry.Reading
	from, to  time.Time // itemReadBack
}

const (
	itemRow uint8 = iota
	itemReadBack
	itemConnected
	itemTick // aggregated streams: time to emit buckets that have closed
)

// rowKey identifies a row for the dedupe set: its time and a 64-bit hash of (device, metric, sensor, time,
// value bits). A set of these holds no pointers, so the garbage collector does not scan it (a minute at
// 1 000 rows/s is 60 000 keys). Two different rows share a key with probability ~n/2⁶⁴ per row (n keys held):
// the second would be taken for a duplicate and not shown.
type rowKey struct {
	us   int64
	hash uint64
}

func keyOf(seed maphash.Seed, r *telemetry.Reading) rowKey {
	var h maphash.Hash
	h.SetSeed(seed)
	h.WriteString(r.Device)
	h.WriteByte(0)
	h.WriteString(r.Metric)
	h.WriteByte(0)
	h.WriteString(r.Sensor)
	us := r.Time.UnixMicro()
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], uint64(us))
	if r.IsState() {
		h.Write(b[:8])
		h.WriteString(r.Text) // a state's text is its value (a bool's Value is not kept by the read-back)
	} else {
		binary.LittleEndian.PutUint64(b[8:], math.Float64bits(r.Value))
		h.Write(b[:])
	}
	return rowKey{us, h.Sum64()}
}

// pgStream is one postgres channel's stream. Its handler side (Connected, Notify) runs on the listener's
// goroutine and only pushes into the pacer; everything else runs on RunStream's goroutine.
type pgStream struct {
	e        *Engine
	sel      *Selector
	devices  map[string]bool        // nil: all
	sensors  map[string]bool        // nil: all
	exclude  map[[2]string]struct{} // (device, sensor) carried by other channels of the query; nil: none
	pace     *pacer.Pacer[pgItem]
	valueFld string

	// stream goroutine only
	started    bool
	lastSeen   time.Time // newest row time sent
	lastEvent  time.Time // wall time of the last listener event handled
	seed       maphash.Seed
	sent       map[rowKey]struct{}
	sentOrder  []rowKey // the keys of sent in the order they were added, from sentHead on (for pruning)
	sentHead   int
	rows       []telemetry.Reading
	notice     string
	labelCache map[[2]string]string

	// aggregated streams (sel.Agg != ""): open buckets per series, and per series the newest bucket sent
	agg     sqlquery.Aggregation
	buckets map[bucketKey]*sqlquery.Acc
	emitted map[[2]string]time.Time
	late    int64
}

type bucketKey struct {
	device, sensor string
	start          int64 // unix µs
}

// aggregate moves the new raw rows into their buckets and replaces s.rows with the buckets that have closed:
// bucket end + δ (late rows) is past. A row for a bucket already sent, or before the seam (in the history), is
// counted as late and not shown.
func (s *pgStream) aggregate(now time.Time) {
	iv := s.sel.Interval
	for i := range s.rows {
		r := &s.rows[i]
		start := timebucket.Floor(r.Time, iv)
		last, sent := s.emitted[[2]string{r.Device, r.Sensor}]
		if start.Before(s.sel.Seam) || (sent && !start.After(last)) {
			s.late++ // its bucket is in the history or was sent already
			continue
		}
		k := bucketKey{r.Device, r.Sensor, start.UnixMicro()}
		a := s.buckets[k]
		if a == nil {
			a = &sqlquery.Acc{}
			s.buckets[k] = a
		}
		a.Add(r.Time, r.Value)
	}
	s.rows = s.rows[:0]
	closed := now.Add(-s.e.settings.SeamDelay)
	for k, a := range s.buckets {
		start := time.UnixMicro(k.start).UTC()
		if start.Add(iv).After(closed) {
			continue
		}
		s.rows = append(s.rows, telemetry.Reading{Time: start, Device: k.device, Metric: s.sel.Metric, Sensor: k.sensor, Value: a.Value(s.agg)})
		if series := [2]string{k.device, k.sensor}; start.After(s.emitted[series]) {
			s.emitted[series] = start
		}
		delete(s.buckets, k)
	}
}

func newPGStream(e *Engine, sel *Selector) *pgStream {
	s := &pgStream{e: e, sel: sel, pace: pacer.New[pgItem](e.settings.FrameInterval, e.settings.MaxBufferedRows),
		seed: maphash.MakeSeed(), sent: map[rowKey]struct{}{}, valueFld: sel.Metric}
	if sel.Agg != "" {
		s.agg, _ = sqlquery.ParseAggregation(sel.Agg) // validated when the path was parsed
		s.buckets = map[bucketKey]*sqlquery.Acc{}
		s.emitted = map[[2]string]time.Time{}
	}
	if sel.Devices != nil {
		s.devices = setOf(sel.Devices)
	}
	if sel.Sensors != nil {
		s.sensors = setOf(sel.Sensors)
	}
	if sel.ExcludeDevices != nil {
		s.exclude = make(map[[2]string]struct{}, len(sel.ExcludeDevices))
		for i := range sel.ExcludeDevices {
			s.exclude[[2]string{sel.ExcludeDevices[i], sel.ExcludeSensors[i]}] = struct{}{}
		}
	}
	return s
}

func setOf(l []string) map[string]bool {
	m := make(map[string]bool, len(l))
	for _, v := range l {
		m[v] = true
	}
	return m
}

func (s *pgStream) matches(r *telemetry.Reading) bool {
	if r.Metric != s.sel.Metric || (s.devices != nil && !s.devices[r.Device]) || (s.sensors != nil && !s.sensors[r.Sensor]) {
		return false
	}
	if s.exclude != nil {
		_, known := s.exclude[[2]string{r.Device, r.Sensor}]
		return !known
	}
	return true
}

// Connected implements pglisten.Handler.
func (s *pgStream) Connected(reconnect bool) {
	s.pace.Push(pgItem{kind: itemConnected, reconnect: reconnect})
}

// Notify implements pglisten.Handler: the notifications of one read go into the pacer together.
func (s *pgStream) Notify(ns []store.Notification) {
	var items []pgItem
	for _, n := range ns {
		if !n.HasRows() {
			items = append(items, pgItem{kind: itemReadBack, from: n.From, to: n.To})
			continue
		}
		for i := range n.Rows {
			if s.matches(&n.Rows[i]) {
				if items == nil {
					rows := 0
					for j := range ns {
						rows += max(1, len(ns[j].Rows))
					}
					items = make([]pgItem, 0, rows) // sized once, on the first match
				}
				items = append(items, pgItem{kind: itemRow, r: n.Rows[i]})
			}
		}
	}
	s.pace.Push(items...)
}

func (e *Engine) runPostgresStream(ctx context.Context, sel *Selector, sender *backend.StreamSender) error {
	s := newPGStream(e, sel)
	unsubscribe := e.pgListener(sel.States).Subscribe(s)
	defer unsubscribe()
	if sel.Agg != "" {
		// Buckets close with time, not only when rows arrive: wake the stream a few times per bucket.
		every := min(max(sel.Interval/4, 100*time.Millisecond), time.Second)
		go func() {
			t := time.NewTicker(every)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					s.pace.Push(pgItem{kind: itemTick})
				}
			}
		}()
	}
	return s.pace.Run(ctx, func(items []pgItem, dropped int) error { return s.flush(ctx, items, dropped, sender) })
}

// flush turns one paced batch into one frame.
func (s *pgStream) flush(ctx context.Context, items []pgItem, dropped int, sender *backend.StreamSender) error {
	s.rows = s.rows[:0]
	now := time.Now()
	for i := range items {
		it := &items[i]
		switch it.kind {
		case itemRow:
			s.add(&it.r)
		case itemReadBack:
			if err := s.readBack(ctx, it.from, it.to); err != nil {
				return err
			}
		case itemConnected:
			from := s.sel.Seam
			if s.started {
				// Notifications sent while the listener was down are lost: read back from the newest row
				// sent, and from δ before the last event seen (rows that committed late during the outage).
				from = s.lastSeen
				if t := s.lastEvent.Add(-s.e.settings.SeamDelay); from.IsZero() || t.Before(from) {
					from = t
				}
				if from.Before(s.sel.Seam) {
					from = s.sel.Seam
				}
			}
			s.started = true
			if err := s.readBack(ctx, from, time.Time{}); err != nil {
				return err
			}
		}
	}
	if s.sel.Agg != "" {
		s.aggregate(now)
	}
	s.lastEvent = now
	if dropped > 0 {
		s.e.dropped.Add(int64(dropped))
		s.notice = fmt.Sprintf("Live: %d rows were dropped because they arrived faster than the stream could send them", dropped)
		backend.Logger.Warn("Live stream buffer full: rows dropped", "metric", s.sel.Metric, "dropped", dropped)
	}
	if len(s.rows) == 0 && s.notice == "" {
		return nil
	}
	slices.SortStableFunc(s.rows, func(a, b telemetry.Reading) int { return a.Time.Compare(b.Time) })
	if n := len(s.rows); n > 0 && s.rows[n-1].Time.After(s.lastSeen) {
		s.lastSeen = s.rows[n-1].Time
	}
	s.prune()
	if err := sender.SendFrame(s.frame(), data.IncludeAll); err != nil {
		return err
	}
	s.e.frames.Add(1)
	s.e.rows.Add(int64(len(s.rows)))
	s.notice = ""
	return nil
}

// add keeps r unless it was sent already.
func (s *pgStream) add(r *telemetry.Reading) {
	k := keyOf(s.seed, r)
	if _, dup := s.sent[k]; dup {
		return
	}
	s.sent[k] = struct{}{}
	s.sentOrder = append(s.sentOrder, k)
	s.rows = append(s.rows, *r)
}

// prune bounds the dedupe set: keys more than a minute (or 2δ) older than the newest row cannot meet their
// duplicate any more in practice (duplicates come from the read-back overlapping notifications in flight).
// Keys leave in the order they came (rows arrive nearly in time order; a late row's key just stays a little
// longer), so a frame's pruning costs what it removes, not the size of the set; beyond 4 × MaxBufferedRows
// keys (a flood) the oldest go whatever their time: a duplicate is better than unbounded memory.
func (s *pgStream) prune() {
	limit := 4 * s.e.settings.MaxBufferedRows
	keep := max(time.Minute, 2*s.e.settings.SeamDelay)
	cut := s.lastSeen.Add(-keep).UnixMicro()
	for s.sentHead < len(s.sentOrder) && (s.sentOrder[s.sentHead].us < cut || len(s.sent) > limit) {
		delete(s.sent, s.sentOrder[s.sentHead])
		s.sentHead++
	}
	if s.sentHead > 0 && s.sentHead >= len(s.sentOrder)/2 {
		n := copy(s.sentOrder, s.sentOrder[s.sentHead:])
		s.sentOrder, s.sentHead = s.sentOrder[:n], 0
	}
}

// readBack reads the selector's rows with from ≤ time (≤ to when to is set), newest MaxBufferedRows.
func (s *pgStream) readBack(ctx context.Context, from, to time.Time) error {
	limit := s.e.settings.MaxBufferedRows
	sql, args, ok := sqlquery.ReadBackSQL(sqlquery.ReadBack{
		Metric: s.sel.Metric, From: from, To: to, Devices: s.sel.Devices, Sensors: s.sel.Sensors,
		ExcludeDevices: s.sel.ExcludeDevices, ExcludeSensors: s.sel.ExcludeSensors, Limit: limit, Table: s.e.cfg.Table,
		States: s.sel.States,
	})
	if !ok {
		return nil // an empty list selects nothing
	}
	var got []telemetry.Reading
	query := func() error {
		got = got[:0]
		return s.e.cfg.Postgres.ReadOnly(ctx, func(tx pgx.Tx) error {
			rows, err := tx.Query(ctx, sql, args...)
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				r := telemetry.Reading{Metric: s.sel.Metric}
				if s.sel.States {
					r.Kind = telemetry.KindText // the stream shows every state as text
					if err := rows.Scan(&r.Time, &r.Device, &r.Sensor, &r.Text); err != nil {
						return err
					}
				} else if err := rows.Scan(&r.Time, &r.Device, &r.Sensor, &r.Value); err != nil {
					return err
				}
				r.Time = r.Time.UTC()
				got = append(got, r)
			}
			return rows.Err()
		})
	}
	// The database may be restarting (the pool then holds dead connections): retry with backoff. Only this
	// stream waits; its buffer keeps what the listener pushes meanwhile.
	for delay := retry.New(50*time.Millisecond, 2*time.Second); ; {
		err := query()
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		backoff := delay.Next()
		backend.Logger.Warn("Live read-back failed; retrying", "metric", s.sel.Metric, "error", s.e.redact(err.Error()), "backoff", backoff)
		if !retry.Wait(ctx, backoff) {
			return ctx.Err()
		}
	}
	if len(got) > limit {
		got = got[:limit]
		s.notice = fmt.Sprintf("Live: read-back limited to the newest %d rows", limit)
	}
	for i := len(got) - 1; i >= 0; i-- {
		s.add(&got[i])
	}
	return nil
}

// labels renders a series' labels once (cached per stream, bounded).
func (s *pgStream) labels(device, sensor string) string {
	k := [2]string{device, sensor}
	if l, ok := s.labelCache[k]; ok {
		return l
	}
	if s.labelCache == nil || len(s.labelCache) >= 10_000 {
		s.labelCache = map[[2]string]string{}
	}
	l := frames.PromLabels("device", device, "sensor", sensor)
	s.labelCache[k] = l
	return l
}

// frame builds the frame for s.rows: wide (time, value) with the series' labels for a one-series channel,
// labels push mode otherwise.
func (s *pgStream) frame() *data.Frame {
	if s.sel.States {
		return frameOf(s, func(r *telemetry.Reading) string { return r.Text })
	}
	return frameOf(s, func(r *telemetry.Reading) float64 { return r.Value })
}

func frameOf[V float64 | string](s *pgStream, value func(*telemetry.Reading) V) *data.Frame {
	n := len(s.rows)
	times := make([]time.Time, n)
	values := make([]V, n)
	for i := range s.rows {
		times[i] = s.rows[i].Time
		values[i] = value(&s.rows[i])
	}
	var f *data.Frame
	if s.sel.Series {
		device, sensor := s.sel.Devices[0], s.sel.Sensors[0]
		vf := data.NewField(s.valueFld, frames.SeriesLabels(device, sensor), values)
		vf.Config = &data.FieldConfig{DisplayNameFromDS: frames.DisplayName(s.sel.Metric, device, sensor)}
		f = data.NewFrame(s.sel.Metric, data.NewField(data.TimeSeriesTimeFieldName, nil, times), vf)
	} else {
		labels := make([]string, n)
		for i := range s.rows {
			labels[i] = s.labels(s.rows[i].Device, s.rows[i].Sensor)
		}
		f = frames.LabelsPush("", s.valueFld, labels, times, values)
		f.Name = s.sel.Metric
	}
	if s.notice != "" {
		f.AppendNotices(data.Notice{Severity: data.NoticeSeverityWarning, Text: s.notice})
	}
	return f
}
