package sqlquery

import (
	"strings"
	"testing"
)

// Catalogue discovery binds every filter value and bound; the label picks the column from a fixed set.
func TestCatalogueDiscoverySQL(t *testing.T) {
	hostile := "x'); DROP TABLE readings; --"
	q, args, err := DiscoverySQL(Discovery{Label: Device, Metrics: []string{hostile}, Sensors: []string{"a", hostile},
		Limit: 10, MaxSeries: 100, Catalogue: true, Recent: "7 days"})
	if err != nil {
		t.Fatal(err)
	}
	want := "SELECT DISTINCT s.device FROM (SELECT metric, device, sensor FROM readings_series WHERE metric = $1 AND sensor = ANY($2::text[]) ORDER BY metric, device, sensor LIMIT $3) s ORDER BY 1 LIMIT $4"
	if q != want {
		t.Errorf("SQL:\n%s\nwant\n%s", q, want)
	}
	if strings.Contains(q, hostile) || len(args) != 4 {
		t.Errorf("values not bound: %q %v", q, args)
	}
	if _, _, err := DiscoverySQL(Discovery{Label: "metric; DROP", Limit: 1, MaxSeries: 1, Catalogue: true}); err == nil {
		t.Error("unknown label accepted")
	}
	if _, _, err := DiscoverySQL(Discovery{Label: Metric, Catalogue: true}); err == nil {
		t.Error("zero limits accepted")
	}
}
