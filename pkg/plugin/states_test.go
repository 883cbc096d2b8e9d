package plugin

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/data"

	"github.com/fieldline-iot/fieldline/internal/telemetry"
)

func state(device, sensor, metric string, t time.Time, text string) telemetry.Reading {
	return telemetry.Reading{Time: t.UTC().Truncate(time.Microsecond), Device: device, Metric: metric, Sensor: sensor, Kind: telemetry.KindText, Text: text}
}

func boolState(device, sensor, metric string, t time.Time, on bool) telemetry.Reading {
	r := state(device, sensor, metric, t, "false")
	r.Kind = telemetry.KindBool
	if on {
		r.Text, r.Value = "true", 1
	}
	return r
}

// TestStatesHistory: a states query answers the state changes of each series (a repeated retained "online" is
// one state), each series starting with the state it was in at the range's start, as string fields the State
// timeline reads; the table form carries the annotation columns; a state filter keeps the changes to that value.
func TestStatesHistory(t *testing.T) {
	db := newLiveDB(t)
	now := time.Now().UTC().Truncate(time.Second)
	db.write(t,
		state("pico", "", "status", now.Add(-2*time.Hour), "offline"), // before the range: the state at its start
		state("pico", "", "status", now.Add(-50*time.Minute), "online"),
		state("pico", "", "status", now.Add(-40*time.Minute), "online"), // a reconnect's retained repeat
		state("pico", "", "status", now.Add(-30*time.Minute), "offline"),
		state("pico", "", "status", now.Add(-20*time.Minute), "online"),
		state("node2", "", "status", now.Add(-10*time.Minute), "offline"),
		state("old", "", "status", now.Add(-40*24*time.Hour), "online"), // beyond the look-back
		boolState("node2", "r1", "relay", now.Add(-5*time.Minute), true),
		reading("pico", "dht22", now.Add(-time.Minute), 22.4), // a number: never a state
	)
	d := newDS(t, settingsFor(t, db.url, nil, nil))
	from := now.Add(-time.Hour)
	us := func(d time.Duration) int64 { return now.Add(d).UnixMicro() }

	resp := runOne(t, d, dq(t, "A", map[string]any{"source": "sql", "mode": "states", "metric": "status"}, from, now, time.Second))
	if resp.Error != nil {
		t.Fatal(resp.Error)
	}
	var got []string
	for _, f := range resp.Frames {
		if len(f.Fields) != 2 || f.Fields[1].Type() != data.FieldTypeString || f.Meta.Type != data.FrameTypeTimeSeriesMulti {
			t.Fatalf("frame %q: want time + string value, time-series-multi: %v", f.Name, f.Fields)
		}
		for _, r := range frameRows(f) {
			got = append(got, r.String())
		}
	}
	pico, node2 := labelsKey(map[string]string{"device": "pico"}), labelsKey(map[string]string{"device": "node2"})
	want := []string{
		fmt.Sprintf("%s@%d=%q", node2, us(-10*time.Minute), "offline"),
		fmt.Sprintf("%s@%d=%q", pico, us(-2*time.Hour), "offline"),
		fmt.Sprintf("%s@%d=%q", pico, us(-50*time.Minute), "online"),
		fmt.Sprintf("%s@%d=%q", pico, us(-30*time.Minute), "offline"),
		fmt.Sprintf("%s@%d=%q", pico, us(-20*time.Minute), "online"),
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("states:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// A boolean state is the text "true"/"false" (the live stream's type too).
	resp = runOne(t, d, dq(t, "B", map[string]any{"source": "sql", "mode": "states", "metric": "relay", "device": "node2"}, from, now, time.Second))
	if resp.Error != nil || len(resp.Frames) != 1 || resp.Frames[0].Rows() != 1 || resp.Frames[0].Fields[1].At(0) != "true" {
		t.Fatalf("relay: %v %v", resp.Error, resp.Frames)
	}

	// The annotation form: "changes to offline" in the range, with time, text and tags.
	resp = runOne(t, d, dq(t, "Anno", map[string]any{"source": "sql", "mode": "states", "metric": "status", "state": "offline", "format": "table"}, from, now, time.Second))
	if resp.Error != nil || len(resp.Frames) != 1 {
		t.Fatalf("annotation: %v %v", resp.Error, resp.Frames)
	}
	f := resp.Frames[0]
	var rows []string
	for i := 0; i < f.Rows(); i++ {
		tm, _ := f.FieldByName("time")
		text, _ := f.FieldByName("text")
		tags, _ := f.FieldByName("tags")
		rows = append(rows, fmt.Sprintf("%d|%s|%s", tm.At(i).(time.Time).UnixMicro(), text.At(i), tags.At(i)))
	}
	wantAnno := []string{
		fmt.Sprintf("%d|pico status: offline|pico,status,offline", us(-30*time.Minute)),
		fmt.Sprintf("%d|node2 status: offline|node2,status,offline", us(-10*time.Minute)),
	}
	if strings.Join(rows, "\n") != strings.Join(wantAnno, "\n") {
		t.Errorf("annotation rows:\n%s\nwant\n%s", strings.Join(rows, "\n"), strings.Join(wantAnno, "\n"))
	}

	// Pickers in states mode list the states table's series; the builder's list the readings'.
	srv := resourceServer(t, d)
	for path, want := range map[string]string{
		"/metrics?mode=states":               `["relay","status"]`,
		"/devices?mode=states&metric=status": `["node2","old","pico"]`,
		"/sensors?mode=states&metric=relay":  `["r1"]`,
		"/metrics":                           `["temperature"]`,
	} {
		if body, code := get(t, srv+path); code != 200 || strings.TrimSpace(body) != want {
			t.Errorf("GET %s: %d %s, want %s", path, code, body, want)
		}
	}
	// A variable reading the states table (the variable editor's "From: States").
	if v := runOne(t, d, dq(t, "V", map[string]any{"source": "sql", "mode": "states", "variable": "devices", "metric": "status"}, from, now, time.Second)); v.Error != nil ||
		v.Frames[0].Rows() != 3 || v.Frames[0].Fields[0].At(0) != "node2" {
		t.Errorf("states devices variable: %v %v", v.Error, v.Frames)
	}
	if body, code := get(t, srv+"/metrics?mode=x%27%3B"); code != 400 {
		t.Errorf("unknown mode: %d %s, want 400", code, body)
	}
	// The preview is the statement QueryData runs, and its code seed runs on PostgreSQL.
	p, code, raw := postPreview(t, srv, previewBody(map[string]any{"source": "sql", "mode": "states", "metric": "status", "device": "pico"}, from, now, time.Second))
	if code != 200 || !strings.Contains(p.Text, "FROM states") || !strings.Contains(p.Code, "FROM states") {
		t.Fatalf("preview: %d %s", code, raw)
	}
	resp = runOne(t, d, dq(t, "C", map[string]any{"source": "sql", "mode": "code", "rawSql": p.Code, "format": "table"}, from, now, time.Second))
	if resp.Error != nil || len(resp.Frames) != 1 || resp.Frames[0].Rows() != 4 { // the four pico rows in the range
		t.Errorf("code seed: %v %v", resp.Error, resp.Frames)
	}
	if resp.Frames[0].Meta == nil || resp.Frames[0].Meta.ExecutedQueryString == "" {
		t.Error("code seed: no executed query string")
	}

	// Bad input: states need a metric and source sql; a state value is bounded like the ingester's.
	for _, m := range []map[string]any{
		{"source": "sql", "mode": "states"},
		{"source": "flux", "mode": "states", "metric": "status"},
		{"source": "sql", "mode": "states", "metric": "status", "state": strings.Repeat("x", telemetry.MaxTextBytes+1)},
		{"source": "sql", "mode": "states", "metric": "status", "state": "a\x00b"},
	} {
		if r := runOne(t, d, dq(t, "X", m, from, now, time.Second)); r.Error == nil {
			t.Errorf("%v: no error", m)
		}
	}
}

// TestStatesLive: history then live for states, through RunStream: a state committed during the handover, states
// notified with their rows, a batch too big to travel in a notification (read back), and a series that appears
// after the query (the new-series channel): every state shown exactly once, none lost at the seam.
func TestStatesLive(t *testing.T) {
	db := newLiveDB(t)
	d := newDS(t, settingsFor(t, db.url, nil, liveExtra))
	now := time.Now().UTC()
	var all []telemetry.Reading
	write := func(rows ...telemetry.Reading) {
		db.write(t, rows...)
		all = append(all, rows...)
	}
	texts := []string{"online", "offline"}
	for i := 30; i >= 1; i-- {
		write(state("pico", "", "status", now.Add(-time.Duration(i)*time.Second), texts[i%2]),
			state("node2", "", "status", now.Add(-time.Duration(i)*time.Second), texts[(i+1)%2]))
	}
	resp := liveQuery(t, d, "A", map[string]any{"source": "sql", "mode": "states", "metric": "status"}, now.Add(-time.Hour), now.Add(time.Hour))
	history, channels := historyRows(t, resp)
	if len(channels) != 3 { // pico, node2, and new series
		t.Fatalf("channels: %v", channels)
	}
	for _, f := range resp.Frames {
		if f.Fields[len(f.Fields)-1].Type() != data.FieldTypeString {
			t.Fatalf("frame %q: value field is %s, want string", f.Name, f.Fields[len(f.Fields)-1].Type())
		}
	}
	write(state("pico", "", "status", time.Now().UTC(), "handover")) // after QueryData, before the streams
	var sinks []*frameSink
	for _, c := range channels {
		s, _ := runStream(t, d, c)
		sinks = append(sinks, s)
	}
	liveOf := func() []liveRow {
		var out []liveRow
		for _, s := range sinks {
			for _, r := range s.rows() {
				if l, err := data.LabelsFromString(r.series); err == nil && strings.HasPrefix(r.series, "{") {
					r.series = labelsKey(l) // labels push mode: the same key as a one-series frame's labels
				}
				out = append(out, r)
			}
		}
		return out
	}
	waitFor := func(what, text string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !slices.ContainsFunc(liveOf(), func(r liveRow) bool { return r.s == text }) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: %q never arrived; live rows %v", what, text, truncRows(liveOf()))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitFor("handover read back", "handover")
	for i := 0; i < 5; i++ {
		write(state("pico", "", "status", time.Now().UTC(), fmt.Sprintf("live-%d", i)), state("node2", "", "status", time.Now().UTC(), fmt.Sprintf("n-%d", i)))
	}
	var big []telemetry.Reading // ≈ 200 rows × 60 bytes: the notification carries the watermark only
	base := time.Now().UTC()
	for i := 0; i < 200; i++ {
		big = append(big, state("pico", "", "status", base.Add(time.Duration(i)*time.Microsecond), fmt.Sprintf("big-%03d-%s", i, strings.Repeat("x", 40))))
	}
	write(big...)
	write(state("node3", "", "status", time.Now().UTC(), "newcomer"), boolState("node2", "", "status", time.Now().UTC(), true))
	waitFor("big batch read back", big[199].Text)
	waitFor("new series", "newcomer")
	waitFor("bool state", "true")
	time.Sleep(300 * time.Millisecond) // anything doubled would arrive by now
	checkExactlyOnce(t, "states: history + live", all, history, liveOf())
}
