// Command fieldline-sim runs virtual sensor nodes that publish the two field reports' MQTT topics with
// realistic values: the Pico W of the first report (pico/temperature/dht22, pico/humidity/dht22,
// pico/temperature/internal) and the LoRa nodes and gateway of the second (iiot/node1/temperature, …,
// iiot/signal/rssi, iiot/stats/crc_errors). Fault modes add bursts, bad payloads and late timestamps.
//
// Like the Pico W firmware, it keeps a retained status per simulated tree: pico/status and iiot/status
// (under -prefix: lab-pico/status, …) are "online" after every (re)connect and "offline" after a clean exit. The
// connection's last will is a retained "offline" on the first of them (pico/status with -topics both; MQTT allows
// one will per connection), which the broker publishes when the connection drops without a DISCONNECT.
//
// Configuration: defaults < FIELDLINE_SIM_* environment variables < flags (see -h). On exit (after -duration,
// or on SIGINT/SIGTERM) it waits for the broker's outstanding acknowledgements and prints a summary: messages
// sent per topic (status messages too), bad and late ones, errors. Exit status 0, 1 when a publication failed or the broker was
// unreachable, 2 for a usage error.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/fieldline-iot/fieldline/firmware/simulator/internal/sim"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.LookupEnv, os.Stdout, os.Stderr))
}

// options is the parsed command line.
type options struct {
	cfg      sim.Config
	summary  string // text | json
	logLevel slog.Level
}

// parse reads flags with FIELDLINE_SIM_* environment defaults.
func parse(args []string, lookupEnv func(string) (string, bool), stderr io.Writer) (*options, error) {
	fs := flag.NewFlagSet("fieldline-sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: fieldline-sim [flags]

Publishes the field reports' topics with realistic values: the Pico W (pico/temperature/dht22,
pico/humidity/dht22, pico/temperature/internal) and the LoRa nodes and gateway (iiot/nodeN/temperature, …,
iiot/signal/rssi, iiot/stats/crc_errors). Retained status, as the Pico W firmware: pico/status and
iiot/status are "online" after every (re)connect and "offline" after a clean exit; the last will,
a retained "offline", is on pico/status (on iiot/status with -topics iiot). -prefix applies to all.

Flags (each also FIELDLINE_SIM_<FLAG>, dashes as underscores; flags win):
`)
		fs.PrintDefaults()
	}
	var (
		o                       options
		rate, badRate           float64
		qos, nodes              int
		seed                    uint64
		topics, fault, logLevel string
	)
	c := &o.cfg
	fs.StringVar(&c.Broker, "broker", "tcp://127.0.0.1:1883", "MQTT broker URL (tcp://, ssl://, ws://, wss://)")
	fs.StringVar(&c.ClientID, "client-id", "", "MQTT client id (default fieldline-sim-<random>)")
	fs.StringVar(&c.Username, "username", "", "MQTT username (the password only from FIELDLINE_SIM_PASSWORD)")
	fs.IntVar(&nodes, "nodes", 2, "LoRa sensor nodes in the iiot tree (node1..nodeN); the pico tree is one Pico W per -prefix")
	fs.DurationVar(&c.Interval, "interval", 5*time.Second, "time between two readings of one topic")
	fs.Float64Var(&rate, "rate", 0, "readings per second per topic (overrides -interval when > 0)")
	fs.IntVar(&qos, "qos", 1, "MQTT QoS 0, 1 or 2")
	fs.BoolVar(&c.Retain, "retain", false, "publish the readings retained (the status topics always are)")
	fs.DurationVar(&c.Duration, "duration", 0, "how long to run (0: until SIGINT/SIGTERM)")
	fs.Uint64Var(&seed, "seed", 0, "random seed (0: a random one, printed in the summary)")
	fs.StringVar(&topics, "topics", "both", "topic set: pico, iiot or both")
	fs.StringVar(&c.Fleet.Prefix, "prefix", "", `prepended to the topic roots "pico" and "iiot" (e.g. "lab-" gives lab-pico/…, lab-iiot/…, lab-pico/status)`)
	fs.DurationVar(&c.Fleet.Day, "day", 24*time.Hour, "length of one simulated day (shorter shows the diurnal cycle in a demo)")
	fs.StringVar(&fault, "fault", "", "fault modes, comma-separated: burst, bad, late")
	fs.Float64Var(&badRate, "bad-rate", 0.1, "bad fault: fraction of value messages replaced by a bad payload")
	fs.IntVar(&c.Fleet.Faults.BurstEvery, "burst-every", 10, "burst fault: a burst every N ticks")
	fs.IntVar(&c.Fleet.Faults.BurstSize, "burst-size", 20, "burst fault: extra samplings of every topic per burst")
	fs.DurationVar(&c.Fleet.Faults.LateBy, "late-by", time.Hour, `late fault: age of the "ts" of the Pico's JSON readings`)
	fs.DurationVar(&c.DrainTimeout, "drain-timeout", 10*time.Second, "at exit, how long to wait for outstanding acknowledgements")
	fs.StringVar(&o.summary, "summary", "text", "summary format on stdout at exit: text or json")
	fs.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error (logs go to stderr)")

	// Environment first (FIELDLINE_SIM_<FLAG>, dashes as underscores), so flags override it.
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		key := "FIELDLINE_SIM_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := lookupEnv(key); ok && envErr == nil {
			if err := fs.Set(f.Name, v); err != nil {
				envErr = fmt.Errorf("%s=%q: %w", key, v, err)
			}
		}
	})
	if envErr != nil {
		return nil, envErr
	}
	if pw, ok := lookupEnv("FIELDLINE_SIM_PASSWORD"); ok {
		c.Password = pw
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if rate < 0 {
		return nil, errors.New("-rate must not be negative")
	}
	if rate > 0 {
		c.Interval = time.Duration(float64(time.Second) / rate)
	}
	if c.Interval <= 0 {
		return nil, errors.New("-interval must be positive")
	}
	if qos < 0 || qos > 2 {
		return nil, fmt.Errorf("-qos %d: want 0, 1 or 2", qos)
	}
	c.QoS = byte(qos)
	if c.Duration < 0 {
		return nil, errors.New("-duration must not be negative")
	}
	c.Fleet.Nodes = nodes
	var err error
	if c.Fleet.Topics, err = sim.ParseTopicSet(topics); err != nil {
		return nil, err
	}
	faults, err := sim.ParseFaults(fault)
	if err != nil {
		return nil, err
	}
	c.Fleet.Faults.Burst, c.Fleet.Faults.Bad, c.Fleet.Faults.Late = faults.Burst, faults.Bad, faults.Late
	if badRate < 0 || badRate > 1 {
		return nil, fmt.Errorf("-bad-rate %g: want 0..1", badRate)
	}
	c.Fleet.Faults.BadRate = badRate
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	c.Fleet.Seed = seed
	if err := c.Fleet.Validate(); err != nil {
		return nil, err
	}
	switch o.summary {
	case "text", "json":
	default:
		return nil, fmt.Errorf("-summary %q: want text or json", o.summary)
	}
	if err := o.logLevel.UnmarshalText([]byte(logLevel)); err != nil {
		return nil, fmt.Errorf("-log-level %q: %w", logLevel, err)
	}
	return &o, nil
}

func run(ctx context.Context, args []string, lookupEnv func(string) (string, bool), stdout, stderr io.Writer) int {
	o, err := parse(args, lookupEnv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "fieldline-sim:", err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: o.logLevel}))
	o.cfg.Log = log
	log.Info("starting", "broker", o.cfg.Broker, "topics", o.cfg.Fleet.Topics, "prefix", o.cfg.Fleet.Prefix,
		"nodes", o.cfg.Fleet.Nodes, "interval", o.cfg.Interval, "qos", o.cfg.QoS, "duration", o.cfg.Duration,
		"faults", o.cfg.Fleet.Faults, "seed", o.cfg.Fleet.Seed)
	sum, err := sim.Run(ctx, o.cfg)
	if err != nil {
		log.Error("simulation failed", "error", err)
		return 1
	}
	if o.summary == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(sum)
	} else {
		sum.WriteText(stdout)
	}
	if sum.Errors > 0 {
		return 1
	}
	return 0
}
