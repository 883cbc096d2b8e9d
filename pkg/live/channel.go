package live

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"sort"
	"strings"
	"time"

	"github.com/fieldline-iot/fieldline/internal/telemetry"
	"github.com/fieldline-iot/fieldline/internal/timebucket"
	"github.com/fieldline-iot/fieldline/pkg/live/mqttlive"
	"github.com/fieldline-iot/fieldline/pkg/sqlquery"
)

// Live channel paths. Every live query execution gets channels of its own (seam time and a random nonce in
// the path), so each Grafana stream is the first subscriber of its channel and is seeded with the frame of
// its own QueryData:
//
//	p/<selector>   a PostgreSQL live series (or, for a query without any series yet, the whole selector)
//	m/<selector>   an MQTT topic filter
//	r/<id>         a selector too long for the 160-character channel, kept in the instance (expires unused)
//
// <selector> is base64url (no padding) of a compact binary form ending in a 6-byte MAC keyed by a secret only
// the instance knows (derived from the data source's decrypted secure settings, else random per process; never
// the UID, which every Viewer sees): a path made for another data source, or edited by hand, is rejected by
// SubscribeStream, and a decoded selector is validated again (its topic filter, its lists) before it is used.
const (
	maxChannelLen    = 160
	liveSelVersion   = 2 // 2: MQTT selectors carry JSON field paths and the payload time field
	liveMACLen       = 6
	liveRegistryTTL  = time.Hour
	KindPostgres     = 'p'
	KindMQTT         = 'm'
	kindRegistryPath = 'r'
	// maxExcludedSeries bounds a "new series" selector: a query with more series gets no such channel.
	maxExcludedSeries = 10_000
)

// Selector is what a stream needs to know, decoded from the channel path.
type Selector struct {
	Kind    byte      // KindPostgres | KindMQTT
	Seam    time.Time // S: history < S, stream ≥ S (ms precision); postgres only
	Nonce   uint32
	Metric  string
	Devices []string // nil: every device
	Sensors []string // nil: every sensor; "" is "no sensor"
	// Series is true when the channel carries one series (exact device and sensor): frames are wide
	// (time, value). Otherwise frames use Grafana's labels push mode (labels, time, value).
	Series bool
	// States is true for a states query: the stream reads the states table and StatesChannel, values are text.
	States bool
	// Aggregated builder queries: the stream emits one value per closed bucket of Interval (Agg = avg, min, …).
	Agg      string
	Interval time.Duration
	// New series of a query: the selector's series NOT among these (device, sensor) pairs, which the query's
	// own series channels carry (parallel lists; labels push mode).
	ExcludeDevices, ExcludeSensors []string
	// MQTT
	Topic, Template, PayloadFormat string
	JSON                           MQTTJSON
}

func (s *Selector) marshal() []byte {
	b := []byte{liveSelVersion, s.Kind}
	b = binary.AppendVarint(b, s.Seam.UnixMilli())
	b = binary.BigEndian.AppendUint32(b, s.Nonce)
	flags := byte(0)
	if s.Series {
		flags |= 1
	}
	if s.Agg != "" {
		flags |= 2
	}
	if s.ExcludeDevices != nil {
		flags |= 4
	}
	if s.States {
		flags |= 8
	}
	b = append(b, flags)
	b = appendStr(b, s.Metric)
	b = appendList(b, s.Devices)
	b = appendList(b, s.Sensors)
	if s.Agg != "" {
		b = appendStr(b, s.Agg)
		b = binary.AppendUvarint(b, uint64(s.Interval.Microseconds()))
	}
	if s.ExcludeDevices != nil {
		b = appendList(b, s.ExcludeDevices)
		b = appendList(b, s.ExcludeSensors)
	}
	if s.Kind == KindMQTT {
		b = appendStr(b, s.Topic)
		b = appendStr(b, s.Template)
		b = appendStr(b, s.PayloadFormat)
		b = appendList(b, s.JSON.Fields)
		b = appendStr(b, s.JSON.TimeField)
		b = appendStr(b, s.JSON.TimeFormat)
	}
	return b
}

func appendStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendList(b []byte, l []string) []byte {
	if l == nil {
		return binary.AppendUvarint(b, 0)
	}
	b = binary.AppendUvarint(b, uint64(len(l))+1)
	for _, s := range l {
		b = appendStr(b, s)
	}
	return b
}

var errBadSelector = errors.New("malformed live channel path")

type selReader struct {
	b   []byte
	err bool
}

func (r *selReader) byte() byte {
	if len(r.b) == 0 {
		r.err = true
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *selReader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = true
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *selReader) str() string {
	n := r.uvarint()
	if r.err || n > uint64(len(r.b)) {
		r.err = true
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

// list reads a selector list (at most sqlquery.MaxSelectorValues values, like the query's own lists).
func (r *selReader) list() []string { return r.listMax(sqlquery.MaxSelectorValues) }

// longList reads an exclusion list: one entry per series of a query, bounded by what a path can carry.
func (r *selReader) longList() []string { return r.listMax(maxExcludedSeries) }

func (r *selReader) listMax(max uint64) []string {
	n := r.uvarint()
	if r.err || n == 0 {
		return nil
	}
	if n-1 > max || n-1 > uint64(len(r.b)) {
		r.err = true
		return nil
	}
	l := make([]string, 0, n-1)
	for i := uint64(1); i < n && !r.err; i++ {
		l = append(l, r.str())
	}
	return l
}

func unmarshalSelector(b []byte) (*Selector, error) {
	r := &selReader{b: b}
	if r.byte() != liveSelVersion {
		return nil, errBadSelector
	}
	s := &Selector{Kind: r.byte()}
	ms, n := binary.Varint(r.b)
	if n <= 0 {
		return nil, errBadSelector
	}
	r.b = r.b[n:]
	s.Seam = time.UnixMilli(ms).UTC()
	if len(r.b) < 5 {
		return nil, errBadSelector
	}
	s.Nonce = binary.BigEndian.Uint32(r.b)
	r.b = r.b[4:]
	flags := r.byte()
	s.Series = flags&1 == 1
	s.States = flags&8 != 0
	s.Metric = r.str()
	s.Devices = r.list()
	s.Sensors = r.list()
	if flags&2 != 0 {
		s.Agg = r.str()
		s.Interval = time.Duration(r.uvarint()) * time.Microsecond
		if a, err := sqlquery.ParseAggregation(s.Agg); err != nil || a == sqlquery.None || timebucket.Validate(s.Interval) != nil {
			return nil, errBadSelector
		}
	}
	if flags&4 != 0 {
		s.ExcludeDevices = r.longList()
		s.ExcludeSensors = r.longList()
		if s.ExcludeDevices == nil || len(s.ExcludeDevices) != len(s.ExcludeSensors) || s.Series {
			return nil, errBadSelector
		}
	}
	// A one-series channel names exactly one series: the stream indexes Devices[0] and Sensors[0]. States are
	// never aggregated, and only PostgreSQL has them.
	if s.Series && (len(s.Devices) != 1 || len(s.Sensors) != 1) || s.States && (s.Agg != "" || s.Kind != KindPostgres) {
		return nil, errBadSelector
	}
	for _, l := range [][]string{{s.Metric}, s.Devices, s.Sensors, s.ExcludeDevices, s.ExcludeSensors} {
		for _, v := range l {
			if len(v) > telemetry.MaxLabelBytes {
				return nil, errBadSelector
			}
		}
	}
	switch s.Kind {
	case KindPostgres:
		if s.Metric == "" {
			return nil, errBadSelector
		}
	case KindMQTT:
		s.Topic = r.str()
		s.Template = r.str()
		s.PayloadFormat = r.str()
		s.JSON.Fields = r.listMax(MaxJSONFields)
		s.JSON.TimeField = r.str()
		s.JSON.TimeFormat = r.str()
		if s.Topic == "" || s.JSON.check() != nil {
			return nil, errBadSelector
		}
	default:
		return nil, errBadSelector
	}
	if r.err || len(r.b) != 0 {
		return nil, errBadSelector
	}
	return s, nil
}

// channelKey is the instance's channel-signing key. From the decrypted secure settings (with the UID) when there
// are any: every Grafana server of an HA setup derives the same key, and no Viewer can read them; else random
// for this process (channels then work only on the server that made them, until the plugin restarts).
func channelKey(uid string, secure map[string]string) []byte {
	keys := make([]string, 0, len(secure))
	for k, v := range secure {
		if v != "" {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		k := make([]byte, 32)
		_, _ = rand.Read(k)
		return k
	}
	sort.Strings(keys)
	m := hmac.New(sha256.New, []byte("fieldline-live-key/v2"))
	m.Write([]byte(uid))
	for _, k := range keys {
		m.Write([]byte{0})
		m.Write([]byte(k))
		m.Write([]byte{0})
		m.Write([]byte(secure[k]))
	}
	return m.Sum(nil)
}

func pathMAC(key []byte, payload []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(payload)
	return m.Sum(nil)[:liveMACLen]
}

// ChannelPath encodes sel into a path of this data source's channel, falling back to the registry (under the
// requesting user's quota) when the channel would exceed 160 characters.
func (e *Engine) ChannelPath(sel *Selector, owner string) (string, error) {
	payload := sel.marshal()
	payload = append(payload, pathMAC(e.key, payload)...)
	path := string(rune(sel.Kind)) + "/" + base64.RawURLEncoding.EncodeToString(payload)
	if len(e.Channel(path)) <= maxChannelLen {
		return path, nil
	}
	id, err := e.registry.put(sel, owner, time.Now())
	if err != nil {
		return "", err
	}
	return string(rune(kindRegistryPath)) + "/" + id, nil
}

// Channel is the full Grafana Live channel for a path.
func (e *Engine) Channel(path string) string { return "ds/" + e.uid + "/" + path }

// ParsePath decodes and authenticates a channel path. uid is the data source the request came for.
func (e *Engine) ParsePath(uid, path string) (*Selector, string, error) {
	if uid != "" && uid != e.uid {
		return nil, "", errBadSelector
	}
	if len(e.Channel(path)) > maxChannelLen || !validPathChars(path) {
		return nil, "", errBadSelector
	}
	kind, rest, ok := strings.Cut(path, "/")
	if !ok || len(kind) != 1 || rest == "" || strings.Contains(rest, "/") {
		return nil, "", errBadSelector
	}
	if kind[0] == kindRegistryPath {
		sel := e.registry.get(rest)
		if sel == nil {
			return nil, "", errors.New("unknown or expired live channel: refresh the panel")
		}
		return sel, rest, nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(rest)
	if err != nil || len(raw) <= liveMACLen {
		return nil, "", errBadSelector
	}
	payload, mac := raw[:len(raw)-liveMACLen], raw[len(raw)-liveMACLen:]
	if !hmac.Equal(mac, pathMAC(e.key, payload)) {
		return nil, "", errBadSelector
	}
	sel, err := unmarshalSelector(payload)
	if err != nil || sel.Kind != kind[0] {
		return nil, "", errBadSelector
	}
	if err := e.checkSelector(sel); err != nil {
		return nil, "", err
	}
	return sel, "", nil
}

// checkSelector applies the data source's rules to a decoded selector (as to the query it came from): an MQTT
// filter must pass mqttlive.UserFilter with the data source's settings.
func (e *Engine) checkSelector(sel *Selector) error {
	if sel.Kind == KindMQTT {
		m := e.cfg.MQTT
		if m == nil {
			return errBadSelector
		}
		if err := mqttlive.UserFilter(sel.Topic, m.AllowSys, m.TopicPrefixes); err != nil {
			return err
		}
		if _, err := newMQTTDecoders(sel.Template, sel.PayloadFormat, sel.JSON); err != nil {
			return errBadSelector
		}
	}
	return nil
}

func validPathChars(p string) bool {
	if p == "" {
		return false
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("_-=./", c) >= 0) {
			return false
		}
	}
	return true
}

func randomNonce() uint32 {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return binary.BigEndian.Uint32(b[:])
}
