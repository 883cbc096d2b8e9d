package plugin

import (
	"encoding/json"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

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
