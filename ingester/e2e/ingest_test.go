package e2e

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	influxdb2 "github.com/influxdata/influxdb-client-go/v2"
	"github.com/jackc/pgx/v5"

	"github.com/fieldline-iot/fieldline/internal/testsvc"
)

type storedRow struct {
	device, metric, sensor string
	value                  float64
}

// TestFieldReports: the field reports' exact messages, with the zero-configuration default subscriptions,
// become readings with the right labels in PostgreSQL and in InfluxDB.
func TestFieldReports(t *testing.T) {
	e := newEnv(t, true)
	// The reports' own topics, so a private broker: another publisher or a retained message on the shared one
	// would change the counts.
	e.mqttURL = "tcp://127.0.0.1:" + testsvc.PrivateMosquitto(t, testsvc.MosquittoOptions{}).Port
	in := e.start(e.config(""))
	msgs := []pubMsg{
		{"pico/temperature/dht22", []byte("22.4")},
		{"pico/humidity/dht22", []byte("39.7")},
		{"pico/temperature/internal", []byte("30.6")},
		{"iiot/node1/temperature", []byte("27.6")},
		{"iiot/signal/rssi", []byte("-33")},
	}
	want := []storedRow{
		{"pico", "temperature", "dht22", 22.4},
		{"pico", "humidity", "dht22", 39.7},
		{"pico", "temperature", "internal", 30.6},
		{"node1", "temperature", "", 27.6},
		{"signal", "rssi", "", -33},
	}
	before := time.Now()
	newPublisher(t, e.mqttURL).publishAll(msgs, 10)

	eventually(t, 20*time.Second, func() string {
		if n, _ := pgCount(t, e.pgURL, ""); n < int64(len(want)) {
			return fmt.Sprintf("PostgreSQL has %d of %d readings", n, len(want))
		}
		return ""
	})
	ctx := context.Background()
	c, err := pgx.Connect(ctx, e.pgURL)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	for _, w := range want {
		var n int
		var ts time.Time
		err := c.QueryRow(ctx, `SELECT count(*), max(time) FROM readings WHERE device=$1 AND metric=$2 AND sensor=$3 AND value=$4`,
			w.device, w.metric, w.sensor, w.value).Scan(&n, &ts)
		if err != nil || n != 1 {
			t.Errorf("PostgreSQL: reading %+v stored %d times (err %v)", w, n, err)
			continue
		}
		if ts.Before(before.Add(-time.Second)) || ts.After(time.Now().Add(time.Second)) {
			t.Errorf("PostgreSQL: reading %+v has time %s, want the receive time", w, ts)
		}
	}
	var total int
	if err := c.QueryRow(ctx, "SELECT count(*) FROM readings").Scan(&total); err != nil || total != len(want) {
		t.Errorf("PostgreSQL holds %d readings, want %d (err %v)", total, len(want), err)
	}
	// The 1-minute rollup covers the same rows.
	var rollupCount int
	if err := c.QueryRow(ctx, "SELECT coalesce(sum(count),0) FROM readings_1m").Scan(&rollupCount); err != nil || rollupCount != len(want) {
		t.Errorf("readings_1m counts %d rows, want %d (err %v)", rollupCount, len(want), err)
	}

	// InfluxDB: measurement = metric, tags device (and sensor when set), field value.
	ic := influxdb2.NewClient(e.influx.URL, e.influx.Token)
	defer ic.Close()
	eventually(t, 20*time.Second, func() string {
		got := map[storedRow]int{}
		res, err := ic.QueryAPI(e.influx.Org).Query(ctx, fmt.Sprintf(`from(bucket: %q) |> range(start: -1h) |> filter(fn: (r) => r._field == "value")`, e.influx.Bucket))
		if err != nil {
			return "flux: " + err.Error()
		}
		for res.Next() {
			r := res.Record()
			sensor, _ := r.ValueByKey("sensor").(string)
			device, _ := r.ValueByKey("device").(string)
			v, _ := r.Value().(float64)
			got[storedRow{device, r.Measurement(), sensor, v}]++
		}
		for _, w := range want {
			if got[w] != 1 {
				return fmt.Sprintf("InfluxDB: %+v stored %d times (all: %v)", w, got[w], got)
			}
		}
		if len(got) != len(want) {
			return fmt.Sprintf("InfluxDB holds %d distinct points, want %d", len(got), len(want))
		}
		return ""
	})
	fams := in.Metrics()
	if got := metric(fams, "fieldline_ingester_messages_acked_total", "", ""); got != float64(len(msgs)) {
		t.Errorf("messages_acked_total = %v, want %d", got, len(msgs))
	}
	if got := metric(fams, "fieldline_ingester_readings_written_total", "sink", "influxdb"); got != float64(len(msgs)) {
		t.Errorf("readings_written_total{sink=influxdb} = %v, want %d", got, len(msgs))
	}
	// SIGTERM flushes and exits within 10 s.
	if d := in.Stop(syscall.SIGTERM); d > 10*time.Second {
		t.Errorf("SIGTERM took %s to exit, want ≤ 10s", d)
	}
	if in.ExitErr != nil {
		t.Errorf("ingester exit after SIGTERM: %v\n%s", in.ExitErr, in.Logs.String())
	}
}

// poisonKind is one kind of bad message and the reason it must be counted under.
type poisonKind struct {
	reason  string
	json    bool // published on the JSON subscription
	payload func(i int) []byte
}

var poisonKinds = []poisonKind{
	{"nan", false, func(int) []byte { return []byte("NaN") }},
	{"inf", false, func(int) []byte { return []byte("-Inf") }},
	{"empty", false, func(int) []byte { return nil }},
	{"oversized", false, func(int) []byte { return []byte(strings.Repeat("1", 70*1024)) }},
	{"not_utf8", false, func(int) []byte { return []byte{'4', 0xff, 0xfe, '2'} }},
	{"bad_json", true, func(i int) []byte { return []byte(`{"value": ` + strconv.Itoa(i) + `,`) }},
	{"time_out_of_range", true, func(i int) []byte {
		return []byte(fmt.Sprintf(`{"value": %d, "ts": %d}`, i, time.Now().Add(365*24*time.Hour).UnixMilli()))
	}},
}

// TestPoison100k: 100 000 QoS-1 messages published while the ingester runs, 1 % of them poison. Every valid
// one is stored in PostgreSQL and InfluxDB exactly once, every poison one is counted under its reason.
func TestPoison100k(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: 100 000 messages")
	}
	e := newEnv(t, true)
	subs := fmt.Sprintf(`    - filter: %[1]s/v/+/+
      qos: 1
      template: "%[1]s/v/{device}/{metric}"
      format: value
    - filter: %[1]s/j/+
      qos: 1
      template: "%[1]s/j/{device}"
      format: json
      labels: {metric: load}
      json: {time_field: ts, time_format: unix_ms}`, e.prefix)
	in := e.start(e.config(subs))

	const total = 100_000
	msgs := make([]pubMsg, 0, total)
	wantReasons := map[string]int{}
	valid := 0
	for i := 0; i < total; i++ {
		if i%100 == 99 {
			k := poisonKinds[(i/100)%len(poisonKinds)]
			topic := fmt.Sprintf("%s/v/node%d/poison", e.prefix, i%7)
			if k.json {
				topic = fmt.Sprintf("%s/j/node%d", e.prefix, i%7)
			}
			msgs = append(msgs, pubMsg{topic, k.payload(i)})
			wantReasons[k.reason]++
			continue
		}
		valid++
		if i%10 == 0 { // some valid JSON too, with its own timestamp
			msgs = append(msgs, pubMsg{fmt.Sprintf("%s/j/node%d", e.prefix, i%7),
				[]byte(fmt.Sprintf(`{"value": %d, "ts": %d}`, i, time.Now().Add(-time.Duration(i)*time.Millisecond).UnixMilli()))})
			continue
		}
		msgs = append(msgs, pubMsg{fmt.Sprintf("%s/v/node%d/temperature", e.prefix, i%7), []byte(strconv.Itoa(i))})
	}
	start := time.Now()
	newPublisher(t, e.mqttURL).publishAll(msgs, 2000)
	t.Logf("published %d messages in %s", total, time.Since(start).Round(time.Millisecond))

	eventually(t, 120*time.Second, func() string {
		if got := metric(in.Metrics(), "fieldline_ingester_messages_acked_total", "", ""); got < total {
			return fmt.Sprintf("acked %v of %d", got, total)
		}
		return ""
	})
	t.Logf("all %d acknowledged %s after the first publish", total, time.Since(start).Round(time.Millisecond))

	rows, distinct := pgCount(t, e.pgURL, "")
	if rows != int64(valid) || distinct != int64(valid) {
		t.Errorf("PostgreSQL: %d rows, %d distinct values; want %d of each", rows, distinct, valid)
	}
	if n, _ := pgCount(t, e.pgURL, "metric = 'poison' OR value = 'NaN'::float8 OR value IN ('Infinity'::float8, '-Infinity'::float8)"); n != 0 {
		t.Errorf("PostgreSQL stored %d poison rows", n)
	}
	// every valid value i is present (sum check over the unique integers)
	var wantSum float64
	for i := 0; i < total; i++ {
		if i%100 != 99 {
			wantSum += float64(i)
		}
	}
	ctx := context.Background()
	c, err := pgx.Connect(ctx, e.pgURL)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	var sum float64
	if err := c.QueryRow(ctx, "SELECT sum(value) FROM readings").Scan(&sum); err != nil || math.Abs(sum-wantSum) > 0.5 {
		t.Errorf("sum of stored values %v, want %v (err %v)", sum, wantSum, err)
	}

	fams := in.Metrics()
	for reason, n := range wantReasons {
		if got := metric(fams, "fieldline_ingester_messages_rejected_total", "reason", reason); got != float64(n) {
			t.Errorf("rejected{reason=%s} = %v, want %d", reason, got, n)
		}
	}
	if got := metric(fams, "fieldline_ingester_messages_rejected_total", "", ""); got != total-float64(valid) {
		t.Errorf("rejected total = %v, want %d", got, total-valid)
	}

	eventually(t, 60*time.Second, func() string {
		pts := int64(0)
		dist := int64(0)
		for _, m := range []string{"temperature", "load"} {
			p, d := influxCount(t, e.influx, m)
			pts += p
			dist += d
		}
		if pts != int64(valid) || dist != int64(valid) {
			return fmt.Sprintf("InfluxDB: %d points, %d distinct values; want %d", pts, dist, valid)
		}
		return ""
	})
	if p, _ := influxCount(t, e.influx, "poison"); p != 0 {
		t.Errorf("InfluxDB stored %d poison points", p)
	}
}

// TestSharedSubscription: two ingesters in one share group ($share/<group>/<filter>) split a stream; together
// they store every message once.
func TestSharedSubscription(t *testing.T) {
	e := newEnv(t, false)
	subs := fmt.Sprintf(`    - filter: %[1]s/s/+/+
      qos: 1
      share_group: %[1]s
      template: "%[1]s/s/{device}/{metric}"`, e.prefix)
	a := e.start(e.config(subs))
	second := *e
	second.clientID = e.clientID + "-b"
	second.spoolDir = t.TempDir()
	t.Cleanup(func() { dropSession(e.mqttURL, second.clientID) })
	b := second.start(second.config(subs))

	const n = 4000
	msgs := make([]pubMsg, n)
	for i := range msgs {
		msgs[i] = pubMsg{fmt.Sprintf("%s/s/node%d/temperature", e.prefix, i%4), []byte(strconv.Itoa(i))}
	}
	newPublisher(t, e.mqttURL).publishAll(msgs, 500)
	eventually(t, 30*time.Second, func() string {
		if _, d := pgCount(t, e.pgURL, ""); d != n {
			return fmt.Sprintf("%d of %d stored", d, n)
		}
		return ""
	})
	ga := metric(a.Metrics(), "fieldline_ingester_messages_acked_total", "", "")
	gb := metric(b.Metrics(), "fieldline_ingester_messages_acked_total", "", "")
	if ga == 0 || gb == 0 || ga+gb != n {
		t.Errorf("ingesters acknowledged %v and %v messages, want a split summing to %d", ga, gb, n)
	}
	if rows, distinct := pgCount(t, e.pgURL, ""); rows != distinct {
		t.Errorf("%d rows for %d distinct values: a shared subscription delivered twice", rows, distinct)
	}
}
