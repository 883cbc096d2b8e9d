package plugin

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/jackc/pgx/v5"

	"github.com/fieldline-iot/fieldline/internal/ingesterproc"
	"github.com/fieldline-iot/fieldline/internal/testsvc"
)

var (
	ingesterOnce sync.Once
	ingesterPath string
	ingesterErr  error
)

// buildIngester builds fieldline-ingester once per test binary.
func buildIngester(t testing.TB) string {
	t.Helper()
	ingesterOnce.Do(func() {
		dir, err := os.MkdirTemp("", "fieldline-plugin-ingester-")
		if err != nil {
			ingesterErr = err
			return
		}
		ingesterPath = filepath.Join(dir, "fieldline-ingester")
		if out, err := exec.Command("go", "build", "-o", ingesterPath, "github.com/fieldline-iot/fieldline/ingester").CombinedOutput(); err != nil {
			ingesterErr = fmt.Errorf("build fieldline-ingester: %w\n%s", err, out)
		}
	})
	if ingesterErr != nil {
		t.Fatal(ingesterErr)
	}
	return ingesterPath
}

// TestStatesFromMQTT: the firmware's status from MQTT to a panel, with the real parts: a device connects with
// a retained last will "offline", publishes retained "online", and drops off the network; the broker publishes
// its will. The real ingester (its default pico/status subscription) stores both as text states; the plugin
// shows "online" in the history, streams "offline" live over RunStream, and the state-changes annotation finds
// the offline.
func TestStatesFromMQTT(t *testing.T) {
	bin := buildIngester(t)
	broker := "tcp://127.0.0.1:" + testsvc.PrivateMosquitto(t, testsvc.MosquittoOptions{}).Port
	db := newLiveDB(t) // the plugin's database; the ingester migrates it again (idempotent)
	clientID := testsvc.RandomName("fieldline-ingester-states-")
	t.Cleanup(func() { ingesterproc.DropSession(broker, clientID) })
	yaml := fmt.Sprintf("mqtt:\n  url: %s\n  client_id: %s\npostgres:\n  url: %s\nspool:\n  dir: %s\n", broker, clientID, db.url, t.TempDir())
	ingesterproc.Start(t, bin, yaml, os.Environ()) // no subscriptions configured: the defaults, pico/status among them

	// The device: a will on pico/status, "online" retained after connecting (fieldline_node.py does the same).
	var conn net.Conn
	var connMu sync.Mutex
	opts := mqtt.NewClientOptions().AddBroker(broker).SetClientID(testsvc.RandomName("pico-")).SetAutoReconnect(false).
		SetKeepAlive(2*time.Second).SetWill("pico/status", "offline", 1, true).
		SetCustomOpenConnectionFn(func(u *url.URL, _ mqtt.ClientOptions) (net.Conn, error) {
			c, err := net.Dial("tcp", u.Host)
			connMu.Lock()
			conn = c
			connMu.Unlock()
			return c, err
		})
	device := mqtt.NewClient(opts)
	if tok := device.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("device connect: %v", tok.Error())
	}
	if tok := device.Publish("pico/status", 1, true, "online"); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publish online: %v", tok.Error())
	}
	waitState := func(text string) time.Time {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			var tm time.Time
			err := db.pool.QueryRow(context.Background(), "SELECT time FROM states WHERE device = 'pico' AND metric = 'status' AND value = $1", text).Scan(&tm)
			if err == nil {
				return tm
			}
			if !errors.Is(err, pgx.ErrNoRows) || time.Now().After(deadline) {
				t.Fatalf("state %q not stored: %v", text, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	onlineAt := waitState("online")

	d := newDS(t, settingsFor(t, db.url, nil, liveExtra))
	time.Sleep(2500 * time.Millisecond) // the online state is older than the seam delay: it is in the history
	now := time.Now().UTC()
	resp := liveQuery(t, d, "A", map[string]any{"source": "sql", "mode": "states", "metric": "status", "device": "pico"}, now.Add(-time.Hour), now.Add(time.Hour))
	history, channels := historyRows(t, resp)
	if len(history) != 1 || history[0].s != "online" || history[0].us != onlineAt.UnixMicro() {
		t.Fatalf("history: %v, want pico online at %d", history, onlineAt.UnixMicro())
	}
	var sinks []*frameSink
	for _, c := range channels {
		s, _ := runStream(t, d, c)
		sinks = append(sinks, s)
	}

	// The device drops off the network without DISCONNECT: the broker publishes its will.
	connMu.Lock()
	_ = conn.Close()
	connMu.Unlock()
	offlineAt := waitState("offline")
	deadline := time.Now().Add(15 * time.Second)
	for {
		var live []liveRow
		for _, s := range sinks {
			live = append(live, s.rows()...)
		}
		if slices.ContainsFunc(live, func(r liveRow) bool { return r.s == "offline" && r.us == offlineAt.UnixMicro() }) {
			if len(live) != 1 {
				t.Errorf("live rows %v, want the offline state once", live)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the will never reached the panel; live rows %v", live)
		}
		time.Sleep(50 * time.Millisecond)
	}

	anno := runOne(t, d, dq(t, "Anno", map[string]any{"source": "sql", "mode": "states", "metric": "status", "state": "offline", "format": "table"}, now.Add(-time.Hour), time.Now().Add(time.Minute), time.Second))
	if anno.Error != nil || len(anno.Frames) != 1 || anno.Frames[0].Rows() != 1 {
		t.Fatalf("annotation: %v %v", anno.Error, anno.Frames)
	}
	if text, _ := anno.Frames[0].FieldByName("text"); text.At(0) != "pico status: offline" {
		t.Errorf("annotation text %v", text.At(0))
	}
}
