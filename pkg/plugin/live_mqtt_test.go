package plugin

import (
	"context"
	"encoding/json"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/grafana/grafana-plugin-sdk-go/backend"

	"github.com/fieldline-iot/fieldline/internal/testsvc"
)

func mqttPublisher(t testing.TB) mqtt.Client {
	t.Helper()
	o := mqtt.NewClientOptions().AddBroker(testsvc.MQTTURL(t)).SetClientID(testsvc.RandomName("livepub")).
		SetAutoReconnect(true).SetConnectRetry(true).SetMaxReconnectInterval(500 * time.Millisecond)
	c := mqtt.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publisher connect: %v", tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c
}

func publish(t testing.TB, c mqtt.Client, topic string, retained bool, payload string) {
	t.Helper()
	if tok := c.Publish(topic, 1, retained, payload); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publish %s: %v", topic, tok.Error())
	}
}

func mqttDS(t testing.TB) *Datasource {
	extra := map[string]any{"mqtt": map[string]any{"url": testsvc.MQTTURL(t), "qos": 1}}
	for k, v := range liveExtra {
		extra[k] = v
	}
	return newDS(t, settingsFor(t, "", nil, extra))
}

func hasRow(rows []liveRow, series string, v float64) bool {
	for _, r := range rows {
		if r.series == series && r.v == v {
			return true
		}
	}
	return false
}

// TestLiveMQTT: a wildcard subscription gives one series per concrete topic, decoded with the query's
// template; the retained message is shown to the first stream (broker) and to a later one joining the shared
// subscription (cache); one client serves every stream; subscriptions are released with the last stream.
func TestLiveMQTT(t *testing.T) {
	d := mqttDS(t)
	pub := mqttPublisher(t)
	prefix := testsvc.RandomName("live")
	publish(t, pub, prefix+"/retained/temperature", true, "21.5")
	t.Cleanup(func() { publish(t, pub, prefix+"/retained/temperature", true, "") })

	query := func() string {
		r := liveQuery(t, d, "A", map[string]any{"source": "mqtt", "topic": prefix + "/+/temperature",
			"template": prefix + "/{device}/{metric}", "payloadFormat": "value"}, time.Now().Add(-time.Hour), time.Now())
		if r.Error != nil || len(r.Frames) != 1 || r.Frames[0].Meta.Channel == "" || r.Frames[0].Fields[0].Name != "labels" {
			t.Fatalf("mqtt live query: %+v", r)
		}
		return r.Frames[0].Meta.Channel
	}
	series := func(device string) string {
		return `{topic="` + prefix + `/` + device + `/temperature", device="` + device + `", metric="temperature"}`
	}
	ch1 := query()
	s1, stop1 := runStream(t, d, ch1)
	s1.waitRows(t, "retained on first subscribe", 10*time.Second, func(r []liveRow) bool { return hasRow(r, series("retained"), 21.5) })

	publish(t, pub, prefix+"/a/temperature", false, "1")
	publish(t, pub, prefix+"/b/temperature", false, "2")
	publish(t, pub, prefix+"/a/humidity", false, "3")               // not matched by the filter
	publish(t, pub, prefix+"/d/temperature", false, "not a number") // rejected by the decoder, skipped
	rows := s1.waitRows(t, "one series per topic", 10*time.Second, func(r []liveRow) bool {
		return hasRow(r, series("a"), 1) && hasRow(r, series("b"), 2)
	})
	for _, r := range rows {
		if strings.Contains(r.series, "humidity") {
			t.Fatalf("unmatched topic delivered: %v", r)
		}
	}

	// A second panel: its own channel, same filter: no new SUBSCRIBE, so the retained and last values come
	// from the client's cache.
	ch2 := query()
	if ch2 == ch1 {
		t.Fatal("two query executions share a channel")
	}
	s2, stop2 := runStream(t, d, ch2)
	s2.waitRows(t, "cached values for a late joiner", 10*time.Second, func(r []liveRow) bool {
		return hasRow(r, series("retained"), 21.5) && hasRow(r, series("a"), 1) && hasRow(r, series("b"), 2)
	})
	publish(t, pub, prefix+"/c/temperature", false, "4")
	for _, s := range []*frameSink{s1, s2} {
		s.waitRows(t, "both streams live", 10*time.Second, func(r []liveRow) bool { return hasRow(r, series("c"), 4) })
	}
	client := d.live.MQTTClient() // the one the streams share
	if st := d.LiveStats(); st.MQTTConnections != 1 || client.Filters() != 1 {
		t.Fatalf("one client, one shared subscription: %+v, filters %d", st, client.Filters())
	}

	// Default labels (no template): device = topic, metric = last level; JSON payloads.
	r := liveQuery(t, d, "B", map[string]any{"source": "mqtt", "topic": prefix + "/raw/#", "payloadFormat": "json"}, time.Now().Add(-time.Hour), time.Now())
	s3, stop3 := runStream(t, d, r.Frames[0].Meta.Channel)
	time.Sleep(200 * time.Millisecond) // SUBSCRIBE in flight
	publish(t, pub, prefix+"/raw/x/pressure", false, `{"value": 1013.5, "aux": {"t": 7}}`)
	s3.waitRows(t, "default labels", 10*time.Second, func(r []liveRow) bool {
		return hasRow(r, `{topic="`+prefix+`/raw/x/pressure", metric="pressure"}`, 1013.5) &&
			hasRow(r, `{topic="`+prefix+`/raw/x/pressure", metric="aux.t"}`, 7)
	})

	// Streams stopping release the subscriptions.
	stop1()
	stop2()
	stop3()
	deadline := time.Now().Add(5 * time.Second)
	for client.Filters() != 0 || d.LiveStats().Streams != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("filters %d streams %d after every stream stopped", client.Filters(), d.LiveStats().Streams)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// Bad template or format: a query error, not a broken stream.
	bad := runOne(t, d, dq(t, "C", map[string]any{"source": "mqtt", "live": true, "topic": "a/#", "template": "{nope}"}, time.Now().Add(-time.Hour), time.Now(), time.Second))
	if bad.Error == nil {
		t.Fatal("bad template accepted")
	}
}

// TestFaultLiveMQTTBrokerRestart: the shared client reconnects after a broker restart and resubscribes; the
// stream goes on with messages published after the restart.
func TestFaultLiveMQTTBrokerRestart(t *testing.T) {
	d := mqttDS(t)
	pub := mqttPublisher(t)
	prefix := testsvc.RandomName("livefault")
	r := liveQuery(t, d, "A", map[string]any{"source": "mqtt", "topic": prefix + "/#", "template": prefix + "/{device}/{metric}"}, time.Now().Add(-time.Hour), time.Now())
	s, _ := runStream(t, d, r.Frames[0].Meta.Channel)
	series := `{topic="` + prefix + `/n1/temperature", device="n1", metric="temperature"}`
	// Publish until the subscription is in place.
	for v := 1.0; !hasRow(s.rows(), series, v-1); v++ {
		if v > 50 {
			t.Fatal("no message before the restart")
		}
		publish(t, pub, prefix+"/n1/temperature", false, "1")
		time.Sleep(100 * time.Millisecond)
		if hasRow(s.rows(), series, 1) {
			break
		}
	}
	testsvc.Services(t, "restart", "mosquitto")
	// After the restart: keep publishing 1000, 1001, … until the stream shows one of them.
	deadline := time.Now().Add(30 * time.Second)
	for v := 1000.0; ; v++ {
		if pub.IsConnectionOpen() {
			tok := pub.Publish(prefix+"/n1/temperature", 1, false, formatFloat(v))
			tok.WaitTimeout(time.Second)
		}
		time.Sleep(200 * time.Millisecond)
		rows := s.rows()
		if len(rows) > 0 && rows[len(rows)-1].v >= 1000 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no message after the broker restart; rows %v, stats %+v", truncRows(rows), d.LiveStats())
		}
	}
	if st := d.LiveStats(); st.MQTTConnections < 2 {
		t.Fatalf("client did not reconnect: %+v", st)
	}
}

func formatFloat(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

// TestTopicsResource: /topics lists topics seen on the broker under a filter (retained ones at once), from the
// live client's cache and a brief subscription, and rejects a malformed filter.
func TestTopicsResource(t *testing.T) {
	d := mqttDS(t)
	pub := mqttPublisher(t)
	prefix := testsvc.RandomName("topics")
	want := []string{prefix + "/node1/temperature", prefix + "/node2/humidity"}
	for _, topic := range want {
		publish(t, pub, topic, true, "1")
		t.Cleanup(func() { publish(t, pub, topic, true, "") })
	}
	srv := resourceServer(t, d)
	body, status := get(t, srv+"/topics?filter="+url.QueryEscape(prefix+"/#"))
	if status != 200 {
		t.Fatalf("/topics: %d %s", status, body)
	}
	var got []string
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatalf("/topics body %q: %v", body, err)
	}
	if !slices.Equal(got, want) {
		t.Errorf("/topics = %v, want %v", got, want)
	}
	if body, status := get(t, srv+"/topics?filter="+url.QueryEscape("a/#/b")); status != 400 {
		t.Errorf("/topics with a malformed filter: %d %s", status, body)
	}
}

// TestLiveMQTTJSONFields: a live MQTT query on JSON payloads reads only the chosen field paths (each its own
// series, named by its path), stamps them with the payload's time field (not a series of its own), and the
// options survive the channel path; a bad time format or too many paths is refused at query time.
func TestLiveMQTTJSONFields(t *testing.T) {
	d := mqttDS(t)
	pub := mqttPublisher(t)
	prefix := testsvc.RandomName("json")
	r := liveQuery(t, d, "A", map[string]any{"source": "mqtt", "topic": prefix + "/+", "payloadFormat": "json",
		"jsonFields": "temp, env.hum", "jsonTimeField": "ts", "jsonTimeFormat": "unix_ms"}, time.Now().Add(-time.Hour), time.Now())
	if r.Error != nil {
		t.Fatal(r.Error)
	}
	s, _ := runStream(t, d, r.Frames[0].Meta.Channel)
	ts := time.Date(2026, 12, 4, 3, 0, 0, 250_000_000, time.UTC)
	series := func(metric string) string {
		return `{topic="` + prefix + `/node1", metric="` + metric + `"}`
	}
	// Published until seen: the stream subscribes asynchronously, and a message before its SUBSCRIBE is not kept.
	var lastPublish time.Time
	rows := s.waitRows(t, "selected fields", 10*time.Second, func(r []liveRow) bool {
		if time.Since(lastPublish) > 300*time.Millisecond {
			publish(t, pub, prefix+"/node1", false, `{"ts": `+strconv.FormatInt(ts.UnixMilli(), 10)+`, "temp": 21.5, "env": {"hum": 40}, "rssi": -71}`)
			lastPublish = time.Now()
		}
		return hasRow(r, series("temp"), 21.5) && hasRow(r, series("env.hum"), 40)
	})
	for _, row := range rows {
		if row.us != ts.UnixMicro() {
			t.Errorf("%v: time is not the payload's ts %v", row, ts)
		}
		if strings.Contains(row.series, "rssi") || strings.Contains(row.series, `"ts"`) {
			t.Errorf("unselected or time field became a series: %v", row)
		}
	}

	for name, model := range map[string]map[string]any{
		"bad time format": {"source": "mqtt", "topic": prefix + "/+", "payloadFormat": "json", "jsonTimeField": "ts", "jsonTimeFormat": "fortnights"},
		"too many paths":  {"source": "mqtt", "topic": prefix + "/+", "payloadFormat": "json", "jsonFields": strings.Repeat("a,", 65) + "b"},
		"NUL in a path":   {"source": "mqtt", "topic": prefix + "/+", "payloadFormat": "json", "jsonFields": "a\x00b"},
	} {
		if r := liveQuery(t, d, "A", model, time.Now().Add(-time.Hour), time.Now()); r.Error == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestMQTTFixedClientID: with mqtt.clientId the broker sees exactly that id, and the health check and /topics
// reuse the live connection instead of opening a second one with the same id (which would make the broker close
// the first).
func TestMQTTFixedClientID(t *testing.T) {
	broker := testsvc.PrivateMosquitto(t, testsvc.MosquittoOptions{})
	id := testsvc.RandomName("fieldline-fixed-")
	extra := map[string]any{"mqtt": map[string]any{"url": "tcp://127.0.0.1:" + broker.Port, "clientId": id}}
	for k, v := range liveExtra {
		extra[k] = v
	}
	d := newDS(t, settingsFor(t, "", nil, extra))
	r := liveQuery(t, d, "A", map[string]any{"source": "mqtt", "topic": "fixed/#"}, time.Now().Add(-time.Hour), time.Now())
	if r.Error != nil {
		t.Fatal(r.Error)
	}
	runStream(t, d, r.Frames[0].Meta.Channel)
	deadline := time.Now().Add(10 * time.Second)
	for !d.live.MQTTConnected() {
		if time.Now().After(deadline) {
			t.Fatalf("the live client did not connect: %s", broker.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
	res, err := d.CheckHealth(context.Background(), &backend.CheckHealthRequest{})
	if err != nil || res.Status != backend.HealthStatusOk || !strings.Contains(res.Message, id) {
		t.Fatalf("health: %v %v %s", err, res.Status, res.Message)
	}
	srv := resourceServer(t, d)
	if _, status := get(t, srv+"/topics?filter=fixed/%23"); status != 200 {
		t.Fatalf("/topics: %d", status)
	}
	time.Sleep(200 * time.Millisecond)
	log := broker.Log()
	if n := strings.Count(log, " as "+id+" "); n != 1 {
		t.Errorf("the broker saw %d connections as %s, want 1:\n%s", n, id, log)
	}
	if strings.Contains(log, "already connected") {
		t.Errorf("a second connection with the same id closed the live one:\n%s", log)
	}
	if _, err := LoadSettings(settingsFor(t, "", nil, map[string]any{"mqtt": map[string]any{"url": "tcp://b:1883", "clientId": "a\x00b"}})); err == nil {
		t.Error("a client id with NUL was accepted")
	}
}
