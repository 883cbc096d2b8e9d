package plugin

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestFluxDiscoveryMatchesSQL: with both databases configured and the same data in each, every picker and
// variable answers from the database its source names (?source=flux reaches InfluxDB), and InfluxDB 1.8 answers
// the same lists as PostgreSQL, the unfiltered metrics list included (v1.measurements takes no start on 1.8).
func TestFluxDiscoveryMatchesSQL(t *testing.T) {
	rows := dataset()
	pgURL, _ := newPostgres(t, rows)
	influx := newInflux(t, rows)
	d := newDS(t, settingsFor(t, pgURL, &influx, nil))
	srv := resourceServer(t, d)
	for _, q := range []string{"/metrics", "/metrics?device=node1", "/devices", "/devices?metric=temperature", "/sensors?device=pico", "/sensors?metric=humidity"} {
		sep := "?"
		if strings.Contains(q, "?") {
			sep = "&"
		}
		sqlBody, s1 := get(t, srv+q+sep+"source=sql")
		fluxBody, s2 := get(t, srv+q+sep+"source=flux")
		if s1 != http.StatusOK || s2 != http.StatusOK {
			t.Fatalf("%s: sql %d %s, flux %d %s", q, s1, sqlBody, s2, fluxBody)
		}
		if strings.TrimSpace(sqlBody) != strings.TrimSpace(fluxBody) || strings.TrimSpace(sqlBody) == "[]" {
			t.Errorf("%s: sql %s, flux %s", q, sqlBody, fluxBody)
		}
	}
	for _, variable := range []string{"metrics", "devices", "sensors"} {
		var got [2][]string
		for i, source := range []string{"sql", "flux"} {
			r := runOne(t, d, dq(t, "V", map[string]any{"source": source, "variable": variable}, base, base.Add(time.Hour), time.Minute))
			if r.Error != nil {
				t.Fatalf("%s variable %s: %v", source, variable, r.Error)
			}
			for j := 0; j < r.Frames[0].Rows(); j++ {
				got[i] = append(got[i], r.Frames[0].Fields[0].At(j).(string))
			}
		}
		if !slices.Equal(got[0], got[1]) || len(got[0]) == 0 {
			t.Errorf("variable %s: sql %v, flux %v", variable, got[0], got[1])
		}
	}
}
