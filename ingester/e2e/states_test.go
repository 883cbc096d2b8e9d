package e2e

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	influxdb2 "github.com/influxdata/influxdb-client-go/v2"
	"github.com/jackc/pgx/v5"

	"github.com/fieldline-iot/fieldline/internal/testsvc"
)

// TestStates: the firmware's retained status topic (its last will) and a gateway's JSON with string and boolean
// fields, through the real ingester: states land in PostgreSQL's states table and InfluxDB as string/boolean
// fields, numbers from the same message in readings; bad text is rejected and counted by reason, nothing else
// of the message stored.
func TestStates(t *testing.T) {
	e := newEnv(t, true)
	e.mqttURL = "tcp://127.0.0.1:" + testsvc.PrivateMosquitto(t, testsvc.MosquittoOptions{}).Port
	subs := `    - filter: pico/status
      qos: 1
      template: "{device}/{metric}"
      value_type: text
    - filter: site/+/relay
      qos: 1
      template: "site/{device}/{metric}"
      value_type: bool
    - filter: site/+/json
      qos: 1
      template: "site/{device}/json"
      format: json
      value_type: auto`
	in := e.start(e.config(subs))
	msgs := []pubMsg{
		{"pico/status", []byte("online")},
		{"site/node2/relay", []byte("ON")},
		{"site/node2/json", []byte(`{"temp":21.5,"door":"open","armed":false,"fw":{"version":"1.4.2"}}`)},
		{"pico/status", []byte("offline")},
		// rejected, each counted under its reason:
		{"pico/status", []byte(strings.Repeat("x", 1025))},      // text_too_long
		{"pico/status", []byte("on\x00line")},                   // bad_text
		{"site/node2/relay", []byte("maybe")},                   // not_a_bool
		{"site/node2/json", []byte(`{"temp":1,"door":"a\nb"}`)}, // bad_text: the whole message, its number too
	}
	newPublisher(t, e.mqttURL).publishAll(msgs, 1)
	want := []string{"node2|armed||false|bool", "node2|door||open|text", "node2|fw.version||1.4.2|text",
		"node2|relay||true|bool", "pico|status||offline|text", "pico|status||online|text"}
	ctx := context.Background()
	c, err := pgx.Connect(ctx, e.pgURL)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	var got []string
	eventually(t, 20*time.Second, func() string {
		got = got[:0]
		rows, err := c.Query(ctx, "SELECT device, metric, sensor, value, kind FROM states ORDER BY 1, 2, 4")
		if err != nil {
			return err.Error()
		}
		defer rows.Close()
		for rows.Next() {
			var d, m, s, v, k string
			if err := rows.Scan(&d, &m, &s, &v, &k); err != nil {
				return err.Error()
			}
			got = append(got, strings.Join([]string{d, m, s, v, k}, "|"))
		}
		if len(got) < len(want) {
			return fmt.Sprintf("states holds %d of %d rows: %v", len(got), len(want), got)
		}
		return ""
	})
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("states:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	var readings int
	var temp float64
	if err := c.QueryRow(ctx, "SELECT count(*), max(value) FROM readings").Scan(&readings, &temp); err != nil || readings != 1 || temp != 21.5 {
		t.Errorf("readings: %d rows, max %v (err %v); want the one number 21.5", readings, temp, err)
	}
	fams := in.Metrics()
	for reason, n := range map[string]float64{"text_too_long": 1, "bad_text": 2, "not_a_bool": 1} {
		if got := metric(fams, "fieldline_ingester_messages_rejected_total", "reason", reason); got != n {
			t.Errorf("rejected{reason=%s} = %v, want %v", reason, got, n)
		}
	}
	// InfluxDB: the status measurement holds string values, the relay a boolean.
	ic := influxdb2.NewClient(e.influx.URL, e.influx.Token)
	defer ic.Close()
	eventually(t, 20*time.Second, func() string {
		res, err := ic.QueryAPI(e.influx.Org).Query(ctx, fmt.Sprintf(`from(bucket: %q) |> range(start: -1h) |> filter(fn: (r) => r._measurement == "status" or r._measurement == "relay")`, e.influx.Bucket))
		if err != nil {
			return "flux: " + err.Error()
		}
		seen := map[string]any{}
		for res.Next() {
			r := res.Record()
			seen[fmt.Sprintf("%s=%v", r.Measurement(), r.Value())] = r.Value()
		}
		if _, ok := seen["status=offline"].(string); !ok {
			return fmt.Sprintf("InfluxDB: no string status=offline in %v", seen)
		}
		if v, ok := seen["relay=true"].(bool); !ok || !v {
			return fmt.Sprintf("InfluxDB: no boolean relay=true in %v", seen)
		}
		return ""
	})
	if in.Stop(syscall.SIGTERM); in.ExitErr != nil {
		t.Errorf("ingester exit: %v\n%s", in.ExitErr, in.Logs.String())
	}
}

// TestStatesSpooled: states take the same path as readings when PostgreSQL is away: acknowledged once spooled
// (spool format 2), stored exactly once when it is back, alongside the readings of the same batches, and the
// restarted ingester replays a spool written with states.
func TestStatesSpooled(t *testing.T) {
	e := newEnv(t, false)
	realURL := e.pgURL
	proxy := proxiedPostgres(t, e)
	proxy.Up()
	subs := fmt.Sprintf(`    - filter: %[1]s/status/+
      qos: 1
      template: "%[1]s/{metric}/{device}"
      value_type: auto`, e.prefix)
	in := e.start(e.config(subs))
	proxy.Down()
	var msgs []pubMsg
	for i := 0; i < 40; i++ {
		payload := fmt.Sprintf("state-%02d", i)
		if i%4 == 0 {
			payload = strconv.Itoa(i) // auto: a number, a reading
		}
		msgs = append(msgs, pubMsg{fmt.Sprintf("%s/status/node%d", e.prefix, i), []byte(payload)})
	}
	newPublisher(t, e.mqttURL).publishAll(msgs, 5)
	eventually(t, 30*time.Second, func() string {
		if n := metric(in.Metrics(), "fieldline_ingester_messages_acked_total", "", ""); n < 40 {
			return fmt.Sprintf("acked %v of 40 while PostgreSQL is down", n)
		}
		return ""
	})
	if n := metric(in.Metrics(), "fieldline_ingester_readings_spooled_total", "sink", "postgres"); n != 40 {
		t.Errorf("readings_spooled_total{sink=postgres} = %v, want the 40 values (30 states, 10 readings)", n)
	}
	// A restart with the spool full of states: the new process replays it.
	in.Stop(syscall.SIGTERM)
	proxy.Up()
	in = e.start(e.config(subs))
	ctx := context.Background()
	eventually(t, 30*time.Second, func() string {
		c, err := pgx.Connect(ctx, realURL)
		if err != nil {
			return err.Error()
		}
		defer c.Close(ctx)
		var states, distinct, readings int
		if err := c.QueryRow(ctx, "SELECT count(*), count(DISTINCT value) FROM states").Scan(&states, &distinct); err != nil {
			return err.Error()
		}
		if err := c.QueryRow(ctx, "SELECT count(*) FROM readings").Scan(&readings); err != nil {
			return err.Error()
		}
		if states != 30 || distinct != 30 || readings != 10 {
			return fmt.Sprintf("states %d (%d distinct), readings %d; want 30, 30, 10", states, distinct, readings)
		}
		return ""
	})
	if n := metric(in.Metrics(), "fieldline_ingester_spool_files_set_aside_total", "", ""); n != 0 {
		t.Errorf("spool batches set aside: %v", n)
	}
}
