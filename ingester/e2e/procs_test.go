package e2e

import (
	"os"
	"strings"
	"testing"

	"github.com/fieldline-iot/fieldline/internal/ingesterproc"
)

// TestGOMAXPROCS: the ingester runs on one thread by default (see the ingester's package documentation) and
// honours a GOMAXPROCS set in its environment.
func TestGOMAXPROCS(t *testing.T) {
	var base []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GOMAXPROCS=") {
			base = append(base, kv)
		}
	}
	for _, c := range []struct {
		env  []string
		want float64
	}{
		{nil, 1},
		{[]string{"GOMAXPROCS=3"}, 3},
	} {
		e := newEnv(t, false)
		p := ingesterproc.Start(t, ingesterBin, e.config(""), append(base, c.env...))
		if got := metric(p.Metrics(), "go_sched_gomaxprocs_threads", "", ""); got != c.want {
			t.Errorf("environment %v: go_sched_gomaxprocs_threads %v, want %v", c.env, got, c.want)
		}
	}
}
