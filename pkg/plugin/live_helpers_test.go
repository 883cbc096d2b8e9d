package plugin

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/data"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fieldline-iot/fieldline/internal/store"
	"github.com/fieldline-iot/fieldline/internal/telemetry"
	"github.com/fieldline-iot/fieldline/internal/testsvc"
	"github.com/fieldline-iot/fieldline/pkg/frames"
)

// liveRow is one row seen on screen: series labels, time (µs) and value.
type liveRow struct {
	series string
	us     int64
	v      float64
	s      string // a state's text (string value fields)
}

func (r liveRow) String() string {
	if r.s != "" {
		return fmt.Sprintf("%s@%d=%q", r.series, r.us, r.s)
	}
	return fmt.Sprintf("%s@%d=%v", r.series, r.us, r.v)
}

// cell reads a value cell: a number, or a string value's text.
func cell(f *data.Field, i int) (float64, string) {
	if s, ok := f.At(i).(string); ok {
		return 0, s
	}
	v, _ := f.FloatAt(i)
	return v, ""
}

// frameSink is a StreamPacketSender that decodes and keeps every frame a stream sends.
type frameSink struct {
	mu     sync.Mutex
	result []*data.Frame
	sentAt []time.Time
	wake   chan struct{}
}

func newFrameSink() *frameSink { return &frameSink{wake: make(chan struct{}, 1)} }

func (s *frameSink) Send(p *backend.StreamPacket) error {
	var f data.Frame
	if err := json.Unmarshal(p.Data, &f); err != nil {
		return err
	}
	s.mu.Lock()
	s.result = append(s.result, &f)
	s.sentAt = append(s.sentAt, time.Now())
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return nil
}

// rows flattens the frames (wide or labels push mode) into rows.
func (s *frameSink) rows() []liveRow {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []liveRow
	for _, f := range s.result {
		out = append(out, frameRows(f)...)
	}
	return out
}

func frameRows(f *data.Frame) []liveRow {
	var out []liveRow
	if len(f.Fields) == 3 && f.Fields[0].Name == "labels" {
		for i := 0; i < f.Rows(); i++ {
			v, s := cell(f.Fields[2], i)
			out = append(out, liveRow{f.Fields[0].At(i).(string), f.Fields[1].At(i).(time.Time).UnixMicro(), v, s})
		}
		return out
	}
	if len(f.Fields) < 2 || f.Fields[0].Type() != data.FieldTypeTime {
		return nil
	}
	// A series frame (time, value) or a time-series-wide frame (time, a value field per series).
	for _, vf := range f.Fields[1:] {
		key := labelsKey(vf.Labels)
		for i := 0; i < f.Rows(); i++ {
			v, s := cell(vf, i)
			out = append(out, liveRow{key, f.Fields[0].At(i).(time.Time).UnixMicro(), v, s})
		}
	}
	return out
}

// waitRows waits until cond holds for the sink's rows.
func (s *frameSink) waitRows(t testing.TB, what string, timeout time.Duration, cond func([]liveRow) bool) []liveRow {
	t.Helper()
	deadline := time.After(timeout)
	for {
		rows := s.rows()
		if cond(rows) {
			return rows
		}
		select {
		case <-s.wake:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatalf("%s: timed out; %d rows: %v", what, len(rows), truncRows(rows))
		}
	}
}

func truncRows(rows []liveRow) string {
	var b strings.Builder
	for i, r := range rows {
		if i == 40 {
			fmt.Fprintf(&b, " … (%d more)", len(rows)-40)
			break
		}
		b.WriteString(r.String() + " ")
	}
	return b.String()
}

// runStream starts RunStream for a channel the way Grafana does (SubscribeStream first) and stops it at
// cleanup; the returned cancel ends it early (the last subscriber leaving).
func runStream(t testing.TB, d *Datasource, channel string) (*frameSink, context.CancelFunc) {
	t.Helper()
	path := pathOf(t, d, channel)
	pc := backend.PluginContext{DataSourceInstanceSettings: &backend.DataSourceInstanceSettings{UID: d.uid}}
	sr, err := d.SubscribeStream(context.Background(), &backend.SubscribeStreamRequest{PluginContext: pc, Path: path})
	if err != nil || sr.Status != backend.SubscribeStreamStatusOK {
		t.Fatalf("SubscribeStream %s: %v %v", path, sr, err)
	}
	sink := newFrameSink()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- d.RunStream(ctx, &backend.RunStreamRequest{PluginContext: pc, Path: path}, backend.NewStreamSender(sink))
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("RunStream %s: %v", path, err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("RunStream %s did not stop", path)
		}
	})
	return sink, cancel
}

func pathOf(t testing.TB, d *Datasource, channel string) string {
	t.Helper()
	prefix := "ds/" + d.uid + "/"
	if !strings.HasPrefix(channel, prefix) || len(channel) > 160 {
		t.Fatalf("channel %q: want prefix %s and at most 160 characters", channel, prefix)
	}
	return strings.TrimPrefix(channel, prefix)
}

// liveDB is a fresh database with the schema, a notifying writer and the settings of a plugin instance.
type liveDB struct {
	url  string
	pool *pgxpool.Pool
	w    *store.Writer
}

func newLiveDB(t testing.TB) *liveDB {
	t.Helper()
	dbURL := testsvc.NewPostgresDB(t)
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	info, err := store.Migrate(ctx, pool, store.TimescaleAuto)
	if err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return &liveDB{url: dbURL, pool: pool, w: store.NewWriter(pool, info, true)}
}

func (db *liveDB) write(t testing.TB, rows ...telemetry.Reading) {
	t.Helper()
	if err := db.w.Write(context.Background(), rows); err != nil {
		t.Fatalf("write: %v", err)
	}
}

// historyRows flattens QueryData frames into rows and returns the channels of the frames.
func historyRows(t testing.TB, r backend.DataResponse) ([]liveRow, []string) {
	t.Helper()
	if r.Error != nil {
		t.Fatalf("QueryData: %v", r.Error)
	}
	var rows []liveRow
	var channels []string
	for _, f := range r.Frames {
		rows = append(rows, frameRows(f)...)
		if f.Meta == nil || f.Meta.Channel == "" {
			t.Fatalf("frame %q has no channel", f.Name)
		}
		channels = append(channels, f.Meta.Channel)
	}
	return rows, channels
}

// countBy counts rows per (series, time, value).
func countBy(rows []liveRow) map[liveRow]int {
	m := map[liveRow]int{}
	for _, r := range rows {
		m[r]++
	}
	return m
}

func reading(device, sensor string, t time.Time, v float64) telemetry.Reading {
	return telemetry.Reading{Time: t.UTC().Truncate(time.Microsecond), Device: device, Metric: "temperature", Sensor: sensor, Value: v}
}

func rowOf(r telemetry.Reading) liveRow {
	if r.IsState() {
		return liveRow{labelsKey(frames.SeriesLabels(r.Device, r.Sensor)), r.Time.UnixMicro(), 0, r.Text}
	}
	return liveRow{labelsKey(frames.SeriesLabels(r.Device, r.Sensor)), r.Time.UnixMicro(), r.Value, ""}
}

var _ = math.Abs
