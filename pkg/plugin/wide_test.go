package plugin

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/data"
)

// multiFrames runs a builder SQL query the way the live path does, one time-series-multi frame per series (the
// answer every aggregated query had before the wide shape), for comparison with QueryData's answer.
func multiFrames(t testing.TB, d *Datasource, q backend.DataQuery) data.Frames {
	t.Helper()
	pq, err := ParseQuery(q.JSON)
	if err != nil {
		t.Fatal(err)
	}
	pq.RefID = q.RefID
	fs, err := d.builderSQL(context.Background(), pq, q, false)
	if err != nil {
		t.Fatalf("multi frames: %v", err)
	}
	for _, f := range fs {
		if f.Meta.Type != data.FrameTypeTimeSeriesMulti {
			t.Fatalf("multi path answered %s", f.Meta.Type)
		}
	}
	return fs
}

// legends maps each series (labels) to its DisplayNameFromDS, for frames of either shape.
func legends(fs data.Frames) map[string]string {
	out := map[string]string{}
	for _, f := range fs {
		for _, vf := range f.Fields {
			if vf.Type() == data.FieldTypeTime || vf.Config == nil {
				continue
			}
			out[labelsKey(vf.Labels)] = vf.Config.DisplayNameFromDS
		}
	}
	return out
}

// TestWideSameAsMulti: on PostgreSQL, every aggregated builder query answers the same series, times, values
// (exactly) and legends as one frame per series did, over a range that holds pico/internal's 7-minute gap:
// fill null, previous and zero give one wide frame with that series filled on the grid; fill none gives one
// wide frame when every series has every bucket (5m, 7m) and keeps one frame per series when a series lacks
// buckets (1m), since a null is not an absent point.
func TestWideSameAsMulti(t *testing.T) {
	pgURL, _ := newPostgres(t, dataset())
	d := newDS(t, settingsFor(t, pgURL, nil, nil))
	from, to := base.Add(10*time.Minute), base.Add(70*time.Minute) // holds the gap 00:20–00:27
	for _, agg := range []string{"avg", "min", "max", "last", "count", "sum"} {
		for _, iv := range []string{"1m", "5m", "7m", "30s"} {
			for _, fill := range []string{"none", "null", "previous", "zero"} {
				name := fmt.Sprintf("%s@%s/fill %s", agg, iv, fill)
				t.Run(name, func(t *testing.T) {
					q := dq(t, "A", map[string]any{"source": "sql", "metric": "temperature", "aggregation": agg, "interval": iv, "fill": fill}, from, to, time.Minute)
					r := runOne(t, d, q)
					if r.Error != nil {
						t.Fatal(r.Error)
					}
					multi := multiFrames(t, d, q)
					want := seriesOf(t, multi)
					if len(want) != 3 {
						t.Fatalf("want 3 series, got %d", len(want))
					}
					got := seriesOf(t, r.Frames)
					sameSeries(t, "wide vs multi", want, got, 0)
					if w, g := legends(multi), legends(r.Frames); fmt.Sprint(w) != fmt.Sprint(g) {
						t.Fatalf("legends differ:\nmulti %v\nwide  %v", w, g)
					}
					holes := false
					for _, pts := range want {
						holes = holes || len(pts) != len(want["device=pico,sensor=dht22"])
					}
					wantWide := fill != "none" || !holes
					if isWide := r.Frames[0].Meta.Type == data.FrameTypeTimeSeriesWide; isWide != wantWide {
						t.Fatalf("wide %v, want %v (fill %s, a series lacks buckets: %v)", isWide, wantWide, fill, holes)
					}
					t.Logf("%s, %d frames", r.Frames[0].Meta.Type, len(r.Frames))
					if iv == "1m" && fill == "none" && !holes {
						t.Fatal("pico/internal should lack the 1-minute buckets of its gap")
					}
					if wantWide {
						f := r.Frames[0]
						if len(r.Frames) != 1 || len(f.Fields) != 4 || f.RefID != "A" || f.Name != "temperature" ||
							f.Meta.ExecutedQueryString != multi[0].Meta.ExecutedQueryString || f.Meta.ExecutedQueryString == "" {
							t.Fatalf("wide answer: %d frames, %d fields, refId %q, name %q, executed %q", len(r.Frames), len(f.Fields), f.RefID, f.Name, f.Meta.ExecutedQueryString)
						}
						if ts := f.TimeSeriesSchema(); ts.Type != data.TimeSeriesTypeWide || ts.TimeIndex != 0 {
							t.Fatalf("the SDK reads the frame as %v (time field %d), want wide", ts.Type, ts.TimeIndex)
						}
						// Nullable exactly when the fill mode can leave a bucket empty (as the multi frames).
						nullable := fill == "null" || fill == "previous"
						for _, vf := range f.Fields[1:] {
							if vf.Type().Nullable() != nullable {
								t.Fatalf("fill %s: field type %s", fill, vf.Type())
							}
						}
					}
					if fill == "none" {
						return
					}
					// The gap, filled per the mode, in the wide frame.
					pts := got["device=pico,sensor=internal"]
					if len(pts) != len(got["device=node1"]) {
						t.Fatalf("fill %s: pico/internal has %d points, node1 %d", fill, len(pts), len(got["device=node1"]))
					}
					var gap *point
					for i := range pts {
						if pts[i].t.Equal(base.Add(23 * time.Minute)) {
							gap = &pts[i]
						}
					}
					if iv == "1m" || iv == "30s" {
						switch {
						case gap == nil:
							t.Fatal("no 00:23 bucket")
						case fill == "null" && gap.v != nil, fill == "zero" && (gap.v == nil || *gap.v != 0), fill == "previous" && gap.v == nil:
							t.Fatalf("fill %s: 00:23 = %v", fill, gap.v)
						}
					}
				})
			}
		}
	}
	t.Run("raw rows stay multi", func(t *testing.T) {
		q := dq(t, "A", map[string]any{"source": "sql", "metric": "temperature"}, from, to, time.Minute)
		r := runOne(t, d, q)
		if r.Error != nil || len(r.Frames) != 3 {
			t.Fatalf("raw: %v, %d frames, want one per series", r.Error, len(r.Frames))
		}
		seriesOf(t, r.Frames)
		if r.Frames[0].Meta.Type != data.FrameTypeTimeSeriesMulti {
			t.Fatalf("raw: %s", r.Frames[0].Meta.Type)
		}
	})
}

// TestWideAlerting reads the wide answer as Grafana's alerting does with a dataplane wide frame: each value
// field is one series, identified by its name and labels, which must be {device, sensor} (device alone for a
// series without sensor) and unique; "last" of each series equals the last point of its multi frame.
func TestWideAlerting(t *testing.T) {
	pgURL, _ := newPostgres(t, dataset())
	d := newDS(t, settingsFor(t, pgURL, nil, nil))
	q := dq(t, "A", map[string]any{"source": "sql", "metric": "temperature", "aggregation": "avg", "interval": "5m"},
		base.Add(30*time.Minute), base.Add(90*time.Minute), time.Minute)
	r := runOne(t, d, q)
	if r.Error != nil || len(r.Frames) != 1 || r.Frames[0].Meta.Type != data.FrameTypeTimeSeriesWide {
		t.Fatalf("want one wide frame: %v, %d frames", r.Error, len(r.Frames))
	}
	f := r.Frames[0]
	wantLabels := map[string]bool{"device=node1": true, "device=pico,sensor=dht22": true, "device=pico,sensor=internal": true}
	last := map[string]float64{}
	for _, vf := range f.Fields[1:] {
		id := vf.Name + labelsKey(vf.Labels)
		if vf.Name != "temperature" || !wantLabels[labelsKey(vf.Labels)] {
			t.Fatalf("value field %s: want temperature with one of %v", id, wantLabels)
		}
		delete(wantLabels, labelsKey(vf.Labels)) // unique
		v, err := vf.NullableFloatAt(f.Rows() - 1)
		if err != nil || v == nil {
			t.Fatalf("series %s: last value %v %v", id, v, err)
		}
		last[labelsKey(vf.Labels)] = *v
	}
	if len(wantLabels) != 0 {
		t.Fatalf("series missing from the wide frame: %v", wantLabels)
	}
	for _, mf := range multiFrames(t, d, q) {
		v, _ := mf.Fields[1].FloatAt(mf.Rows() - 1)
		if k := labelsKey(mf.Fields[1].Labels); last[k] != v {
			t.Errorf("series %s: last %v, multi frame's last %v", k, last[k], v)
		}
	}
}

// TestWideRowLimit: the row-limit notice stays on the first frame whatever the shape, with the executed
// statement in its meta.
func TestWideRowLimit(t *testing.T) {
	pgURL, _ := newPostgres(t, dataset())
	d := newDS(t, settingsFor(t, pgURL, nil, map[string]any{"rowLimit": 20}))
	for _, iv := range []string{"1m", "5m"} {
		for _, fill := range []string{"none", "null"} {
			r := runOne(t, d, dq(t, "A", map[string]any{"source": "sql", "metric": "temperature", "aggregation": "avg", "interval": iv, "fill": fill},
				base, base.Add(time.Hour), time.Minute))
			if r.Error != nil {
				t.Fatal(r.Error)
			}
			m := r.Frames[0].Meta
			if m == nil || len(m.Notices) != 1 || !strings.Contains(m.Notices[0].Text, "limited to 20 rows") || m.ExecutedQueryString == "" {
				t.Fatalf("%s fill %s (%d frames): meta %+v", iv, fill, len(r.Frames), m)
			}
			seriesOf(t, r.Frames) // a valid shape
		}
	}
}

// TestWideFluxSameAsMulti: the Flux builder answers the same wide frame as SQL for aggregated queries.
func TestWideFluxSameAsMulti(t *testing.T) {
	rows := dataset()
	pgURL, _ := newPostgres(t, rows)
	influx := newInflux(t, rows)
	d := newDS(t, settingsFor(t, pgURL, &influx, nil))
	from, to := base.Add(10*time.Minute), base.Add(70*time.Minute)
	for _, fill := range []string{"none", "previous"} {
		m := map[string]any{"metric": "temperature", "aggregation": "avg", "interval": "5m", "fill": fill}
		m["source"] = "sql"
		sqlResp := runOne(t, d, dq(t, "A", m, from, to, time.Minute))
		m["source"] = "flux"
		fluxResp := runOne(t, d, dq(t, "A", m, from, to, time.Minute))
		if sqlResp.Error != nil || fluxResp.Error != nil {
			t.Fatalf("sql %v, flux %v", sqlResp.Error, fluxResp.Error)
		}
		if len(fluxResp.Frames) != 1 || fluxResp.Frames[0].Meta.Type != data.FrameTypeTimeSeriesWide {
			t.Fatalf("flux fill %s: want one wide frame, got %d frames", fill, len(fluxResp.Frames))
		}
		sameSeries(t, "flux vs sql, fill "+fill, seriesOf(t, sqlResp.Frames), seriesOf(t, fluxResp.Frames), 1e-9)
		if w, g := legends(sqlResp.Frames), legends(fluxResp.Frames); fmt.Sprint(w) != fmt.Sprint(g) {
			t.Fatalf("legends differ:\nsql  %v\nflux %v", w, g)
		}
	}
}
