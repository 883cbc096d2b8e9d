package sim

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
)

// TopicSet selects the field reports' topic trees.
type TopicSet uint8

const (
	TopicsPico TopicSet = 1 << iota // the first report: one Pico W, pico/<metric>/<sensor>
	TopicsIIoT                      // the second report: LoRa nodes and gateway, iiot/<node>/<metric>
	TopicsBoth = TopicsPico | TopicsIIoT
)

// ParseTopicSet parses "pico", "iiot" or "both".
func ParseTopicSet(s string) (TopicSet, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "pico":
		return TopicsPico, nil
	case "iiot":
		return TopicsIIoT, nil
	case "both", "", "all":
		return TopicsBoth, nil
	}
	return 0, fmt.Errorf("topic set %q: want pico, iiot or both", s)
}

func (s TopicSet) String() string {
	switch s {
	case TopicsPico:
		return "pico"
	case TopicsIIoT:
		return "iiot"
	}
	return "both"
}

// Faults are the fault modes: bursts of messages, bad payloads, late (old) timestamps.
type Faults struct {
	Burst      bool
	BurstEvery int // a burst every N ticks (default 10)
	BurstSize  int // a burst repeats the tick's readings this many extra times, back to back (default 20)

	Bad     bool
	BadRate float64 // fraction of value messages replaced by a bad payload (default 0.1)

	Late   bool
	LateBy time.Duration // how old the late readings' "ts" is (default 1 h)
}

// ParseFaults parses a comma-separated list of fault modes: burst, bad, late ("" or "none": no faults).
func ParseFaults(s string) (Faults, error) {
	var f Faults
	for _, m := range strings.Split(s, ",") {
		switch strings.ToLower(strings.TrimSpace(m)) {
		case "", "none":
		case "burst":
			f.Burst = true
		case "bad":
			f.Bad = true
		case "late":
			f.Late = true
		default:
			return Faults{}, fmt.Errorf("fault mode %q: want burst, bad or late (comma-separated)", m)
		}
	}
	return f, nil
}

func (f Faults) String() string {
	var s []string
	if f.Burst {
		s = append(s, "burst")
	}
	if f.Bad {
		s = append(s, "bad")
	}
	if f.Late {
		s = append(s, "late")
	}
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ",")
}

// Kind says what a message is for the ingester.
type Kind uint8

const (
	Valid  Kind = iota // a value payload the ingester stores as one reading
	Bad                // a payload the ingester must reject (Message.Reason says which rejection reason)
	Late               // a JSON payload with an old "ts": Message.Readings readings stored at that time
	Status             // a retained status ("online"/"offline"): one state for a value_type text subscription
)

// The status payloads, as the Pico W firmware publishes them (firmware/pico-w/fieldline_node.py).
const (
	Online  = "online"
	Offline = "offline"
)

// Message is one MQTT publication.
type Message struct {
	Topic    string
	Payload  []byte
	Kind     Kind
	Reason   string // Bad: the ingester's rejection reason (fieldline_ingester_messages_rejected_total{reason})
	Readings int    // readings the ingester stores for it (0 for Bad and Status)
	Retain   bool   // always retained (Status); the others follow Config.Retain
}

// badPayloads are the bad payloads, each with the reason the ingester rejects it for (internal/telemetry reasons).
var badPayloads = []struct {
	payload, reason string
}{
	{"NaN", "nan"},
	{"", "empty"},
	{"   ", "empty"},
	{"garbage", "not_a_number"},
	{"22,4", "not_a_number"},
	{"inf", "inf"},
	{"1e999", "inf"},
	{"\xff\xfe", "not_utf8"},
}

// FleetConfig configures the virtual nodes.
type FleetConfig struct {
	Seed   uint64
	Nodes  int           // LoRa sensor nodes in the iiot tree (node1..nodeN); the pico tree is one Pico W
	Topics TopicSet      // default both
	Prefix string        // prepended to the roots "pico" and "iiot" (default "": the reports' exact topics)
	Day    time.Duration // length of a simulated day (default 24 h; shorter makes the diurnal cycle visible)
	Faults Faults
}

// Roots returns the pico and iiot topic roots.
func (c FleetConfig) Roots() (pico, iiot string) { return c.Prefix + "pico", c.Prefix + "iiot" }

// Validate checks the configuration and fills defaults.
func (c *FleetConfig) Validate() error {
	if c.Topics == 0 {
		c.Topics = TopicsBoth
	}
	if c.Nodes < 1 || c.Nodes > 10_000 {
		return fmt.Errorf("nodes %d: want 1..10000", c.Nodes)
	}
	if strings.ContainsAny(c.Prefix, "+#/\x00") {
		return errors.New("prefix must not contain +, #, / or NUL")
	}
	if c.Day < 0 {
		return errors.New("day must not be negative")
	}
	f := &c.Faults
	if f.BurstEvery <= 0 {
		f.BurstEvery = 10
	}
	if f.BurstSize <= 0 {
		f.BurstSize = 20
	}
	if f.BadRate <= 0 {
		f.BadRate = 0.1
	}
	if f.BadRate > 1 {
		return fmt.Errorf("bad rate %g: want 0..1", f.BadRate)
	}
	if f.LateBy <= 0 {
		f.LateBy = time.Hour
	}
	return nil
}

type picoNode struct {
	root    string
	climate *Climate
	chip    *ChipTemp
}

type loraNode struct {
	name    string
	climate *Climate
	gas     *Gas // nil: no BME680 on this node
}

// Fleet is the set of virtual nodes; Tick produces one interval's messages.
type Fleet struct {
	cfg      FleetConfig
	pico     *picoNode
	nodes    []*loraNode
	link     *Link
	iiotRoot string
	faults   *rand.Rand
	ticks    int
}

// nodeProfiles gives the first nodes distinct climates: node1 and node2 as in the second report
// (27.6 / 26.8 °C, 54.1 / 48.8 %), node3 a warm greenhouse whose afternoons cross 30 and 35 °C.
var nodeProfiles = []struct{ baseC, ampC, baseRH float64 }{
	{26, 3, 54},
	{25, 2.5, 49},
	{31, 4.5, 60},
}

// NewFleet builds the fleet; cfg must have been validated.
func NewFleet(cfg FleetConfig) (*Fleet, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	f := &Fleet{cfg: cfg, faults: NewRand(cfg.Seed, 1)}
	picoRoot, iiotRoot := cfg.Roots()
	f.iiotRoot = iiotRoot
	if cfg.Topics&TopicsPico != 0 {
		// The first report: 22.4 °C air, 39.7 % RH, 30.6 °C chip.
		r := NewRand(cfg.Seed, 2)
		f.pico = &picoNode{root: picoRoot, climate: NewClimate(r, 21, 3, 40, cfg.Day), chip: NewChipTemp(r, 8)}
	}
	if cfg.Topics&TopicsIIoT != 0 {
		f.link = NewLink(NewRand(cfg.Seed, 3))
		for i := range cfg.Nodes {
			r := NewRand(cfg.Seed, uint64(100+i))
			p := struct{ baseC, ampC, baseRH float64 }{22 + float64(i%7), 3, 45 + float64(i%4)*5}
			if i < len(nodeProfiles) {
				p = nodeProfiles[i]
			}
			n := &loraNode{name: "node" + strconv.Itoa(i+1), climate: NewClimate(r, p.baseC, p.ampC, p.baseRH, cfg.Day)}
			if i%2 == 0 { // node1, node3, …: a BME680 with a gas sensor, as node1 in the report
				n.gas = NewGas(r, 101_169*(1+0.1*float64(i%5)))
			}
			f.nodes = append(f.nodes, n)
		}
	}
	return f, nil
}

// Config returns the validated configuration.
func (f *Fleet) Config() FleetConfig { return f.cfg }

// Topics returns every topic a tick publishes to (without faults, plus <pico>/json in late mode), in
// publication order. The retained status topics, published on connect and at exit: StatusTopics.
func (f *Fleet) Topics() []string {
	var out []string
	if f.pico != nil {
		r := f.pico.root
		out = append(out, r+"/temperature/dht22", r+"/humidity/dht22", r+"/temperature/internal")
		if f.cfg.Faults.Late {
			out = append(out, r+"/json")
		}
	}
	for _, n := range f.nodes {
		b := f.iiotRoot + "/" + n.name + "/"
		out = append(out, b+"temperature", b+"humidity")
		if n.gas != nil {
			out = append(out, b+"gas_resistance")
		}
	}
	if f.link != nil {
		b := f.iiotRoot + "/"
		out = append(out, b+"signal/rssi", b+"signal/snr", b+"stats/packets_received", b+"stats/crc_errors")
	}
	return out
}

// StatusTopics returns the retained status topics of the simulated trees: <pico>/status for the Pico W (as its
// firmware publishes it) and <iiot>/status for the LoRa gateway. The first one is the connection's last
// will (MQTT allows one per connection): with both trees, <pico>/status.
func (f *Fleet) StatusTopics() []string {
	var out []string
	if f.pico != nil {
		out = append(out, f.pico.root+"/status")
	}
	if f.link != nil {
		out = append(out, f.iiotRoot+"/status")
	}
	return out
}

// Status returns one retained status message per status topic: "online" (after every connect) or "offline" (on
// a clean shutdown, before disconnecting; the last will says it for the first topic when the connection drops).
func (f *Fleet) Status(online bool) []Message {
	payload := Offline
	if online {
		payload = Online
	}
	var out []Message
	for _, t := range f.StatusTopics() {
		out = append(out, Message{Topic: t, Payload: []byte(payload), Kind: Status, Retain: true})
	}
	return out
}

// Tick returns the messages of one interval at simulated time t. With the burst fault, every BurstEvery-th
// tick repeats the sampling BurstSize extra times (fresh readings, same instant), back to back.
func (f *Fleet) Tick(t time.Time) []Message {
	f.ticks++
	rounds := 1
	if f.cfg.Faults.Burst && f.ticks%f.cfg.Faults.BurstEvery == 0 {
		rounds += f.cfg.Faults.BurstSize
	}
	var out []Message
	for range rounds {
		out = f.sample(t, out)
	}
	return out
}

func (f *Fleet) sample(t time.Time, out []Message) []Message {
	if p := f.pico; p != nil {
		air, rh := p.climate.Next(t)
		chip := p.chip.Next(air)
		out = f.value(out, p.root+"/temperature/dht22", fmt1(air))
		out = f.value(out, p.root+"/humidity/dht22", fmt1(rh))
		out = f.value(out, p.root+"/temperature/internal", fmt1(chip))
		if f.cfg.Faults.Late {
			// A reading the Pico buffered while offline, flushed now with its real (old) time: the firmware's
			// JSON mode ({"t","h","tc","ts"} on <root>/json).
			ts := float64(t.Add(-f.cfg.Faults.LateBy).UnixMilli()) / 1000
			payload := fmt.Sprintf(`{"t":%s,"h":%s,"tc":%s,"ts":%s}`, fmt1(air), fmt1(rh), fmt1(chip),
				strconv.FormatFloat(ts, 'f', 3, 64))
			out = append(out, Message{Topic: p.root + "/json", Payload: []byte(payload), Kind: Late, Readings: 3})
		}
	}
	for _, n := range f.nodes {
		b := f.iiotRoot + "/" + n.name + "/"
		temp, rh := n.climate.Next(t)
		out = f.value(out, b+"temperature", fmt1(temp))
		out = f.value(out, b+"humidity", fmt1(rh))
		if n.gas != nil {
			out = f.value(out, b+"gas_resistance", strconv.FormatFloat(n.gas.Next(), 'f', 0, 64))
		}
	}
	if f.link != nil {
		packets, crc, rssi, snr := f.link.Receive(len(f.nodes))
		b := f.iiotRoot + "/"
		out = f.value(out, b+"signal/rssi", strconv.FormatFloat(rssi, 'f', 0, 64))
		out = f.value(out, b+"signal/snr", strconv.FormatFloat(snr, 'f', 0, 64))
		out = f.value(out, b+"stats/packets_received", strconv.FormatUint(packets, 10))
		out = f.value(out, b+"stats/crc_errors", strconv.FormatUint(crc, 10))
	}
	return out
}

// value appends a value message, or with the bad fault (at BadRate) a bad payload in its place.
func (f *Fleet) value(out []Message, topic, payload string) []Message {
	if f.cfg.Faults.Bad && f.faults.Float64() < f.cfg.Faults.BadRate {
		b := badPayloads[f.faults.IntN(len(badPayloads))]
		return append(out, Message{Topic: topic, Payload: []byte(b.payload), Kind: Bad, Reason: b.reason})
	}
	return append(out, Message{Topic: topic, Payload: []byte(payload), Kind: Valid, Readings: 1})
}

// fmt1 formats with one decimal, as both reports' firmware does ("22.4"); -0.0 prints as 0.0.
func fmt1(v float64) string {
	s := strconv.FormatFloat(v, 'f', 1, 64)
	if s == "-0.0" {
		return "0.0"
	}
	return s
}
