package plugin

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/jackc/pgx/v5"

	"github.com/fieldline-iot/fieldline/internal/ingesterproc"
	"github.com/fieldline-iot/fieldline/internal/telemetry"
	"github.com/fieldline-iot/fieldline/internal/testsvc"
)

// signedPath encodes sel and signs it with key, as channelPath does (for forged paths in tests).
func signedPath(key []byte, sel *liveSelector) string {
	payload := sel.marshal()
	payload = append(payload, liveMAC(key, payload)...)
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
	d := mqttDS(t)
	sub := func(path string) backend.SubscribeStreamStatus {
		r, err := d.SubscribeStream(context.Background(), &backend.SubscribeStreamRequest{
			PluginContext: backend.PluginContext{DataSourceInstanceSettings: &backend.DataSourceInstanceSettings{UID: d.uid}}, Path: path})
		if err != nil {
			t.Fatal(err)
		}
		return r.Status
	}
	forgeWithUID := func(sel *liveSelector) string {
		payload := sel.marshal()
		payload = append(payload, oldMAC(d.uid, payload)...)
		return string(rune(sel.Kind)) + "/" + base64.RawURLEncoding.EncodeToString(payload)
	}
	if s := sub(forgeWithUID(&liveSelector{Kind: kindMQTT, Topic: "#"})); s != backend.SubscribeStreamStatusNotFound {
		t.Errorf("a path signed with the public UID is accepted: %v", s)
	}
	for _, sel := range []*liveSelector{
		{Kind: kindMQTT, Topic: "$SYS/#"},
		{Kind: kindMQTT, Topic: "$share/fieldline/pico/+/+"},
		{Kind: kindMQTT, Topic: "$queue/pico/#"},
		{Kind: kindMQTT, Topic: "$internal/x"},
		{Kind: kindPostgres, Metric: "temperature", Series: true}, // no device, no sensor
		{Kind: kindPostgres, Metric: "temperature", Series: true, Devices: []string{"a", "b"}, Sensors: []string{""}}, // two
		{Kind: kindPostgres, Metric: strings.Repeat("m", telemetry.MaxLabelBytes+1)},
	} {
		path := signedPath(d.live.key, sel)
		if s := sub(path); s != backend.SubscribeStreamStatusNotFound {
			t.Errorf("forged selector %+v accepted: %v", sel, s)
		}
		err := d.RunStream(context.Background(), &backend.RunStreamRequest{
			PluginContext: backend.PluginContext{DataSourceInstanceSettings: &backend.DataSourceInstanceSettings{UID: d.uid}}, Path: path},
			backend.NewStreamSender(newFrameSink()))
		if err == nil {
			t.Errorf("RunStream ran a forged selector %+v", sel)
		}
	}
}

// FuzzLivePath: no payload that passes the signature panics parsePath or what RunStream builds from it.
func FuzzLivePath(f *testing.F) {
	d := &Datasource{uid: "fuzz", settings: Settings{MQTT: &MQTTSettings{URL: "tcp://127.0.0.1:1"}}}
	d.live.key = []byte("fuzz-key")
	d.live.settings = LiveSettings{FrameInterval: 100 * time.Millisecond, MaxBufferedRows: 100}
	for _, sel := range []*liveSelector{
		{Kind: kindPostgres, Metric: "temperature", Series: true, Devices: []string{"pico"}, Sensors: []string{""}},
		{Kind: kindPostgres, Metric: "t", Devices: []string{"a"}, ExcludeDevices: []string{"a"}, ExcludeSensors: []string{""}, Agg: "avg", Interval: time.Minute},
		{Kind: kindMQTT, Topic: "pico/+/+", Template: "{device}/{metric}/{sensor}", PayloadFormat: "value"},
	} {
		f.Add(sel.marshal())
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		path := signedPath(d.live.key, &liveSelector{}) // shape only
		path = path[:2] + base64.RawURLEncoding.EncodeToString(append(append([]byte{}, payload...), liveMAC(d.live.key, payload)...))
		if len(payload) > 1 {
			path = string(rune(payload[1])) + path[1:]
		}
		sel, _, err := d.parsePath("fuzz", path)
		if err != nil {
			return
		}
		switch sel.Kind {
		case kindPostgres:
			s := newPGStream(d, sel)
			s.rows = append(s.rows, telemetry.Reading{Time: time.Unix(0, 0), Device: "x", Sensor: "y", Metric: sel.Metric, Value: 1})
			_ = s.frame()
		case kindMQTT:
			_, _ = newMQTTDecoders(sel.Template, sel.PayloadFormat)
		}
	})
}

// TestLiveRegistryBounds: the registry of long selectors is bounded in bytes; a user over their quota evicts
// only their own idle entries; past the instance bound a young pending entry of another user is kept and the
// new one refused; an entry in use by a stream is never evicted.
func TestLiveRegistryBounds(t *testing.T) {
	var r liveRegistry
	now := time.Unix(1_700_000_000, 0)
	big := func(n int) *liveSelector {
		ex := make([]string, n)
		for i := range ex {
			ex[i] = strings.Repeat("d", 200) + fmt.Sprint(i)
		}
		return &liveSelector{Kind: kindPostgres, Metric: "temperature", ExcludeDevices: ex, ExcludeSensors: make([]string, n)}
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

// TestShareHijackRefused: a live MQTT query (or /topics) with a $share filter would make the plugin a member
// of the ingester's share group and take, then acknowledge, part of its messages, lost to the database for
// good (measured: the ingester stored 50 of 100). With a real ingester in a share group, the query is
// refused, /topics too, and the ingester stores every message.
func TestShareHijackRefused(t *testing.T) {
	pgURL, _ := newPostgres(t, nil)
	broker := testsvc.MQTTURL(t)
	prefix := testsvc.RandomName("hijack")
	clientID := testsvc.RandomName("fieldline-ingester-hijack-")
	t.Cleanup(func() { ingesterproc.DropSession(broker, clientID) })
	bin := filepath.Join(t.TempDir(), "fieldline-ingester")
	if out, err := execGo("build", "-o", bin, "github.com/fieldline-iot/fieldline/ingester"); err != nil {
		t.Fatalf("build ingester: %v\n%s", err, out)
	}
	cfg := fmt.Sprintf(`mqtt:
  url: %s
  client_id: %s
  subscriptions:
    - {filter: '%s/+/+', share_group: fieldline, qos: 1, template: '%s/{device}/{metric}', format: value}
postgres:
  url: %s
spool:
  dir: %s
`, broker, clientID, prefix, prefix, pgURL, t.TempDir())
	ingesterproc.Start(t, bin, cfg, os.Environ())

	d := mqttDS(t)
	for _, topic := range []string{"$share/fieldline/" + prefix + "/+/+", "$queue/" + prefix + "/#", "$SYS/#"} {
		r := runOne(t, d, dq(t, "M", map[string]any{"source": "mqtt", "topic": topic, "template": prefix + "/{device}/{metric}"},
			time.Now().Add(-time.Minute), time.Now(), time.Second))
		if r.Error == nil {
			// The old plugin: run the stream it offers while the devices publish, as a panel would.
			sink, _ := runStream(t, d, r.Frames[0].Meta.Channel)
			_ = sink
			t.Errorf("live query with topic %q accepted", topic)
		}
	}
	srv := resourceServer(t, d)
	resp, err := http.Get(srv + "/topics?filter=" + "%24SYS%2F%23")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("/topics?filter=$SYS/#: status %d, want 400", resp.StatusCode)
	}

	pub := mqttPublisher(t)
	for i := range 100 {
		publish(t, pub, prefix+"/dev/temp", false, fmt.Sprint(i))
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		var n int
		if err := pgxQueryRow(t, pgURL, "SELECT count(DISTINCT value) FROM readings", &n); err != nil {
			t.Fatal(err)
		}
		if n == 100 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the ingester stored %d of 100 messages", n)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestFluxCannotReachOutside: code Flux that imports http (or reads another InfluxDB with host:) is refused
// before it reaches InfluxDB: the listener the query targets gets nothing. influx.restrictFlux=false lifts it.
func TestFluxCannotReachOutside(t *testing.T) {
	ix := newInflux(t, dataset())
	var hits atomic.Int64
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { hits.Add(1) }), ReadHeaderTimeout: time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	d := newDS(t, settingsFor(t, "", &ix, nil))
	for _, flux := range []string{
		fmt.Sprintf("import \"http\"\nhttp.post(url: \"http://%s/\", data: bytes(v: \"x\"))", ln.Addr()),
		fmt.Sprintf("from(bucket: %q, host: \"http://%s\", token: \"t\") |> range(start: -1h)", ix.Bucket, ln.Addr()),
	} {
		r := runOne(t, d, dq(t, "F", map[string]any{"source": "flux", "mode": "code", "flux": flux}, base, base.Add(time.Hour), time.Minute))
		if r.Error == nil || !strings.Contains(r.Error.Error(), "not allowed") {
			t.Errorf("code Flux not refused: %v\n%s", r.Error, flux)
		}
	}
	time.Sleep(500 * time.Millisecond)
	if n := hits.Load(); n != 0 {
		t.Fatalf("InfluxDB made %d requests to the listener on a Viewer's behalf", n)
	}
	// An ordinary code Flux query still runs.
	r := runOne(t, d, dq(t, "G", map[string]any{"source": "flux", "mode": "code",
		"flux": fmt.Sprintf("import \"strings\"\nfrom(bucket: %q) |> range(start: %s, stop: %s) |> filter(fn: (r) => strings.hasPrefix(v: r._measurement, prefix: \"temp\"))",
			ix.Bucket, base.Format(time.RFC3339), base.Add(time.Hour).Format(time.RFC3339))}, base, base.Add(time.Hour), time.Minute))
	if r.Error != nil || len(r.Frames) == 0 {
		t.Fatalf("a safe code Flux query: %v", r.Error)
	}
}

// TestFluxByteBudget: a code Flux answer larger than maxResponseBytes fails with an error naming the setting.
func TestFluxByteBudget(t *testing.T) {
	ix := newInflux(t, dataset())
	d := newDS(t, settingsFor(t, "", &ix, map[string]any{"maxResponseBytes": 1 << 20}))
	// Every point of the dataset (2 880) with a 1 000-byte column: about 3 MB of CSV.
	flux := fmt.Sprintf(`from(bucket: %q) |> range(start: %s, stop: %s) |> map(fn: (r) => ({r with pad: %q}))`, ix.Bucket,
		base.Format(time.RFC3339), base.Add(3*time.Hour).Format(time.RFC3339), strings.Repeat("x", 1000))
	r := runOne(t, d, dq(t, "F", map[string]any{"source": "flux", "mode": "code", "flux": flux, "format": "table"}, base, base.Add(3*time.Hour), time.Minute))
	if r.Error == nil || !strings.Contains(r.Error.Error(), "maxResponseBytes") {
		t.Fatalf("want the byte budget error, got %v (%d frames)", r.Error, len(r.Frames))
	}
}

func execGo(args ...string) ([]byte, error) { return exec.Command("go", args...).CombinedOutput() }

func pgxQueryRow(t *testing.T, url, sql string, dst ...any) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer c.Close(ctx)
	return c.QueryRow(ctx, sql).Scan(dst...)
}
