package testsvc

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestPrivateTLSServers: the private servers refuse plain connections and admit TLS ones.
func TestPrivateTLSServers(t *testing.T) {
	t.Parallel()
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		p := PrivatePostgres(t, PostgresOptions{})
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if c, err := pgx.Connect(ctx, p.URL(p.PasswordRole, p.Password, "disable")); err == nil {
			c.Close(ctx)
			t.Fatal("plain connection admitted")
		} else if !strings.Contains(err.Error(), "no encryption") {
			t.Fatalf("plain connection: want pg_hba refusal, got %v", err)
		}
		c, err := pgx.Connect(ctx, p.URL(p.PasswordRole, p.Password, "verify-full")+"&sslrootcert="+p.Files.CA)
		if err != nil {
			t.Fatalf("TLS with password: %v", err)
		}
		c.Close(ctx)
		c, err = pgx.Connect(ctx, p.URL(p.CertRole, "", "verify-full")+"&sslrootcert="+p.Files.CA+"&sslcert="+p.Files.ClientCert+"&sslkey="+p.Files.ClientKey)
		if err != nil {
			t.Fatalf("TLS with client certificate: %v", err)
		}
		c.Close(ctx)
	})
	t.Run("influx", func(t *testing.T) {
		t.Parallel()
		i := PrivateInflux(t)
		if !strings.HasPrefix(i.URL, "https://127.0.0.1:") {
			t.Fatalf("URL %s", i.URL)
		}
	})
}
