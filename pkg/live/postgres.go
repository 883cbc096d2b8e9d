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

// pgStream is the source of a group of postgres channels (share.go): one selector's rows, sent to every
// member. Its handler side (Connected, Notify) runs on the listener's goroutine and only pushes into the feed;
// everything else runs on the group's goroutine.
type pgStream struct {
	e        *Engine
	sel      *Selector              // the group's selector; Seam is the sole member's (aggregated streams: the stream's own)
	devices  map[string]bool        // nil: all
	sensors  map[string]bool        // nil: all
	exclude  map[[2]string]struct{} // (device, sensor) carried by other channels of the query; nil: none
	feed     *feed[pgItem]
	valueFld string

	// group goroutine only
	active     []*member // members that joined: the group's frames go to them
	pending    []*member // members that joined before the LISTEN was active
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
	plain      []*member           // emit's scratch: the members that get the shared frame
	own        []telemetry.Reading // emit's scratch: a member's own rows
	keys       []rowKey            // emit's scratch: the keys of s.rows

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
	s := &pgStream{e: e, sel: sel, feed: newFeed[pgItem](e.settings),
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
	s.feed.push(pgItem{kind: itemConnected, reconnect: reconnect})
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
	s.feed.push(items...)
}

// join implements groupSource: the member's join is marked in the feed (joinMember handles it).
func (s *pgStream) join(m *member) { s.feed.join(m, nil) }

func (s *pgStream) close() {}

// run implements groupSource.
func (s *pgStream) run(ctx context.Context) error {
	unsubscribe := s.e.pgListener(s.sel.States).Subscribe(s)
	defer unsubscribe()
	if s.sel.Agg != "" {
		// Buckets close with time, not only when rows arrive: wake the stream a few times per bucket.
		every := min(max(s.sel.Interval/4, 100*time.Millisecond), time.Second)
		go func() {
			t := time.NewTicker(every)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					s.feed.push(pgItem{kind: itemTick})
				}
			}
		}()
	}
	return s.feed.run(ctx,
		func(items []pgItem, dropped int) error { return s.flush(ctx, items, dropped) },
		func(j joinMark) error { return s.joinMember(ctx, j.m) })
}

// flush turns one paced segment into one frame for the members.
func (s *pgStream) flush(ctx context.Context, items []pgItem, dropped int) error {
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
			if !s.started {
				s.started = true
				pending := s.pending
				s.pending = nil
				for _, m := range pending {
					if err := s.joinMember(ctx, m); err != nil {
						return err
					}
				}
				continue
			}
			// Notifications sent while the listener was down are lost: read back from the newest row sent,
			// and from δ before the last event seen (rows that committed late during the outage), never before
			// the earliest seam of a member.
			from := s.lastSeen
			if t := s.lastEvent.Add(-s.e.settings.SeamDelay); from.IsZero() || t.Before(from) {
				from = t
			}
			if seam := s.earliestSeam(); from.Before(seam) {
				from = seam
			}
			if err := s.readBack(ctx, from, time.Time{}); err != nil {
				return err
			}
		}
	}
	s.lastEvent = now
	if dropped > 0 {
		s.e.dropped.Add(int64(dropped))
		s.notice = fmt.Sprintf("Live: %d rows were dropped because they arrived faster than the stream could send them", dropped)
		backend.Logger.Warn("Live stream buffer full: rows dropped", "metric", s.sel.Metric, "dropped", dropped)
	}
	return s.emit(now)
}

// earliestSeam is the earliest seam of the members.
func (s *pgStream) earliestSeam() time.Time {
	seam := s.sel.Seam
	for _, m := range s.active {
		if m.seam.Before(seam) {
			seam = m.seam
		}
	}
	return seam
}

// emit sends the rows gathered (s.rows; aggregated streams: the buckets that have closed) to the members, and
// empties s.rows: one encoding for all, and a frame of its own for a member whose join frame already had some
// of them.
func (s *pgStream) emit(now time.Time) error {
	if s.sel.Agg != "" {
		s.aggregate(now)
	}
	if len(s.rows) == 0 && s.notice == "" {
		return nil
	}
	defer func() { s.rows, s.notice = s.rows[:0], "" }()
	slices.SortStableFunc(s.rows, func(a, b telemetry.Reading) int { return a.Time.Compare(b.Time) })
	if n := len(s.rows); n > 0 && s.rows[n-1].Time.After(s.lastSeen) {
		s.lastSeen = s.rows[n-1].Time
	}
	s.prune()
	s.active = slices.DeleteFunc(s.active, (*member).gone)
	plain := s.plain[:0]
	keys := s.keys[:0] // the rows' keys, made once for every member that needs them
	cut := s.lastSeen.Add(-s.keep()).UnixMicro()
	for _, m := range s.active {
		if m.joinKeys != nil && m.joinNewest < cut {
			m.joinKeys = nil // the group's stream is past every row of its join frame
		}
		if m.joinKeys == nil {
			plain = append(plain, m)
			continue
		}
		if len(keys) == 0 {
			for i := range s.rows {
				keys = append(keys, keyOf(s.seed, &s.rows[i]))
			}
		}
		own := s.own[:0]
		for i := range s.rows {
			if _, had := m.joinKeys[keys[i]]; !had {
				own = append(own, s.rows[i])
			}
		}
		s.own = own
		if len(own) == len(s.rows) {
			plain = append(plain, m)
			continue
		}
		if len(own) > 0 || s.notice != "" {
			if err := s.e.sendTo(m, s.frameFor(own, s.notice), len(own)); err != nil {
				return err
			}
		}
	}
	s.plain, s.keys = plain, keys
	err := s.e.broadcast(plain, s.frameFor(s.rows, s.notice), len(s.rows))
	clear(plain)
	return err
}

// keep is how long a row's key stays in the dedupe sets after the newest row.
func (s *pgStream) keep() time.Duration { return max(time.Minute, 2*s.e.settings.SeamDelay) }

// joinMember is m's join, at its place in the feed. The first member of the group (or the first after every
// other left) makes the group's stream its own, as a stream of its own would be: its rows from its seam on are
// read back into the group's flow. A member joining a running group gets its rows from its seam on in a frame
// of its own, and skips them in the group's later frames (notifications in flight, read-backs).
func (s *pgStream) joinMember(ctx context.Context, m *member) error {
	if !s.started {
		s.pending = append(s.pending, m) // the read-back waits for the LISTEN
		return nil
	}
	s.active = slices.DeleteFunc(s.active, (*member).gone)
	if len(s.active) == 0 {
		// What the group gathered so far was nobody's: start over from this member's seam.
		s.rows, s.notice = s.rows[:0], ""
		clear(s.sent)
		s.sentOrder, s.sentHead, s.lastSeen = s.sentOrder[:0], 0, time.Time{}
		if s.sel.Agg == "" {
			s.sel.Seam = m.seam
		}
		s.active = append(s.active, m)
		if err := s.readBack(ctx, s.sel.Seam, time.Time{}); err != nil {
			return err
		}
		return s.emit(time.Now())
	}
	// Rows gathered before the join go to the members before it.
	if err := s.emit(time.Now()); err != nil {
		return err
	}
	got, limited, err := s.read(ctx, m.seam, time.Time{})
	if err != nil {
		return err
	}
	slices.Reverse(got) // oldest first
	notice := ""
	if limited {
		notice = fmt.Sprintf("Live: read-back limited to the newest %d rows", s.e.settings.MaxBufferedRows)
	}
	for i := range got {
		k := keyOf(s.seed, &got[i])
		if _, sent := s.sent[k]; sent {
			continue // the group sent it before this member joined: it will not come again
		}
		if m.joinKeys == nil {
			m.joinKeys = map[rowKey]struct{}{}
		}
		m.joinKeys[k] = struct{}{}
		m.joinNewest = max(m.joinNewest, k.us)
	}
	if len(got) > 0 || notice != "" {
		if err := s.e.sendTo(m, s.frameFor(got, notice), len(got)); err != nil {
			return err
		}
	}
	s.active = append(s.active, m)
	return nil
}

// noticeFrame is an empty frame of the stream's schema carrying a notice.
func (s *pgStream) noticeFrame(text string) *data.Frame { return s.frameFor(nil, text) }

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
	cut := s.lastSeen.Add(-s.keep()).UnixMicro()
	for s.sentHead < len(s.sentOrder) && (s.sentOrder[s.sentHead].us < cut || len(s.sent) > limit) {
		delete(s.sent, s.sentOrder[s.sentHead])
		s.sentHead++
	}
	if s.sentHead > 0 && s.sentHead >= len(s.sentOrder)/2 {
		n := copy(s.sentOrder, s.sentOrder[s.sentHead:])
		s.sentOrder, s.sentHead = s.sentOrder[:n], 0
	}
}

// readBack reads the selector's rows with from ≤ time (≤ to when to is set), newest MaxBufferedRows, into the
// group's flow (rows already sent are skipped).
func (s *pgStream) readBack(ctx context.Context, from, to time.Time) error {
	got, limited, err := s.read(ctx, from, to)
	if err != nil {
		return err
	}
	if limited {
		s.notice = fmt.Sprintf("Live: read-back limited to the newest %d rows", s.e.settings.MaxBufferedRows)
	}
	for i := len(got) - 1; i >= 0; i-- {
		s.add(&got[i])
	}
	return nil
}

// read reads the selector's rows with from ≤ time (≤ to when to is set), newest first, at most
// MaxBufferedRows (limited: there were more).
func (s *pgStream) read(ctx context.Context, from, to time.Time) (got []telemetry.Reading, limited bool, err error) {
	limit := s.e.settings.MaxBufferedRows
	sql, args, ok := sqlquery.ReadBackSQL(sqlquery.ReadBack{
		Metric: s.sel.Metric, From: from, To: to, Devices: s.sel.Devices, Sensors: s.sel.Sensors,
		ExcludeDevices: s.sel.ExcludeDevices, ExcludeSensors: s.sel.ExcludeSensors, Limit: limit, Table: s.e.cfg.Table,
		States: s.sel.States,
	})
	if !ok {
		return nil, false, nil // an empty list selects nothing
	}
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
			return nil, false, ctx.Err()
		}
		backoff := delay.Next()
		backend.Logger.Warn("Live read-back failed; retrying", "metric", s.sel.Metric, "error", s.e.redact(err.Error()), "backoff", backoff)
		if !retry.Wait(ctx, backoff) {
			return nil, false, ctx.Err()
		}
	}
	if len(got) > limit {
		return got[:limit], true, nil
	}
	return got, false, nil
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

// frameFor builds the frame for rows: wide (time, value) with the series' labels for a one-series channel,
// labels push mode otherwise.
func (s *pgStream) frameFor(rows []telemetry.Reading, notice string) *data.Frame {
	if s.sel.States {
		return frameOf(s, rows, notice, func(r *telemetry.Reading) string { return r.Text })
	}
	return frameOf(s, rows, notice, func(r *telemetry.Reading) float64 { return r.Value })
}

func frameOf[V float64 | string](s *pgStream, rows []telemetry.Reading, notice string, value func(*telemetry.Reading) V) *data.Frame {
	n := len(rows)
	times := make([]time.Time, n)
	values := make([]V, n)
	for i := range rows {
		times[i] = rows[i].Time
		values[i] = value(&rows[i])
	}
	var f *data.Frame
	if s.sel.Series {
		device, sensor := s.sel.Devices[0], s.sel.Sensors[0]
		vf := data.NewField(s.valueFld, frames.SeriesLabels(device, sensor), values)
		vf.Config = &data.FieldConfig{DisplayNameFromDS: frames.DisplayName(s.sel.Metric, device, sensor)}
		f = data.NewFrame(s.sel.Metric, data.NewField(data.TimeSeriesTimeFieldName, nil, times), vf)
	} else {
		labels := make([]string, n)
		for i := range rows {
			labels[i] = s.labels(rows[i].Device, rows[i].Sensor)
		}
		f = frames.LabelsPush("", s.valueFld, labels, times, values)
		f.Name = s.sel.Metric
	}
	if notice != "" {
		f.AppendNotices(data.Notice{Severity: data.NoticeSeverityWarning, Text: notice})
	}
	return f
}
