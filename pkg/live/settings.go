package live

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/backend/gtime"
)

// Live defaults.
const (
	DefaultSeamDelay     = 5 * time.Second
	DefaultFrameInterval = 100 * time.Millisecond
	DefaultMaxRows       = 50_000
)

// Settings tune live streaming (jsonData keys liveSeamDelay, liveFrameInterval, liveMaxBufferedRows and
// mqtt.qos).
type Settings struct {
	// SeamDelay (δ): a live raw query answers history up to S = min(to, now) − δ and the stream takes over
	// from S. Rows committed later than δ after their time, between QueryData and the stream's start, are the
	// only ones a panel misses (until its next refresh).
	SeamDelay time.Duration
	// FrameInterval: a stream sends at most one frame per interval under load (the first row after a quiet
	// spell goes at once).
	FrameInterval time.Duration
	// MaxBufferedRows bounds the rows a stream holds between two frames; the oldest are dropped beyond.
	MaxBufferedRows int
	QoS             byte
}

// JSONSettings are the jsonData keys of the live settings (pkg/plugin lists them with its own in JSONDataKeys).
type JSONSettings struct {
	SeamDelay     json.RawMessage `json:"liveSeamDelay"`
	FrameInterval json.RawMessage `json:"liveFrameInterval"`
	MaxRows       *int            `json:"liveMaxBufferedRows"`
	MQTT          *struct {
		QoS *int `json:"qos"`
	} `json:"mqtt"`
}

// LoadSettings reads the live keys of jsonData. Durations are "5s"-style strings or milliseconds.
func LoadSettings(s backend.DataSourceInstanceSettings) (Settings, error) {
	out := Settings{SeamDelay: DefaultSeamDelay, FrameInterval: DefaultFrameInterval, MaxBufferedRows: DefaultMaxRows, QoS: 1}
	if len(s.JSONData) == 0 {
		return out, nil
	}
	var j JSONSettings
	if err := json.Unmarshal(s.JSONData, &j); err != nil {
		return out, fmt.Errorf("settings: jsonData is not valid: %w", err)
	}
	var errs []error
	var err error
	if out.SeamDelay, err = liveDuration("liveSeamDelay", j.SeamDelay, out.SeamDelay, 0, time.Hour); err != nil {
		errs = append(errs, err)
	}
	if out.FrameInterval, err = liveDuration("liveFrameInterval", j.FrameInterval, out.FrameInterval, 0, time.Minute); err != nil {
		errs = append(errs, err)
	}
	if j.MaxRows != nil {
		if *j.MaxRows < 100 || *j.MaxRows > 10_000_000 {
			errs = append(errs, fmt.Errorf("liveMaxBufferedRows %d: want 100..10000000", *j.MaxRows))
		} else {
			out.MaxBufferedRows = *j.MaxRows
		}
	}
	if j.MQTT != nil && j.MQTT.QoS != nil {
		if *j.MQTT.QoS < 0 || *j.MQTT.QoS > 2 {
			errs = append(errs, fmt.Errorf("mqtt.qos %d: want 0, 1 or 2", *j.MQTT.QoS))
		} else {
			out.QoS = byte(*j.MQTT.QoS)
		}
	}
	if len(errs) > 0 {
		return out, fmt.Errorf("settings: %w", errors.Join(errs...))
	}
	return out, nil
}

func liveDuration(name string, raw json.RawMessage, def, lo, hi time.Duration) (time.Duration, error) {
	if len(raw) == 0 || string(raw) == "null" || string(raw) == `""` {
		return def, nil
	}
	var d time.Duration
	var ms float64
	if err := json.Unmarshal(raw, &ms); err == nil {
		d = time.Duration(ms * float64(time.Millisecond))
	} else {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return def, fmt.Errorf("%s: want a duration such as \"5s\" or a number of milliseconds", name)
		}
		if d, err = gtime.ParseDuration(s); err != nil {
			return def, fmt.Errorf("%s %q: want a duration such as \"5s\"", name, s)
		}
	}
	if d < lo || d > hi {
		return def, fmt.Errorf("%s %v: want %v..%v", name, d, lo, hi)
	}
	return d, nil
}
