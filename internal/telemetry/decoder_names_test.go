package telemetry

import (
	"slices"
	"testing"
)

// TestTimeFormatNames: the names editors offer are exactly the formats the decoder takes (besides the aliases).
func TestTimeFormatNames(t *testing.T) {
	for _, n := range TimeFormatNames {
		if _, ok := timeFormats[n]; !ok {
			t.Errorf("%s is offered but not accepted", n)
		}
	}
	for n := range timeFormats {
		if n != "" && n != "unix_s" && !slices.Contains(TimeFormatNames, n) {
			t.Errorf("%s is accepted but not offered", n)
		}
	}
}
