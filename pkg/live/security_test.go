package live

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/jackc/pgx/v5"

	"github.com/fieldline-iot/fieldline/internal/telemetry"
)

// unreachablePG is a PostgreSQL that is configured but never answers: a selector is refused by validation,
// not because its source is missing.
type unreachablePG struct{}

func (unreachablePG) ReadOnly(context.Context, func(pgx.Tx) error) error {
	return fmt.Errorf("unreachable")
}
func (unreachablePG) ConnConfig() *pgx.ConnConfig {
	c, _ := pgx.ParseConfig("postgres://127.0.0.1:1/none?connect_timeout=1")
	return c
}

// testEngine has both sources configured (neither reachable) and a fixed signing key.
func testEngine(uid string) *Engine {
	return New(Config{UID: uid, Secure: map[string]string{"pw": "secret"}, Postgres: unreachablePG{},
		Settings: Settings{SeamDelay: time.Second, FrameInterval: 100 * time.Millisecond, MaxBufferedRows: 100, QoS: 1},
		MQTT:     &MQTT{Options: func(string) *mqtt.ClientOptions { return mqtt.NewClientOptions().AddBroker("tcp://127.0.0.1:1") }}})
}

type discardSender struct{}

func (discardSender) Send(*backend.StreamPacket) error { return nil }

// signedPath encodes sel and signs it with key, as ChannelPath does (for forged paths in tests).
func signedPath(key []byte, sel *Selector) string {
	payload := sel.marshal()
	payload = append(payload, pathMAC(key, payload)...)
	return string(rune(sel.Kind)) + "/" + base64.RawURLEncoding.EncodeToString(payload)
}

// oldUIDKey is how channel paths were signed before: keyed by the data source UID, which every Viewer sees.
func oldUIDKey(uid string) []byte { return []byte("fieldline-live/" + uid) }

func oldMAC(uid string, payload []byte) []byte {
	m := hmac.New(sha256.New, oldUIDKey(uid))
	m.Write(payload)
	return m.Sum(nil)[:liveMACLen]
}

// TestForgedLivePaths: a Viewer knows the data source UID, so paths signed with it (as they used to be) are
// refused; and a selector that passes the signature (as if the key leaked) is validated again: no $SYS,
// $share or $-topic filter, no one-series selector without its series (which used to panic RunStream).
func TestForgedLivePaths(t *testing.T) {
	e := testEngine("u")
	defer e.Close()
	sub := func(path string) backend.SubscribeStreamStatus {
		r, err := e.SubscribeStream(context.Background(), &backend.SubscribeStreamRequest{
			PluginContext: backend.PluginContext{DataSourceInstanceSettings: &backend.DataSourceInstanceSettings{UID: e.uid}}, Path: path})
		if err != nil {
			t.Fatal(err)
		}
		return r.Status
	}
	forgeWithUID := func(sel *Selector) string {
		payload := sel.marshal()
		payload = append(payload, oldMAC(e.uid, payload)...)
		return string(rune(sel.Kind)) + "/" + base64.RawURLEncoding.EncodeToString(payload)
	}
	if s := sub(forgeWithUID(&Selector{Kind: KindMQTT, Topic: "#"})); s != backend.SubscribeStreamStatusNotFound {
		t.Errorf("a path signed with the public UID is accepted: %v", s)
	}
	for _, sel := range []*Selector{
		{Kind: KindMQTT, Topic: "$SYS/#"},
		{Kind: KindMQTT, Topic: "$share/fieldline/pico/+/+"},
		{Kind: KindMQTT, Topic: "$queue/pico/#"},
		{Kind: KindMQTT, Topic: "$internal/x"},
		{Kind: KindPostgres, Metric: "temperature", Series: true}, // no device, no sensor
		{Kind: KindPostgres, Metric: "temperature", Series: true, Devices: []string{"a", "b"}, Sensors: []string{""}}, // two
		{Kind: KindPostgres, Metric: strings.Repeat("m", telemetry.MaxLabelBytes+1)},
	} {
		path := signedPath(e.key, sel)
		if s := sub(path); s != backend.SubscribeStreamStatusNotFound {
			t.Errorf("forged selector %+v accepted: %v", sel, s)
		}
		err := e.RunStream(context.Background(), &backend.RunStreamRequest{
			PluginContext: backend.PluginContext{DataSourceInstanceSettings: &backend.DataSourceInstanceSettings{UID: e.uid}}, Path: path},
			backend.NewStreamSender(discardSender{}))
		if err == nil {
			t.Errorf("RunStream ran a forged selector %+v", sel)
		}
	}
}

// FuzzLivePath: no payload that passes the signature panics ParsePath or what RunStream builds from it.
func FuzzLivePath(f *testing.F) {
	e := testEngine("fuzz")
	e.key = []byte("fuzz-key")
	e.settings = Settings{FrameInterval: 100 * time.Millisecond, MaxBufferedRows: 100}
	for _, sel := range []*Selector{
		{Kind: KindPostgres, Metric: "temperature", Series: true, Devices: []string{"pico"}, Sensors: []string{""}},
		{Kind: KindPostgres, Metric: "t", Devices: []string{"a"}, ExcludeDevices: []string{"a"}, ExcludeSensors: []string{""}, Agg: "avg", Interval: time.Minute},
		{Kind: KindMQTT, Topic: "pico/+/+", Template: "{device}/{metric}/{sensor}", PayloadFormat: "value"},
	} {
		f.Add(sel.marshal())
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		path := signedPath(e.key, &Selector{}) // shape only
		path = path[:2] + base64.RawURLEncoding.EncodeToString(append(append([]byte{}, payload...), pathMAC(e.key, payload)...))
		if len(payload) > 1 {
			path = string(rune(payload[1])) + path[1:]
		}
		sel, _, err := e.ParsePath("fuzz", path)
		if err != nil {
			return
		}
		switch sel.Kind {
		case KindPostgres:
			s := newPGStream(e, sel)
			s.rows = append(s.rows, telemetry.Reading{Time: time.Unix(0, 0), Device: "x", Sensor: "y", Metric: sel.Metric, Value: 1})
			_ = s.frameFor(s.rows, "")
		case KindMQTT:
			_, _ = newMQTTDecoders(sel.Template, sel.PayloadFormat, sel.JSON)
		}
	})
}

// TestLiveRegistryBounds: the registry of long selectors is bounded in bytes; a user over their quota evicts
// only their own idle entries; past the instance bound a young pending entry of another user is kept and the
// new one refused; an entry in use by a stream is never evicted.
func TestLiveRegistryBounds(t *testing.T) {
	var r registry
	now := time.Unix(1_700_000_000, 0)
	big := func(n int) *Selector {
		ex := make([]string, n)
		for i := range ex {
			ex[i] = strings.Repeat("d", 200) + fmt.Sprint(i)
		}
		return &Selector{Kind: KindPostgres, Metric: "temperature", ExcludeDevices: ex, ExcludeSensors: make([]string, n)}
	}
	victim, err := r.put(big(100), "bob", now)
	if err != nil {
		t.Fatal(err)
	}
	// alice fills far more than her quota: only her own entries go.
	var aliceIDs []string
	for i := range 2000 {
		id, err := r.put(big(100), "alice", now.Add(time.Duration(i)*time.Millisecond))
		if err != nil {
			t.Fatalf("alice's put %d: %v", i, err)
		}
		aliceIDs = append(aliceIDs, id)
	}
	if r.get(victim) == nil {
		t.Fatal("alice's channels evicted bob's pending channel")
	}
	if n, b := r.stats(); b > liveRegistryBytes || r.owners["alice"].bytes > liveRegistryUserBytes {
		t.Fatalf("registry %d entries, %d bytes; alice %d bytes: over the bounds", n, b, r.owners["alice"].bytes)
	}
	if r.get(aliceIDs[0]) != nil || r.get(aliceIDs[len(aliceIDs)-1]) == nil {
		t.Error("alice's quota did not evict her least recently used entry first")
	}
	// Many users: the instance bound holds; young pending entries of others are not evicted: the new put fails.
	var refused error
	for u := 0; u < 20 && refused == nil; u++ {
		for i := 0; i < 200; i++ {
			if _, err := r.put(big(100), fmt.Sprint("user", u), now.Add(time.Second)); err != nil {
				refused = err
				break
			}
		}
	}
	if refused == nil {
		t.Fatal("the instance bound was never reached")
	}
	if _, b := r.stats(); b > liveRegistryBytes {
		t.Fatalf("registry holds %d bytes, bound %d", b, liveRegistryBytes)
	}
	if r.get(victim) == nil {
		t.Fatal("a young pending channel of another user was evicted")
	}
	// Once old enough, idle entries make room; an entry held by a stream never goes.
	release := r.hold(victim)
	later := now.Add(liveRegistryGrace + time.Minute)
	if _, err := r.put(big(100), "carol", later); err != nil {
		t.Fatalf("put after the grace period: %v", err)
	}
	for i := 0; i < 5000; i++ {
		_, _ = r.put(big(100), fmt.Sprint("u", i%50), later.Add(liveRegistryTTL*2))
	}
	if r.get(victim) == nil {
		t.Fatal("an entry in use by a running stream was evicted")
	}
	release()
}
