package sim

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/fieldline-iot/fieldline/internal/redact"
)

// Config configures a simulation run.
type Config struct {
	Broker   string // tcp://host:1883, ssl://, ws://, wss://
	ClientID string // default fieldline-sim-<random>
	Username string
	Password string
	QoS      byte
	Retain   bool
	Interval time.Duration // time between two readings of one topic
	Duration time.Duration // 0: until the context is cancelled
	Fleet    FleetConfig
	// DrainTimeout bounds the wait for outstanding broker acknowledgements at the end (default 10 s): what is
	// not acknowledged by then counts as an error.
	DrainTimeout time.Duration
	Log          *slog.Logger
}

// TopicStats counts one topic's messages. Only messages the broker acknowledged (QoS 1/2) or that were
// written to the connection (QoS 0) are counted as sent.
type TopicStats struct {
	Sent     int64 `json:"sent"`
	Valid    int64 `json:"valid"`
	Bad      int64 `json:"bad"`
	Late     int64 `json:"late"`
	Readings int64 `json:"readings"` // readings the ingester stores from what was sent
	States   int64 `json:"states"`   // status messages sent: states the ingester stores (value_type text)
	Errors   int64 `json:"errors"`   // publications that failed or were not acknowledged in time
}

// Summary is what a run did; main prints it on exit.
type Summary struct {
	Broker         string                 `json:"broker"`
	ClientID       string                 `json:"client_id"`
	Seed           uint64                 `json:"seed"`
	QoS            byte                   `json:"qos"`
	Topics         string                 `json:"topics"`
	Nodes          int                    `json:"nodes"`
	Faults         string                 `json:"faults"`
	Interval       string                 `json:"interval"`
	Ticks          int                    `json:"ticks"`
	ElapsedSeconds float64                `json:"elapsed_seconds"`
	Sent           int64                  `json:"sent"`
	Valid          int64                  `json:"valid"`
	Bad            int64                  `json:"bad"`
	Late           int64                  `json:"late"`
	Readings       int64                  `json:"readings"`
	States         int64                  `json:"states"`
	Errors         int64                  `json:"errors"`
	Rejected       map[string]int64       `json:"rejected"` // bad messages sent, by the ingester's rejection reason
	PerTopic       map[string]*TopicStats `json:"per_topic"`
}

// WriteText prints the summary as a table (one line per topic).
func (s *Summary) WriteText(w io.Writer) {
	fmt.Fprintf(w, "fieldline-sim: %d ticks in %.1fs, qos %d, seed %d, topics %s, nodes %d, faults %s\n",
		s.Ticks, s.ElapsedSeconds, s.QoS, s.Seed, s.Topics, s.Nodes, s.Faults)
	fmt.Fprintf(w, "%-44s %8s %8s %8s %8s %8s %8s\n", "topic", "sent", "valid", "bad", "late", "status", "errors")
	for _, t := range slices.Sorted(maps.Keys(s.PerTopic)) {
		st := s.PerTopic[t]
		fmt.Fprintf(w, "%-44s %8d %8d %8d %8d %8d %8d\n", t, st.Sent, st.Valid, st.Bad, st.Late, st.States, st.Errors)
	}
	fmt.Fprintf(w, "%-44s %8d %8d %8d %8d %8d %8d\n", "total", s.Sent, s.Valid, s.Bad, s.Late, s.States, s.Errors)
	fmt.Fprintf(w, "readings the ingester should store: %d; states (status topics, value_type text): %d", s.Readings, s.States)
	if len(s.Rejected) > 0 {
		fmt.Fprint(w, "; rejections expected:")
		for _, r := range slices.Sorted(maps.Keys(s.Rejected)) {
			fmt.Fprintf(w, " %s=%d", r, s.Rejected[r])
		}
	}
	fmt.Fprintln(w)
}

func (s *Summary) add(m Message, ok bool) {
	st := s.PerTopic[m.Topic]
	if st == nil {
		st = &TopicStats{}
		s.PerTopic[m.Topic] = st
	}
	if !ok {
		st.Errors++
		s.Errors++
		return
	}
	st.Sent++
	s.Sent++
	switch m.Kind {
	case Valid:
		st.Valid++
		s.Valid++
	case Bad:
		st.Bad++
		s.Bad++
		s.Rejected[m.Reason]++
	case Late:
		st.Late++
		s.Late++
	case Status:
		st.States++
		s.States++
	}
	st.Readings += int64(m.Readings)
	s.Readings += int64(m.Readings)
}

// RandomClientID returns fieldline-sim-<12 hex>.
func RandomClientID() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "fieldline-sim-" + hex.EncodeToString(b[:])
}

// Run connects, publishes one tick of messages every Interval until Duration has passed or ctx is cancelled,
// waits for the outstanding acknowledgements, disconnects and returns the summary. The error is non-nil only
// when nothing could run (bad configuration, no connection); publication failures are counted in the summary.
//
// Status, as the Pico W firmware does it: the connection's last will is a retained "offline" on the first status
// topic (Fleet.StatusTopics; MQTT allows one will per connection), and after every connect, the first and each
// automatic reconnect, every status topic gets a retained "online". At the end, before the acknowledgements are
// drained and the client disconnects, every status topic gets a retained "offline": a clean DISCONNECT discards
// the will. A connection that drops without one (a crash, a kill, a network cut) leaves the broker to publish
// the will: only the first status topic then says "offline"; the others keep their "online".
func Run(ctx context.Context, cfg Config) (*Summary, error) {
	if cfg.Interval <= 0 {
		return nil, errors.New("interval must be positive")
	}
	if cfg.QoS > 2 {
		return nil, fmt.Errorf("qos %d: want 0, 1 or 2", cfg.QoS)
	}
	if cfg.Duration < 0 {
		return nil, errors.New("duration must not be negative")
	}
	fleet, err := NewFleet(cfg.Fleet)
	if err != nil {
		return nil, err
	}
	cfg.Fleet = fleet.Config()
	if cfg.ClientID == "" {
		cfg.ClientID = RandomClientID()
	}
	if cfg.DrainTimeout <= 0 {
		cfg.DrainTimeout = 10 * time.Second
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}

	// Acknowledgements are collected (below) from this queue; the on-connect handler queues its "online"
	// publications too, until the end of the run (closing, under statusMu) stops it.
	type pending struct {
		m   Message
		tok mqtt.Token
	}
	queue := make(chan pending, 50_000)
	online, offline := fleet.Status(true), fleet.Status(false)
	var (
		statusMu sync.Mutex
		closing  bool
	)
	stopStatus := func() {
		statusMu.Lock()
		closing = true
		statusMu.Unlock()
	}
	onConnect := func(c mqtt.Client) {
		log.Info("connected", "broker", cfg.Broker, "client_id", cfg.ClientID)
		statusMu.Lock()
		defer statusMu.Unlock()
		if closing {
			return // "offline" is being published: a late reconnect must not say "online" after it
		}
		for _, m := range online {
			queue <- pending{m: m, tok: c.Publish(m.Topic, cfg.QoS, true, m.Payload)}
		}
	}

	opts := mqtt.NewClientOptions().AddBroker(cfg.Broker).SetClientID(cfg.ClientID).SetCleanSession(true).
		SetUsername(cfg.Username).SetPassword(cfg.Password).
		SetAutoReconnect(true).SetMaxReconnectInterval(5 * time.Second).
		SetConnectRetry(true).SetConnectRetryInterval(time.Second).SetConnectTimeout(10 * time.Second).
		SetKeepAlive(30 * time.Second).SetOrderMatters(false).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) { log.Warn("connection lost", "error", err) }).
		SetOnConnectHandler(onConnect) // paho runs it in a goroutine of its own, after every connect
	if len(offline) > 0 {
		opts.SetBinaryWill(offline[0].Topic, offline[0].Payload, cfg.QoS, true)
	}
	client := mqtt.NewClient(opts)
	tok := client.Connect()
	select {
	case <-tok.Done():
		if tok.Error() != nil {
			stopStatus()
			return nil, fmt.Errorf("connect to %s: %w", cfg.Broker, tok.Error())
		}
	case <-time.After(30 * time.Second):
		stopStatus()
		client.Disconnect(0)
		return nil, fmt.Errorf("connect to %s: no connection within 30s", cfg.Broker)
	case <-ctx.Done():
		stopStatus()
		client.Disconnect(0)
		return nil, fmt.Errorf("connect to %s: %w", cfg.Broker, ctx.Err())
	}
	defer client.Disconnect(250)

	sum := &Summary{
		Broker: redact.URL(cfg.Broker), ClientID: cfg.ClientID, Seed: cfg.Fleet.Seed, QoS: cfg.QoS,
		Topics: cfg.Fleet.Topics.String(), Nodes: cfg.Fleet.Nodes, Faults: cfg.Fleet.Faults.String(),
		Interval: cfg.Interval.String(), Rejected: map[string]int64{}, PerTopic: map[string]*TopicStats{},
	}
	for _, t := range append(fleet.Topics(), fleet.StatusTopics()...) {
		sum.PerTopic[t] = &TopicStats{}
	}

	// One goroutine collects acknowledgements in publication order (they complete nearly in order), so the
	// publishing loop never waits for the broker unless 50 000 messages are outstanding.
	var mu sync.Mutex
	drainDeadline := make(chan time.Time, 1)
	collected := make(chan struct{})
	go func() {
		defer close(collected)
		var deadline time.Time
		for p := range queue {
			ok := false
			if deadline.IsZero() {
				select {
				case deadline = <-drainDeadline:
				default:
				}
			}
			if deadline.IsZero() {
				select {
				case <-p.tok.Done():
					ok = p.tok.Error() == nil
				case deadline = <-drainDeadline:
				}
			}
			if !deadline.IsZero() && !ok {
				ok = p.tok.WaitTimeout(time.Until(deadline)) && p.tok.Error() == nil
			}
			mu.Lock()
			sum.add(p.m, ok)
			mu.Unlock()
		}
	}()

	start := time.Now()
	progress := time.NewTicker(10 * time.Second)
	defer progress.Stop()
	timer := time.NewTimer(0)
	defer timer.Stop()
loop:
	for i := 0; ; i++ {
		offset := time.Duration(i) * cfg.Interval
		if cfg.Duration > 0 && offset >= cfg.Duration {
			break
		}
		timer.Reset(time.Until(start.Add(offset)))
	wait:
		for {
			select {
			case <-ctx.Done():
				break loop
			case <-progress.C:
				mu.Lock()
				log.Info("progress", "ticks", i, "sent", sum.Sent, "errors", sum.Errors)
				mu.Unlock()
			case <-timer.C:
				break wait
			}
		}
		for _, m := range fleet.Tick(start.Add(offset)) {
			queue <- pending{m: m, tok: client.Publish(m.Topic, cfg.QoS, cfg.Retain || m.Retain, m.Payload)}
		}
		sum.Ticks++
	}
	// A clean shutdown: "offline" on every status topic, acknowledged (drained) before the deferred DISCONNECT,
	// which makes the broker discard the will.
	stopStatus()
	for _, m := range offline {
		queue <- pending{m: m, tok: client.Publish(m.Topic, cfg.QoS, true, m.Payload)}
	}
	drainDeadline <- time.Now().Add(cfg.DrainTimeout)
	close(queue)
	<-collected
	sum.ElapsedSeconds = time.Since(start).Seconds()
	return sum, nil
}
