package plugin

import (
	"context"
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

	"github.com/jackc/pgx/v5"

	"github.com/fieldline-iot/fieldline/internal/ingesterproc"
	"github.com/fieldline-iot/fieldline/internal/testsvc"
)

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
