package live

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/data"

	"github.com/fieldline-iot/fieldline/internal/telemetry"
	"github.com/fieldline-iot/fieldline/pkg/frames"
	"github.com/fieldline-iot/fieldline/pkg/live/mqttlive"
)

// MQTT live: one channel per query execution; every message matching the topic filter is decoded with the
// query's template and payload format (internal/telemetry, as the ingester does); the series of a reading is its
// concrete topic plus its metric and sensor, sent in Grafana's labels push mode so series appear as topics do.
// A topic the template does not match (and queries without a template) get the default labels: device = the
// topic, metric = its last level.

// Sentinels of the default labeling (replaced after decoding).
const (
	mqttTopicDevice = "__topic__"
	mqttLevelMetric = "__level__"
)

// mqttDecoders are a stream's decoders: the query's template, and the default one.
type mqttDecoders struct {
	tpl, def *telemetry.Decoder
}

// MaxJSONFields bounds the JSON field paths of a live MQTT query.
const MaxJSONFields = 64

// MQTTJSON selects what a live MQTT query reads from JSON payloads: only these dotted paths (each its own metric,
// named by its path; none: every numeric field), and the payload's time field (not a series; absent: the receive
// time) in one of telemetry's time formats.
type MQTTJSON struct {
	Fields                []string
	TimeField, TimeFormat string
}

// check bounds the paths (a Viewer sends them, and forged channel paths carry them).
func (j MQTTJSON) check() error {
	if len(j.Fields) > MaxJSONFields {
		return fmt.Errorf("mqtt query: at most %d JSON fields", MaxJSONFields)
	}
	for _, p := range append([]string{j.TimeField}, j.Fields...) {
		if msg := telemetry.CheckLabel(p); msg != "" {
			return fmt.Errorf("mqtt query: JSON field path %s", msg)
		}
	}
	return nil
}

func (j MQTTJSON) options() telemetry.JSONOptions {
	o := telemetry.JSONOptions{TimeField: j.TimeField, TimeFormat: j.TimeFormat}
	if len(j.Fields) > 0 {
		o.Fields = make(map[string]telemetry.Labels, len(j.Fields))
		for _, p := range j.Fields {
			o.Fields[p] = telemetry.Labels{Metric: p}
		}
	}
	return o
}

func newMQTTDecoders(template, format string, j MQTTJSON) (*mqttDecoders, error) {
	f, err := telemetry.ParseFormat(format)
	if err != nil {
		return nil, err
	}
	if err := j.check(); err != nil {
		return nil, err
	}
	d := &mqttDecoders{}
	if d.def, err = telemetry.NewDecoder("#", telemetry.Options{Format: f, JSON: j.options(), Static: telemetry.Labels{Device: mqttTopicDevice, Metric: mqttLevelMetric}}); err != nil {
		return nil, err
	}
	if strings.TrimSpace(template) != "" {
		if d.tpl, err = telemetry.NewDecoder(template, telemetry.Options{Format: f, JSON: j.options()}); err != nil {
			return nil, err
		}
	}
	return d, nil
}

func (d *mqttDecoders) decode(m *mqttlive.Message, dst []telemetry.Reading) ([]telemetry.Reading, error) {
	if m.Skipped > 0 { // over mqttlive's default limit, the decoders' own
		return dst, telemetry.Oversized(m.Skipped, telemetry.DefaultMaxPayloadBytes)
	}
	if d.tpl != nil && d.tpl.Template() != nil {
		if _, ok := d.tpl.Template().Match(m.Topic); ok {
			return d.tpl.Decode(m.Topic, m.Payload, m.Received, dst)
		}
	}
	n0 := len(dst)
	dst, err := d.def.Decode(m.Topic, m.Payload, m.Received, dst)
	for i := n0; i < len(dst); i++ {
		if dst[i].Device == mqttTopicDevice {
			dst[i].Device = m.Topic
		}
		if dst[i].Metric == mqttLevelMetric {
			dst[i].Metric = m.Topic[strings.LastIndexByte(m.Topic, '/')+1:]
		}
	}
	return dst, err
}

// MQTTQuery is a live MQTT query: a topic filter, an optional topic template and the payload format.
type MQTTQuery struct {
	RefID, Topic, Template, PayloadFormat string
	JSON                                  MQTTJSON
}

// MQTTFrames answers a live MQTT query: an empty labels push-mode frame with the channel. Its errors are the
// user's (a filter the data source does not allow, a bad template or format).
func (e *Engine) MQTTFrames(ctx context.Context, q MQTTQuery) (data.Frames, error) {
	m := e.cfg.MQTT
	if m == nil {
		return nil, errors.New("source mqtt: MQTT is not configured for this data source")
	}
	if err := mqttlive.UserFilter(q.Topic, m.AllowSys, m.TopicPrefixes); err != nil {
		return nil, err
	}
	if _, err := newMQTTDecoders(q.Template, q.PayloadFormat, q.JSON); err != nil {
		return nil, fmt.Errorf("mqtt query: %w", err)
	}
	sel := &Selector{Kind: KindMQTT, Seam: time.Now(), Nonce: randomNonce(), Topic: q.Topic, Template: q.Template, PayloadFormat: q.PayloadFormat, JSON: q.JSON}
	f := frames.LabelsPush[float64](q.RefID, "value", nil, nil, nil)
	f.Name = q.RefID
	f.Meta = &data.FrameMeta{Type: data.FrameTypeTimeSeriesMulti, TypeVersion: data.FrameTypeVersion{0, 1}}
	e.setChannel(ctx, f, sel)
	return data.Frames{f}, nil
}

// mqttSource is the source of a group of MQTT channels (share.go): one subscription of the instance's client,
// one decoder, one frame per interval for every member.
type mqttSource struct {
	e           *Engine
	sel         *Selector
	dec         *mqttDecoders
	client      *mqttlive.Client
	feed        *feed[mqttlive.Message]
	unsubscribe func()

	// group goroutine only
	active   []*member
	readings []telemetry.Reading
	labels   map[labelKey]string // rendered label sets, cached per series
	rejected int
}

type labelKey struct{ topic, device, metric, sensor string }

// newMQTTSource subscribes for the group's first member, which gets everything the subscription delivers (for
// a filter the client already has, the client first replays its cached last messages).
func (e *Engine) newMQTTSource(sel *Selector, first *member) (*mqttSource, error) {
	dec, err := newMQTTDecoders(sel.Template, sel.PayloadFormat, sel.JSON)
	if err != nil {
		return nil, err
	}
	s := &mqttSource{e: e, sel: sel, dec: dec, client: e.MQTTClient(), feed: newFeed[mqttlive.Message](e.settings), active: []*member{first}}
	if s.unsubscribe, err = s.client.Subscribe(sel.Topic, func(ms []mqttlive.Message) { s.feed.push(ms...) }); err != nil {
		return nil, err
	}
	return s, nil
}

// join implements groupSource: the member gets the client's cached last messages of the filter, read at the
// same point of the client's delivery as its join is marked, and then what the group sends.
func (s *mqttSource) join(m *member) {
	s.client.Cached(s.sel.Topic, func(cached []mqttlive.Message) { s.feed.join(m, cached) })
}

func (s *mqttSource) close() { s.unsubscribe() }

// run implements groupSource.
func (s *mqttSource) run(ctx context.Context) error {
	defer s.unsubscribe()
	return s.feed.run(ctx, s.flush, func(j joinMark) error {
		if len(j.replay) > 0 {
			f, n := s.frame(j.replay, 0)
			if f != nil {
				if err := s.e.sendTo(j.m, f, n); err != nil {
					return err
				}
			}
		}
		s.active = append(s.active, j.m)
		return nil
	})
}

// flush sends one paced segment to the members.
func (s *mqttSource) flush(msgs []mqttlive.Message, dropped int) error {
	s.active = slices.DeleteFunc(s.active, (*member).gone)
	f, n := s.frame(msgs, dropped)
	if f == nil {
		return nil
	}
	return s.e.broadcast(s.active, f, n)
}

// frame decodes msgs into one labels push-mode frame and its row count; nil when there is nothing to send.
func (s *mqttSource) frame(msgs []mqttlive.Message, dropped int) (*data.Frame, int) {
	s.readings = s.readings[:0]
	labels := make([]string, 0, len(msgs))
	for i := range msgs {
		n0 := len(s.readings)
		var err error
		s.readings, err = s.dec.decode(&msgs[i], s.readings)
		if err != nil {
			s.rejected++
			if s.rejected <= 10 || s.rejected%1000 == 0 {
				backend.Logger.Debug("Live MQTT message not decoded", "topic", msgs[i].Topic, "error", err, "count", s.rejected)
			}
			continue
		}
		for j := n0; j < len(s.readings); j++ {
			labels = append(labels, s.label(msgs[i].Topic, &s.readings[j]))
		}
	}
	if len(s.readings) == 0 && dropped == 0 {
		return nil, 0
	}
	times := make([]time.Time, len(s.readings))
	values := make([]float64, len(s.readings))
	for i := range s.readings {
		times[i] = s.readings[i].Time
		values[i] = s.readings[i].Value
	}
	f := frames.LabelsPush("", "value", labels, times, values)
	if dropped > 0 {
		s.e.dropped.Add(int64(dropped))
		f.AppendNotices(data.Notice{Severity: data.NoticeSeverityWarning,
			Text: fmt.Sprintf("Live: %d messages were dropped because they arrived faster than the stream could send them", dropped)})
		backend.Logger.Warn("Live MQTT stream buffer full: messages dropped", "dropped", dropped)
	}
	return f, len(s.readings)
}

// noticeFrame is an empty frame of the stream's schema carrying a notice.
func (s *mqttSource) noticeFrame(text string) *data.Frame {
	f := frames.LabelsPush[float64]("", "value", nil, nil, nil)
	f.AppendNotices(data.Notice{Severity: data.NoticeSeverityWarning, Text: text})
	return f
}

func (s *mqttSource) label(topic string, r *telemetry.Reading) string {
	k := labelKey{topic, r.Device, r.Metric, r.Sensor}
	if l, ok := s.labels[k]; ok {
		return l
	}
	if s.labels == nil || len(s.labels) > 100_000 {
		s.labels = map[labelKey]string{}
	}
	device := r.Device
	if device == topic {
		device = "" // default labeling: the topic label says it already
	}
	l := frames.PromLabels("topic", topic, "device", device, "metric", r.Metric, "sensor", r.Sensor)
	s.labels[k] = l
	return l
}
