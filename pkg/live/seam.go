package live

import (
	"context"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/data"

	"github.com/fieldline-iot/fieldline/internal/timebucket"
	"github.com/fieldline-iot/fieldline/pkg/frames"
)

// The seam, for a live raw builder query:
//
//   - QueryData answers history for time < S, S = min(to, now) − δ (δ = liveSeamDelay, default 5 s), and puts
//     S in every frame's channel;
//   - the stream LISTENs first, then reads back time ≥ S for its selector, then forwards notified rows,
//     dropping rows it already sent (exact device, metric, sensor, time, value);
//   - a notified row with time < S was committed after QueryData read the history (otherwise its notification
//     would have arrived before the stream subscribed and its row would have been in the history), so it is
//     sent: it is late data.
//
// The one case a panel does not show (until its next refresh): a row committed between QueryData and the
// stream's LISTEN whose time is < S, i.e. a row more than δ late that lands in that window — the history
// query ran before its commit and the read-back starts at S. δ trades this against how old the newest
// history row is.

// SQLQuery is a live builder SQL query as the seam needs it.
type SQLQuery struct {
	RefID, Metric    string
	Devices, Sensors []string      // nil: every device (sensor)
	Agg              string        // "" for raw rows; avg, min, max, last, count, sum
	Interval         time.Duration // the bucket width of an aggregated query
	From, To         time.Time     // the panel's time range
	States           bool          // a states query: text values from the states table (never aggregated)
}

// History answers the query's history for [From, to) as dataplane time-series-multi frames, one per series
// with labels {device, sensor} (the plugin's builder SQL path).
type History func(to time.Time) (data.Frames, error)

// HistoryEnd is the seam S of a live raw query: min(to, now) − δ, at millisecond precision.
func (e *Engine) HistoryEnd(to time.Time) time.Time {
	s := time.Now()
	if to.Before(s) {
		s = to
	}
	return s.Add(-e.settings.SeamDelay).Truncate(time.Millisecond)
}

// SQLFrames answers a live builder SQL query: its history until the seam (from history), and a channel per
// series frame, plus one channel in labels push mode for series that are not in the history yet.
func (e *Engine) SQLFrames(ctx context.Context, q SQLQuery, history History) (data.Frames, error) {
	if err := e.available(&Selector{Kind: KindPostgres, States: q.States}); err != nil {
		return nil, backend.DownstreamError(err)
	}
	seam := e.HistoryEnd(q.To)
	if q.Agg != "" {
		// Aggregated: the history ends at the last complete bucket before the seam; the stream emits each later
		// bucket once it has closed (and δ has passed for late rows), aggregated from the same rows.
		seam = timebucket.Floor(seam, q.Interval)
	}
	var result data.Frames
	if seam.After(q.From) {
		var err error
		if result, err = history(seam); err != nil {
			return nil, err
		}
	} else {
		result = frames.TimeSeries(q.RefID, q.Metric, nil, nil, "")
	}
	nonce := randomNonce()
	if len(result) == 1 && len(result[0].Fields) == 0 {
		// No series yet: one channel for the whole selector, in labels push mode (series appear as they come).
		sel := &Selector{Kind: KindPostgres, Seam: seam, Nonce: nonce, Metric: q.Metric, Devices: q.Devices, Sensors: q.Sensors,
			Agg: q.Agg, Interval: q.Interval, States: q.States}
		f := emptyPush(q)
		f.Meta = result[0].Meta
		e.setChannel(ctx, f, sel)
		return data.Frames{f}, nil
	}
	var exDevices, exSensors []string
	for _, f := range result {
		if len(f.Fields) != 2 {
			continue
		}
		l := f.Fields[1].Labels
		sel := &Selector{Kind: KindPostgres, Seam: seam, Nonce: nonce, Metric: q.Metric, Series: true,
			Devices: []string{l["device"]}, Sensors: []string{l["sensor"]}, Agg: q.Agg, Interval: q.Interval, States: q.States}
		e.setChannel(ctx, f, sel)
		exDevices, exSensors = append(exDevices, l["device"]), append(exSensors, l["sensor"])
	}
	// Series that are not in the history — a node that starts publishing after the query ran, or whose rows
	// are all after the seam — stream on one more channel, in labels push mode, so they appear without a
	// refresh. Not when the query names every series it can have (its devices × sensors are all here).
	enumerated := q.Devices != nil && q.Sensors != nil && len(exDevices) >= len(q.Devices)*len(q.Sensors)
	if !enumerated && len(exDevices) > 0 && len(exDevices) <= maxExcludedSeries {
		sel := &Selector{Kind: KindPostgres, Seam: seam, Nonce: nonce, Metric: q.Metric, Devices: q.Devices, Sensors: q.Sensors,
			Agg: q.Agg, Interval: q.Interval, ExcludeDevices: exDevices, ExcludeSensors: exSensors, States: q.States}
		f := emptyPush(q)
		f.Name = q.Metric
		f.Meta = &data.FrameMeta{Type: data.FrameTypeTimeSeriesMulti, TypeVersion: data.FrameTypeVersion{0, 1}}
		e.setChannel(ctx, f, sel)
		result = append(result, f)
	}
	return result, nil
}

// emptyPush is an empty labels-push frame of the query's value type (text for states).
func emptyPush(q SQLQuery) *data.Frame {
	if q.States {
		return frames.LabelsPush[string](q.RefID, q.Metric, nil, nil, nil)
	}
	return frames.LabelsPush[float64](q.RefID, q.Metric, nil, nil, nil)
}
