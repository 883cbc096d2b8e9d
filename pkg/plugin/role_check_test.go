package plugin

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/jackc/pgx/v5"

	"github.com/fieldline-iot/fieldline/internal/testsvc"
)

// TestHealthWarnsAboutPowerfulRoles: health names the risk for a superuser, for the table owner (the ingester's
// role) and for a member of pg_read_server_files, and says nothing for fieldline_reader, which can still read
// everything a panel needs (migration 7's grants) and nothing more.
func TestHealthWarnsAboutPowerfulRoles(t *testing.T) {
	ownerURL, _ := newPostgres(t, dataset())
	readerURL := testsvc.RoleURL(t, "FIELDLINE_TEST_POSTGRES_READER_URL", ownerURL)
	adminURL := testsvc.RoleURL(t, "FIELDLINE_TEST_POSTGRES_ADMIN_URL", ownerURL)
	ctx := context.Background()

	// A non-superuser that may read the server's files.
	admin, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	fileReader := testsvc.RandomName("fieldline_files_")
	if _, err := admin.Exec(ctx, "CREATE ROLE "+fileReader+" LOGIN PASSWORD 'x-"+fileReader+"' IN ROLE pg_read_server_files; GRANT SELECT ON ALL TABLES IN SCHEMA public TO "+fileReader); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = admin.Exec(context.Background(), "DROP OWNED BY "+fileReader+"; DROP ROLE "+fileReader)
	})
	u, _ := url.Parse(ownerURL)
	u.User = url.UserPassword(fileReader, "x-"+fileReader)
	fileURL := u.String()

	health := func(url string) string {
		t.Helper()
		d := newDS(t, settingsFor(t, url, nil, nil))
		res, err := d.CheckHealth(ctx, &backend.CheckHealthRequest{})
		if err != nil || res.Status != backend.HealthStatusOk {
			t.Fatalf("health: %v %v %q", err, res.Status, res.Message)
		}
		return res.Message
	}
	for _, c := range []struct{ name, url, want string }{
		{"superuser", adminURL, "is a superuser"},
		{"table owner (the ingester's role)", ownerURL, "owns table readings"},
		{"pg_read_server_files member", fileURL, "pg_read_server_files"},
	} {
		msg := health(c.url)
		if !strings.Contains(msg, "Warning") || !strings.Contains(msg, c.want) || !strings.Contains(msg, "fieldline_reader") {
			t.Errorf("%s: health does not warn (%q): %s", c.name, c.want, msg)
		}
		if strings.Contains(msg, "x-"+fileReader) {
			t.Errorf("%s: health echoes a password: %s", c.name, msg)
		}
	}
	if msg := health(readerURL); strings.Contains(msg, "Warning") {
		t.Errorf("fieldline_reader: health warns: %s", msg)
	}

	// The reader sees what panels read (raw and rollups) through the plugin, and can change nothing.
	d := newDS(t, settingsFor(t, readerURL, nil, nil))
	from, to := dataset()[0].Time.Add(-time.Minute), dataset()[len(dataset())-1].Time.Add(time.Minute)
	resp := runOne(t, d, dq(t, "A", map[string]any{"source": "sql", "mode": "builder", "metric": "temperature", "aggregation": "avg", "interval": "1m"}, from, to, time.Minute))
	if resp.Error != nil || len(resp.Frames) == 0 {
		t.Fatalf("reader's aggregated builder query: %v, %d frames", resp.Error, len(resp.Frames))
	}
	reader, err := pgx.Connect(ctx, readerURL)
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close(ctx)
	for _, stmt := range []string{
		"BEGIN READ WRITE; INSERT INTO readings (time, device, metric, value) VALUES (now(), 'x', 'y', 1)",
		"BEGIN READ WRITE; LOCK TABLE readings IN ACCESS EXCLUSIVE MODE",
		"SELECT pg_read_file('/etc/hostname')",
	} {
		_, err := reader.Exec(ctx, stmt)
		_, _ = reader.Exec(ctx, "ROLLBACK")
		if err == nil || !strings.Contains(err.Error(), "permission denied") {
			t.Errorf("fieldline_reader: %s: want permission denied, got %v", stmt, err)
		}
	}
}
