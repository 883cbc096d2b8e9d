package plugin

import (
	"context"
	"encoding/base64"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/data"
	sdklive "github.com/grafana/grafana-plugin-sdk-go/live"

	"github.com/fieldline-iot/fieldline/internal/store"
	"github.com/fieldline-iot/fieldline/internal/telemetry"
	"github.com/fieldline-iot/fieldline/internal/timebucket"
	"github.com/fieldline-iot/fieldline/pkg/frames"
	"github.com/fieldline-iot/fieldline/pkg/live"
)

var liveExtra = map[string]any{"liveSeamDelay": "2s", "liveFrameInterval": "50ms"}

func liveQuery(t testing.TB, d *Datasource, refID string, model map[string]any, from, to time.Time) backend.DataResponse {
	t.Helper()
	model["live"] = true
	return runOne(t, d, dq(t, refID, model, from, to, time.Second))
}

// checkExactlyOnce: history + stream rows of each series equal the database's rows, each exactly once.
func checkExactlyOnce(t testing.TB, what string, want []telemetry.Reading, got ...[]liveRow) {
	t.Helper()
	counts := map[liveRow]int{}
	for _, g := range got {
		for r, n := range countBy(g) {
			counts[r] += n
		}
	}
	for _, w := range want {
		r := rowOf(w)
		switch counts[r] {
		case 1:
		case 0:
			t.Errorf("%s: row %v missing", what, r)
		default:
			t.Errorf("%s: row %v shown %d times", what, r, counts[r])
		}
		delete(counts, r)
	}
	for r := range counts {
		t.Errorf("%s: unexpected row %v", what, r)
	}
}

// TestLivePostgres: a live raw query returns history before the seam and one channel per series; the streams
// take over without gap or duplicate (rows written during the handover appear exactly once, late rows too),
// large batches arrive through the watermark read-back, other series and metrics stay out, a second
// subscriber gets its own history then live, and a query without series yet streams new series.
func TestLivePostgres(t *testing.T) {
	db := newLiveDB(t)
	d := newDS(t, settingsFor(t, db.url, nil, liveExtra))
	now := time.Now().UTC()
	var all = map[string][]telemetry.Reading{} // by series key
	put := func(rows ...telemetry.Reading) {
		db.write(t, rows...)
		for _, r := range rows {
			if r.Metric == "temperature" && (r.Device == "pico" || r.Device == "node1") {
				k := rowOf(r).series
				all[k] = append(all[k], r)
			}
		}
	}
	// History: one row per second per series for the last minute (the last δ of it is after the seam).
	var hist []telemetry.Reading
	for i := 60; i >= 1; i-- {
		ts := now.Add(-time.Duration(i) * time.Second)
		hist = append(hist, reading("pico", "dht22", ts, float64(1000+i)), reading("node1", "", ts, float64(2000+i)))
	}
	put(hist...)
	from := now.Add(-time.Hour)

	resp := liveQuery(t, d, "A", map[string]any{"source": "sql", "metric": "temperature", "device": "pico,node1"}, from, now)
	history, channels := historyRows(t, resp)
	// Two series, each on its channel, then the channel of the query's new series (sensors are open).
	if len(channels) != 3 || channels[0] == channels[1] || resp.Frames[2].Fields[0].Name != "labels" {
		t.Fatalf("want 2 series with distinct channels and a labels-mode channel for new series, got %v", channels)
	}
	newSeriesCh := channels[2]
	channels = channels[:2]
	seam := now.Add(-2 * time.Second)
	for _, r := range history {
		if r.us >= seam.UnixMicro() {
			t.Fatalf("history row %v at or after the seam %v", r, seam)
		}
	}
	// Handover: committed after QueryData, before the streams start (its notification reaches no stream).
	handover := reading("pico", "dht22", time.Now(), 3001)
	put(handover)

	sinks := map[string]*frameSink{}
	for _, ch := range channels {
		sel, _, err := d.live.ParsePath(d.uid, pathOf(t, d, ch))
		if err != nil {
			t.Fatal(err)
		}
		sinks[labelsKey(frames.SeriesLabels(sel.Devices[0], sel.Sensors[0]))], _ = runStream(t, d, ch)
	}
	pico, node1 := sinks["device=pico,sensor=dht22"], sinks["device=node1"]
	if pico == nil || node1 == nil {
		t.Fatalf("series: %v", sinks)
	}
	newSeries, _ := runStream(t, d, newSeriesCh)
	pico.waitRows(t, "pico read-back", 10*time.Second, func(r []liveRow) bool { return countBy(r)[rowOf(handover)] > 0 })

	// Live rows, a late row (time before the seam, committed now), other metric/device, a big batch.
	put(reading("pico", "dht22", time.Now(), 3002), reading("node1", "", time.Now(), 4001))
	put(reading("pico", "dht22", seam.Add(-10*time.Second).Add(123*time.Microsecond), 3003))
	put(telemetry.Reading{Time: time.Now().UTC().Truncate(time.Microsecond), Device: "pico", Metric: "humidity", Sensor: "dht22", Value: 55},
		reading("other", "", time.Now(), 9))
	var big []telemetry.Reading
	t0 := time.Now().UTC()
	for i := 0; i < 400; i++ {
		big = append(big, reading("pico", "dht22", t0.Add(time.Duration(i)*time.Millisecond), float64(5000+i)))
	}
	if strings.Contains(store.EncodeNotification(big), "rows") {
		t.Fatal("the big batch should be announced by watermark only")
	}
	put(big...)
	last := reading("node1", "", time.Now(), 4002)
	put(last)

	want := func(k string) int { return len(all[k]) }
	pico.waitRows(t, "pico live", 10*time.Second, func(r []liveRow) bool {
		return len(r)+countSeries(history, "device=pico,sensor=dht22") >= want("device=pico,sensor=dht22")
	})
	node1.waitRows(t, "node1 live", 10*time.Second, func(r []liveRow) bool { return countBy(r)[rowOf(last)] > 0 })
	time.Sleep(300 * time.Millisecond) // anything extra (a duplicate) would arrive by now
	checkExactlyOnce(t, "pico", all["device=pico,sensor=dht22"], filterSeries(history, "device=pico,sensor=dht22"), pico.rows())
	checkExactlyOnce(t, "node1", all["device=node1"], filterSeries(history, "device=node1"), node1.rows())
	if st := d.LiveStats(); st.ListenerConnections != 1 || st.Streams != 3 {
		t.Fatalf("one LISTEN connection for the three streams: %+v", st)
	}

	// A series the history did not have (a new sensor on pico, another device) appears on the new-series
	// channel, in labels push mode, and only there; the query's known series never do.
	put(reading("pico", "bme280", time.Now(), 7001), reading("node2", "", time.Now(), 7002))
	newSeries.waitRows(t, "new series", 10*time.Second, func(r []liveRow) bool { return len(r) >= 1 })
	time.Sleep(300 * time.Millisecond) // node2's row, or a known series' row, would arrive by now
	got := newSeries.rows()
	if len(got) != 1 || got[0].series != `{device="pico", sensor="bme280"}` || got[0].v != 7001 {
		t.Fatalf("new-series channel: %v, want only pico/bme280 (node2 is not among the query's devices)", got)
	}
	for _, s := range []*frameSink{pico, node1} {
		for _, r := range s.rows() {
			if r.v == 7001 || r.v == 7002 {
				t.Fatalf("a known series' channel carried a new series' row %v", r)
			}
		}
	}

	// Pacing: 400 rows in one batch went out in few frames.
	pico.mu.Lock()
	nf := len(pico.result)
	pico.mu.Unlock()
	if nf > 10 {
		t.Errorf("pico: %d frames for a handful of batches", nf)
	}

	// A second subscriber: its own QueryData (history up to its seam) and stream.
	now2 := time.Now().UTC()
	resp2 := liveQuery(t, d, "A", map[string]any{"source": "sql", "metric": "temperature", "device": "pico", "sensor": "dht22"}, from, now2)
	history2, channels2 := historyRows(t, resp2)
	if len(channels2) != 1 || channels2[0] == channels[0] || channels2[0] == channels[1] {
		t.Fatalf("second query: want its own channel, got %v (first %v)", channels2, channels)
	}
	pico2, _ := runStream(t, d, channels2[0])
	after := reading("pico", "dht22", time.Now(), 6001)
	put(after)
	for _, s := range []*frameSink{pico, pico2} {
		s.waitRows(t, "after second subscriber", 10*time.Second, func(r []liveRow) bool { return countBy(r)[rowOf(after)] > 0 })
	}
	time.Sleep(300 * time.Millisecond)
	checkExactlyOnce(t, "pico, second subscriber", all["device=pico,sensor=dht22"], history2, pico2.rows())
	checkExactlyOnce(t, "pico, first subscriber", all["device=pico,sensor=dht22"], filterSeries(history, "device=pico,sensor=dht22"), pico.rows())

	// A query without any series yet: one channel for the selector, labels push mode; series appear.
	resp3 := liveQuery(t, d, "B", map[string]any{"source": "sql", "metric": "temperature", "device": "newdev"}, from, time.Now())
	rows3, channels3 := historyRows(t, resp3)
	if len(channels3) != 1 || len(rows3) != 0 || resp3.Frames[0].Fields[0].Name != "labels" {
		t.Fatalf("empty live query: %d channels, %d rows", len(channels3), len(rows3))
	}
	fresh, _ := runStream(t, d, channels3[0])
	put(reading("newdev", "a", time.Now(), 1), reading("newdev", "b", time.Now(), 2))
	got = fresh.waitRows(t, "new series", 10*time.Second, func(r []liveRow) bool { return len(r) >= 2 })
	if got[0].series != `{device="newdev", sensor="a"}` || got[1].series != `{device="newdev", sensor="b"}` {
		t.Fatalf("labels push mode rows: %v", got)
	}
}

func filterSeries(rows []liveRow, key string) []liveRow {
	var out []liveRow
	for _, r := range rows {
		if r.series == key {
			out = append(out, r)
		}
	}
	return out
}

func countSeries(rows []liveRow, key string) int { return len(filterSeries(rows, key)) }

// TestLiveNotStreamedNotice: live queries that are not streamed (code SQL, table format) say so in a notice
// and carry no channel.
func TestLiveNotStreamedNotice(t *testing.T) {
	db := newLiveDB(t)
	d := newDS(t, settingsFor(t, db.url, nil, liveExtra))
	now := time.Now()
	db.write(t, reading("pico", "dht22", now.Add(-time.Minute), 1))
	for name, m := range map[string]map[string]any{
		"table": {"source": "sql", "metric": "temperature", "aggregation": "avg", "interval": "10s", "format": "table"},
		"code":  {"source": "sql", "mode": "code", "rawSql": "SELECT time, value FROM readings WHERE $__timeFilter(time) ORDER BY time"},
	} {
		r := liveQuery(t, d, "A", m, now.Add(-time.Hour), now)
		if r.Error != nil {
			t.Fatalf("%s: %v", name, r.Error)
		}
		f := r.Frames[0]
		if f.Meta == nil || f.Meta.Channel != "" || len(f.Meta.Notices) == 0 || !strings.Contains(f.Meta.Notices[len(f.Meta.Notices)-1].Text, "history only") {
			t.Fatalf("%s: meta %+v", name, f.Meta)
		}
	}
}

// TestLiveChannelPaths: SubscribeStream admits the paths QueryData makes and rejects malformed, tampered,
// foreign and unknown ones; PublishStream is denied; long selectors go through the registry.
func TestLiveChannelPaths(t *testing.T) {
	d := newDS(t, settingsFor(t, "postgres://u:secret@127.0.0.1:1/db", nil, nil))
	other := newDS(t, func() backend.DataSourceInstanceSettings {
		s := settingsFor(t, "postgres://u:secret@127.0.0.1:1/db", nil, nil)
		s.UID = "another-ds"
		return s
	}())
	sub := func(d *Datasource, uid, path string) backend.SubscribeStreamStatus {
		r, err := d.SubscribeStream(context.Background(), &backend.SubscribeStreamRequest{
			PluginContext: backend.PluginContext{DataSourceInstanceSettings: &backend.DataSourceInstanceSettings{UID: uid}}, Path: path})
		if err != nil {
			t.Fatal(err)
		}
		return r.Status
	}
	sel := &live.Selector{Kind: live.KindPostgres, Seam: time.UnixMilli(1700000000123).UTC(), Nonce: 42, Metric: "temperature", Series: true,
		Devices: []string{"pico"}, Sensors: []string{""}}
	path := mustPath(t, d, sel)
	if _, err := sdklive.ParseChannel(d.live.Channel(path)); err != nil || !strings.HasPrefix(path, "p/") {
		t.Fatalf("channel %q: %v", d.live.Channel(path), err)
	}
	got, _, err := d.live.ParsePath(d.uid, path)
	if err != nil || got.Metric != "temperature" || !got.Seam.Equal(sel.Seam) || got.Nonce != 42 || !got.Series ||
		len(got.Devices) != 1 || got.Devices[0] != "pico" || len(got.Sensors) != 1 || got.Sensors[0] != "" {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	if s := sub(d, d.uid, path); s != backend.SubscribeStreamStatusOK {
		t.Fatalf("valid path: %v", s)
	}
	// A new-series selector keeps its exclusion pairs.
	ns := &live.Selector{Kind: live.KindPostgres, Seam: sel.Seam, Metric: "temperature", Devices: []string{"pico"},
		ExcludeDevices: []string{"pico", "pico"}, ExcludeSensors: []string{"dht22", ""}}
	got, _, err = d.live.ParsePath(d.uid, mustPath(t, d, ns))
	if err != nil || got.Series || len(got.ExcludeDevices) != 2 || got.ExcludeSensors[0] != "dht22" || got.ExcludeSensors[1] != "" || got.Sensors != nil {
		t.Fatalf("new-series round trip: %+v %v", got, err)
	}
	raw, _ := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(path, "p/"))
	raw[5] ^= 1
	tampered := "p/" + base64.RawURLEncoding.EncodeToString(raw)
	for _, bad := range []string{"", "p", "p/", "x/abc", "p/!!!", "p/abc/def", "p/" + strings.Repeat("A", 200), tampered,
		"m/" + strings.TrimPrefix(path, "p/"), "r/unknown", "../p/x"} {
		if s := sub(d, d.uid, bad); s != backend.SubscribeStreamStatusNotFound {
			t.Errorf("path %q: status %v, want not found", bad, s)
		}
	}
	// The same path presented to another data source (or with another UID) is not found.
	if s := sub(other, other.uid, path); s != backend.SubscribeStreamStatusNotFound {
		t.Errorf("foreign path: %v", s)
	}
	if s := sub(d, "another-ds", path); s != backend.SubscribeStreamStatusNotFound {
		t.Errorf("path under another UID: %v", s)
	}
	// MQTT paths need MQTT configured.
	mp := mustPath(t, d, &live.Selector{Kind: live.KindMQTT, Topic: "a/#"})
	if s := sub(d, d.uid, mp); s != backend.SubscribeStreamStatusNotFound {
		t.Errorf("mqtt path without mqtt: %v", s)
	}
	// A selector too long for 160 characters goes through the registry.
	long := &live.Selector{Kind: live.KindPostgres, Metric: "temperature", Devices: []string{strings.Repeat("d", 120), "x"}}
	lp := mustPath(t, d, long)
	if !strings.HasPrefix(lp, "r/") || len(d.live.Channel(lp)) > 160 {
		t.Fatalf("long selector path %q", lp)
	}
	if s := sub(d, d.uid, lp); s != backend.SubscribeStreamStatusOK {
		t.Fatalf("registry path: %v", s)
	}
	if s := sub(other, other.uid, lp); s != backend.SubscribeStreamStatusNotFound {
		t.Fatalf("registry path on another instance: %v", s)
	}
	pr, err := d.PublishStream(context.Background(), &backend.PublishStreamRequest{Path: path, Data: []byte(`{}`)})
	if err != nil || pr.Status != backend.PublishStreamStatusPermissionDenied {
		t.Fatalf("PublishStream: %v %v", pr, err)
	}
	if err := d.RunStream(context.Background(), &backend.RunStreamRequest{Path: tampered}, nil); err == nil {
		t.Fatal("RunStream accepted a tampered path")
	}
}

// TestLiveAggregated: an aggregated live query's history ends at a bucket boundary and the stream then sends
// each later bucket once it has closed; history + stream equal the same query run afterwards without live,
// bucket by bucket, each exactly once.
func TestLiveAggregated(t *testing.T) {
	db := newLiveDB(t)
	d := newDS(t, settingsFor(t, db.url, nil, map[string]any{"liveSeamDelay": "300ms", "liveFrameInterval": "50ms"}))
	start := time.Now().UTC()
	var rows []telemetry.Reading
	for i := 100; i >= 1; i-- { // 20 s of history, one row every 200 ms
		rows = append(rows, reading("pico", "dht22", start.Add(-time.Duration(i)*200*time.Millisecond), float64(i%7)))
	}
	db.write(t, rows...)
	from := start.Add(-time.Minute)
	model := map[string]any{"source": "sql", "metric": "temperature", "device": "pico", "aggregation": "avg", "interval": "2s"}
	resp := liveQuery(t, d, "A", model, from, start)
	history, channels := historyRows(t, resp)
	if len(channels) != 2 || resp.Frames[1].Fields[0].Name != "labels" {
		t.Fatalf("want the series' channel and the new-series channel, got %v", channels)
	}
	if f := resp.Frames[0]; f.Meta.Type != data.FrameTypeTimeSeriesMulti || len(f.Fields) != 2 {
		t.Fatalf("a live aggregated query answers one frame per series (its channel), got %s with %d fields", f.Meta.Type, len(f.Fields))
	}
	sel, _, err := d.live.ParsePath(d.uid, pathOf(t, d, channels[0]))
	if err != nil {
		t.Fatal(err)
	}
	if sel.Agg != "avg" || sel.Interval != 2*time.Second || !sel.Seam.Equal(timebucket.Floor(sel.Seam, 2*time.Second)) {
		t.Fatalf("selector %+v: want avg over 2s with a bucket-aligned seam", sel)
	}
	for _, r := range history {
		if r.us >= sel.Seam.UnixMicro() {
			t.Fatalf("history bucket %v at or after the seam %v", r, sel.Seam)
		}
	}
	sink, _ := runStream(t, d, channels[0])
	// Live rows for 7 s (at least two whole buckets after the seam), then wait until those buckets have closed.
	for i := 0; i < 35; i++ {
		db.write(t, reading("pico", "dht22", time.Now(), float64(i%5)+0.5))
		time.Sleep(200 * time.Millisecond)
	}
	end := time.Now().UTC()
	lastClosed := timebucket.Floor(end, 2*time.Second).Add(-2 * time.Second)
	live := sink.waitRows(t, "closed buckets", 10*time.Second, func(r []liveRow) bool {
		return len(r) > 0 && r[len(r)-1].us >= lastClosed.UnixMicro()
	})
	// The same query without live, over the range the stream has covered.
	full := runOne(t, d, dq(t, "B", model, from, lastClosed.Add(2*time.Second), time.Second))
	want, _ := historyRows(t, full)
	got := append(append([]liveRow{}, history...), live...)
	seen := map[int64]int{}
	for _, r := range got {
		if r.us <= lastClosed.UnixMicro() {
			seen[r.us]++
		}
	}
	for _, w := range want {
		var match *liveRow
		for i := range got {
			if got[i].us == w.us {
				match = &got[i]
			}
		}
		switch {
		case match == nil:
			t.Errorf("bucket %s missing from history + stream", time.UnixMicro(w.us).UTC().Format(time.RFC3339Nano))
		case seen[w.us] != 1:
			t.Errorf("bucket %s sent %d times", time.UnixMicro(w.us).UTC().Format(time.RFC3339Nano), seen[w.us])
		case math.Abs(match.v-w.v) > 1e-9*math.Max(1, math.Abs(w.v)):
			t.Errorf("bucket %s: live %v, query %v", time.UnixMicro(w.us).UTC().Format(time.RFC3339Nano), match.v, w.v)
		}
	}
	afterSeam := 0
	for _, w := range want {
		if w.us >= sel.Seam.UnixMicro() {
			afterSeam++
		}
	}
	if len(live) < 2 || afterSeam < 2 {
		t.Errorf("the stream sent %d buckets (%d expected after the seam): the live part was not exercised", len(live), afterSeam)
	}
	t.Logf("history %d buckets, stream %d, the plain query %d (%d after the seam)", len(history), len(live), len(want), afterSeam)
}

// mustPath is channelPath for a test (owner "").
func mustPath(t testing.TB, d *Datasource, sel *live.Selector) string {
	t.Helper()
	p, err := d.live.ChannelPath(sel, "")
	if err != nil {
		t.Fatalf("channelPath: %v", err)
	}
	return p
}
