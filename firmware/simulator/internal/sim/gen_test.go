package sim

import (
	"bytes"
	"errors"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/fieldline-iot/fieldline/internal/mqttconn"
	"github.com/fieldline-iot/fieldline/internal/telemetry"
)

func TestDiurnalPeaksAfternoonTroughNight(t *testing.T) {
	day := time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)
	if v := Diurnal(day.Add(15*time.Hour), 0); math.Abs(v-1) > 1e-9 {
		t.Errorf("15:00 = %v, want 1", v)
	}
	if v := Diurnal(day.Add(3*time.Hour), 0); math.Abs(v+1) > 1e-9 {
		t.Errorf("03:00 = %v, want -1", v)
	}
	// A 10-minute day: the same shape, compressed.
	short := 10 * time.Minute
	base := time.Unix(0, 0).Add(1000 * short)
	if v := Diurnal(base.Add(short*15/24), short); math.Abs(v-1) > 1e-6 {
		t.Errorf("short day peak = %v, want 1", v)
	}
	for m := range 24 * 60 {
		if v := Diurnal(day.Add(time.Duration(m)*time.Minute), 0); v < -1 || v > 1 {
			t.Fatalf("minute %d: %v out of [-1, 1]", m, v)
		}
	}
}

// sampleDay runs a climate over one simulated day at one reading a minute.
func sampleDay(c *Climate, start time.Time) (temps, rhs []float64) {
	for m := range 24 * 60 {
		tc, rh := c.Next(start.Add(time.Duration(m) * time.Minute))
		temps, rhs = append(temps, tc), append(rhs, rh)
	}
	return temps, rhs
}

func pearson(x, y []float64) float64 {
	var mx, my float64
	for i := range x {
		mx += x[i]
		my += y[i]
	}
	mx /= float64(len(x))
	my /= float64(len(y))
	var sxy, sxx, syy float64
	for i := range x {
		sxy += (x[i] - mx) * (y[i] - my)
		sxx += (x[i] - mx) * (x[i] - mx)
		syy += (y[i] - my) * (y[i] - my)
	}
	return sxy / math.Sqrt(sxx*syy)
}

func TestClimateRangesAndAntiCorrelation(t *testing.T) {
	start := time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)
	for _, p := range nodeProfiles {
		c := NewClimate(NewRand(42, 7), p.baseC, p.ampC, p.baseRH, 0)
		temps, rhs := sampleDay(c, start)
		lo, hi := slices.Min(temps), slices.Max(temps)
		if lo < p.baseC-p.ampC-1.5 || hi > p.baseC+p.ampC+1.5 {
			t.Errorf("base %v amp %v: temperature range [%.2f, %.2f] outside the diurnal band ±1.5", p.baseC, p.ampC, lo, hi)
		}
		if hi-lo < p.ampC { // the day must actually swing
			t.Errorf("base %v: swing %.2f < amplitude %v", p.baseC, hi-lo, p.ampC)
		}
		for i, rh := range rhs {
			if rh < 5 || rh > 100 {
				t.Fatalf("humidity %v at minute %d out of [5, 100]", rh, i)
			}
		}
		if r := pearson(temps, rhs); r > -0.8 {
			t.Errorf("base %v: correlation temperature/humidity = %.3f, want strongly negative (< -0.8)", p.baseC, r)
		}
		// Warmest minute is in the afternoon, coldest at night.
		if h := slices.Index(temps, hi) / 60; h < 11 || h > 19 {
			t.Errorf("base %v: warmest at %02d h, want the afternoon", p.baseC, h)
		}
		if h := slices.Index(temps, lo) / 60; h > 7 && h < 23 {
			t.Errorf("base %v: coldest at %02d h, want the night", p.baseC, h)
		}
	}
	// The greenhouse (node3) crosses 30 and 35 °C in the afternoon: the dashboards' thresholds and the alert.
	temps, _ := sampleDay(NewClimate(NewRand(1, 102), nodeProfiles[2].baseC, nodeProfiles[2].ampC, nodeProfiles[2].baseRH, 0), start)
	if slices.Max(temps) < 35 || slices.Min(temps) > 30 {
		t.Errorf("node3 range [%.1f, %.1f]: want below 30 at night and above 35 in the afternoon", slices.Min(temps), slices.Max(temps))
	}
}

func TestChipTempAboveAir(t *testing.T) {
	c := NewChipTemp(NewRand(3, 3), 8)
	var sum float64
	for range 10_000 {
		d := c.Next(22.4) - 22.4
		if d < 4 || d > 12 {
			t.Fatalf("self-heating %v outside 4..12 °C", d)
		}
		sum += d
	}
	if mean := sum / 10_000; math.Abs(mean-8) > 0.05 {
		t.Errorf("mean self-heating %v, want 8", mean)
	}
}

func TestWalksStayInRange(t *testing.T) {
	l := NewLink(NewRand(5, 5))
	g := NewGas(NewRand(5, 6), 101_169)
	var prevP, prevC uint64
	for i := range 100_000 {
		p, c, rssi, snr := l.Receive(3)
		if rssi < -120 || rssi > -30 {
			t.Fatalf("rssi %v out of [-120, -30]", rssi)
		}
		if snr < -20 || snr > 15 {
			t.Fatalf("snr %v out of [-20, 15]", snr)
		}
		if p != prevP+3 {
			t.Fatalf("step %d: packets %d after %d, want +3", i, p, prevP)
		}
		if c < prevC || c-prevC > 3 || c > p {
			t.Fatalf("step %d: crc errors %d after %d (packets %d): must be monotonic, ≤ packets", i, c, prevC, p)
		}
		prevP, prevC = p, c
		if v := g.Next(); v < 50_000 || v > 200_000 {
			t.Fatalf("gas resistance %v out of [50k, 200k]", v)
		}
	}
	if rate := float64(prevC) / float64(prevP); rate == 0 || rate > 0.02 {
		t.Errorf("crc error rate %.4f: want rare but present (0 < rate ≤ 2 %%)", rate)
	}
	if m := l.RSSI.Value; m < -80 { // not a requirement of physics, but a walk that wandered off means no mean reversion
		t.Logf("rssi ended at %v", m)
	}
}

func TestGasDrifts(t *testing.T) {
	g := NewGas(NewRand(9, 9), 101_169)
	var first, last float64
	for i := range 5000 {
		v := g.Next()
		if i < 100 {
			first += v / 100
		}
		if i >= 4900 {
			last += v / 100
		}
	}
	if first == last {
		t.Error("gas resistance does not move")
	}
}

var day = time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC)

func ticks(t *testing.T, cfg FleetConfig, n int) [][]Message {
	t.Helper()
	f, err := NewFleet(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]Message
	for i := range n {
		out = append(out, f.Tick(day.Add(time.Duration(i)*time.Second)))
	}
	return out
}

func TestDeterministicWithSeed(t *testing.T) {
	cfg := FleetConfig{Seed: 1234, Nodes: 3, Faults: Faults{Bad: true, Burst: true, Late: true}}
	a, b := ticks(t, cfg, 50), ticks(t, cfg, 50)
	for i := range a {
		if len(a[i]) != len(b[i]) {
			t.Fatalf("tick %d: %d vs %d messages", i, len(a[i]), len(b[i]))
		}
		for j := range a[i] {
			if a[i][j].Topic != b[i][j].Topic || !bytes.Equal(a[i][j].Payload, b[i][j].Payload) {
				t.Fatalf("tick %d message %d differs: %+v vs %+v", i, j, a[i][j], b[i][j])
			}
		}
	}
	cfg.Seed = 1235
	c := ticks(t, cfg, 50)
	same := true
	for i := range a {
		for j := range min(len(a[i]), len(c[i])) {
			same = same && bytes.Equal(a[i][j].Payload, c[i][j].Payload)
		}
	}
	if same {
		t.Error("seeds 1234 and 1235 gave the same values")
	}
	// Faults draw from their own stream: switching them on does not change the valid values of node readings.
	clean := ticks(t, FleetConfig{Seed: 1234, Nodes: 3}, 1)[0]
	late := ticks(t, FleetConfig{Seed: 1234, Nodes: 3, Faults: Faults{Late: true}}, 1)[0]
	var lateValues []Message
	for _, m := range late {
		if m.Kind == Valid {
			lateValues = append(lateValues, m)
		}
	}
	if len(clean) != len(lateValues) {
		t.Fatalf("late mode changed the value messages: %d vs %d", len(clean), len(lateValues))
	}
	for i := range clean {
		if !bytes.Equal(clean[i].Payload, lateValues[i].Payload) {
			t.Errorf("late mode changed %s: %s vs %s", clean[i].Topic, clean[i].Payload, lateValues[i].Payload)
		}
	}
}

func TestReportTopicsExactly(t *testing.T) {
	f, err := NewFleet(FleetConfig{Seed: 1, Nodes: 2})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"pico/temperature/dht22", "pico/humidity/dht22", "pico/temperature/internal",
		"iiot/node1/temperature", "iiot/node1/humidity", "iiot/node1/gas_resistance",
		"iiot/node2/temperature", "iiot/node2/humidity",
		"iiot/signal/rssi", "iiot/signal/snr", "iiot/stats/packets_received", "iiot/stats/crc_errors",
	}
	if got := f.Topics(); !slices.Equal(got, want) {
		t.Errorf("topics\n got %q\nwant %q", got, want)
	}
	var got []string
	for _, m := range f.Tick(day) {
		got = append(got, m.Topic)
	}
	if !slices.Equal(got, want) {
		t.Errorf("one tick publishes\n %q\nwant %q", got, want)
	}
	f, _ = NewFleet(FleetConfig{Seed: 1, Nodes: 3, Prefix: "lab-", Topics: TopicsIIoT})
	if got := f.Topics(); got[0] != "lab-iiot/node1/temperature" || len(got) != 3+2+3+4 || slices.Contains(got, "lab-pico/humidity/dht22") {
		t.Errorf("prefix lab-, iiot only, 3 nodes: %q", got)
	}
}

// TestPayloadsAsTheIngesterSeesThem decodes every message with the ingester's own decoders (internal/telemetry):
// valid ones give one reading in the metric's range, bad ones are rejected for the reason the simulator
// reports, late ones give three readings at the old time.
func TestPayloadsAsTheIngesterSeesThem(t *testing.T) {
	picoDec, err := telemetry.NewDecoder("{device}/{metric}/{sensor}", telemetry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	iiotDec, err := telemetry.NewDecoder("iiot/{device}/{metric}", telemetry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	jsonDec, err := telemetry.NewDecoder("{device}/json", telemetry.Options{Format: telemetry.FormatJSON, JSON: telemetry.JSONOptions{
		TimeField: "ts", TimeFormat: "unix",
		Fields: map[string]telemetry.Labels{"t": {Metric: "temperature", Sensor: "dht22"}, "h": {Metric: "humidity", Sensor: "dht22"}, "tc": {Metric: "temperature", Sensor: "internal"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	ranges := map[string][2]float64{
		"temperature": {0, 50}, "humidity": {5, 100}, "gas_resistance": {50_000, 200_000},
		"rssi": {-120, -30}, "snr": {-20, 15}, "packets_received": {1, 1e9}, "crc_errors": {0, 1e9},
	}
	cfg := FleetConfig{Seed: 77, Nodes: 4, Faults: Faults{Bad: true, BadRate: 0.3, Late: true, LateBy: 2 * time.Hour}}
	reasons := map[string]int{}
	var valid, late int
	for i, msgs := range ticks(t, cfg, 200) {
		now := day.Add(time.Duration(i) * time.Second)
		for _, m := range msgs {
			dec := iiotDec
			switch {
			case m.Kind == Late:
				dec = jsonDec
			case bytes.HasPrefix([]byte(m.Topic), []byte("pico/")):
				dec = picoDec
			}
			rs, err := dec.Decode(m.Topic, m.Payload, now, nil)
			switch m.Kind {
			case Bad:
				var rej *telemetry.Rejection
				if !errors.As(err, &rej) || string(rej.Reason) != m.Reason {
					t.Fatalf("bad payload %q on %s: decoder says %v, simulator says %s", m.Payload, m.Topic, err, m.Reason)
				}
				reasons[m.Reason]++
			case Valid:
				if err != nil || len(rs) != 1 || m.Readings != 1 {
					t.Fatalf("%s %q: %v %v", m.Topic, m.Payload, rs, err)
				}
				r := ranges[rs[0].Metric]
				if rs[0].Value < r[0] || rs[0].Value > r[1] {
					t.Fatalf("%s = %v outside %v", m.Topic, rs[0].Value, r)
				}
				valid++
			case Late:
				if err != nil || len(rs) != 3 || m.Readings != 3 {
					t.Fatalf("late %s %q: %v %v", m.Topic, m.Payload, rs, err)
				}
				for _, r := range rs {
					if d := now.Sub(r.Time); d < 2*time.Hour-time.Millisecond || d > 2*time.Hour+time.Millisecond {
						t.Fatalf("late reading %v is %v old, want 2h", r, d)
					}
				}
				late++
			}
		}
	}
	for _, b := range badPayloads {
		if reasons[b.reason] == 0 {
			t.Errorf("bad payload reason %s never drawn in 200 ticks", b.reason)
		}
	}
	if late != 200 || valid == 0 {
		t.Errorf("late %d (want one per tick), valid %d", late, valid)
	}
}

func TestBurst(t *testing.T) {
	cfg := FleetConfig{Seed: 1, Nodes: 2, Faults: Faults{Burst: true, BurstEvery: 5, BurstSize: 7}}
	for i, msgs := range ticks(t, cfg, 10) {
		want := 12
		if (i+1)%5 == 0 {
			want = 12 * 8
		}
		if len(msgs) != want {
			t.Errorf("tick %d: %d messages, want %d", i+1, len(msgs), want)
		}
	}
}

func TestParse(t *testing.T) {
	if s, err := ParseTopicSet("iiot"); err != nil || s != TopicsIIoT {
		t.Error(s, err)
	}
	if _, err := ParseTopicSet("lora"); err == nil {
		t.Error("lora accepted")
	}
	f, err := ParseFaults("bad, late")
	if err != nil || !f.Bad || !f.Late || f.Burst || f.String() != "bad,late" {
		t.Error(f, err)
	}
	if _, err := ParseFaults("slow"); err == nil {
		t.Error("slow accepted")
	}
	for _, c := range []FleetConfig{{Nodes: 0}, {Nodes: 1, Prefix: "a/b"}, {Nodes: 1, Prefix: "+"}} {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
}

// TestStatusTopics: the retained status topics follow the trees and -prefix, are never part of a tick, and
// decode as the demo ingester's value_type text subscriptions read them (deploy/ingester.yaml): one text state
// "status" per device. The numeric iiot/+/+ subscription would reject them, which is why the status
// subscriptions come first in that file.
func TestStatusTopics(t *testing.T) {
	for _, tc := range []struct {
		cfg  FleetConfig
		want []string
	}{
		{FleetConfig{Seed: 1, Nodes: 2}, []string{"pico/status", "iiot/status"}},
		{FleetConfig{Seed: 1, Nodes: 2, Prefix: "lab-"}, []string{"lab-pico/status", "lab-iiot/status"}},
		{FleetConfig{Seed: 1, Nodes: 2, Prefix: "lab-", Topics: TopicsPico}, []string{"lab-pico/status"}},
		{FleetConfig{Seed: 1, Nodes: 2, Topics: TopicsIIoT}, []string{"iiot/status"}},
	} {
		f, err := NewFleet(tc.cfg)
		if err != nil {
			t.Fatal(err)
		}
		if got := f.StatusTopics(); !slices.Equal(got, tc.want) {
			t.Errorf("%+v: status topics %q, want %q", tc.cfg, got, tc.want)
		}
		for _, online := range []bool{true, false} {
			msgs := f.Status(online)
			want := map[bool]string{true: "online", false: "offline"}[online]
			if len(msgs) != len(tc.want) {
				t.Fatalf("Status(%v): %d messages, want %d", online, len(msgs), len(tc.want))
			}
			for i, m := range msgs {
				if m.Topic != tc.want[i] || string(m.Payload) != want || m.Kind != Status || !m.Retain || m.Readings != 0 {
					t.Errorf("Status(%v)[%d] = %+v", online, i, m)
				}
			}
		}
		for _, topic := range f.Topics() {
			if slices.Contains(tc.want, topic) {
				t.Errorf("Topics() lists the status topic %s", topic)
			}
		}
		for _, m := range f.Tick(day) {
			if m.Kind == Status || m.Retain || slices.Contains(tc.want, m.Topic) {
				t.Errorf("a tick publishes %+v", m)
			}
		}
	}

	text := func(template string, static telemetry.Labels) *telemetry.Decoder {
		d, err := telemetry.NewDecoder(template, telemetry.Options{ValueType: telemetry.ValueText, Static: static})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	f, _ := NewFleet(FleetConfig{Seed: 1, Nodes: 2})
	decoders := map[string]*telemetry.Decoder{"pico/status": text("{device}/{metric}", telemetry.Labels{}), "iiot/status": text("iiot/{metric}", telemetry.Labels{Device: "gateway"})}
	devices := map[string]string{"pico/status": "pico", "iiot/status": "gateway"}
	for _, online := range []bool{true, false} {
		for _, m := range f.Status(online) {
			rs, err := decoders[m.Topic].Decode(m.Topic, m.Payload, day, nil)
			if err != nil || len(rs) != 1 || !rs[0].IsState() || rs[0].Device != devices[m.Topic] || rs[0].Metric != "status" ||
				rs[0].Sensor != "" || rs[0].Text != string(m.Payload) {
				t.Errorf("%s %q decodes to %+v, %v; want one text state %s/status = %q", m.Topic, m.Payload, rs, err, devices[m.Topic], m.Payload)
			}
		}
	}
	// The status topics are outside the numeric trees' filters (a broker may deliver a message once per
	// matching subscription, so overlapping filters would store it twice).
	for _, m := range f.Status(true) {
		for _, filter := range []string{"pico/+/+", "iiot/+/+"} {
			if mqttconn.Match(filter, m.Topic) {
				t.Errorf("status topic %s matches the numeric filter %s", m.Topic, filter)
			}
		}
	}
}
