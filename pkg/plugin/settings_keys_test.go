package plugin

import (
	"os"
	"regexp"
	"slices"
	"testing"
)

func TestSettingsKeys(t *testing.T) {
	keys := JSONDataKeys()
	for _, want := range []string{"postgres.host", "postgres.useRollup", "influx.bucket", "mqtt.url"} {
		if !slices.Contains(keys, want) {
			t.Errorf("JSONDataKeys() lacks %s: %v", want, keys)
		}
	}
	// Every secureJsonData key the loader reads is listed (and nothing else).
	src, err := os.ReadFile("settings.go")
	if err != nil {
		t.Fatal(err)
	}
	var read []string
	for _, m := range regexp.MustCompile(`sec\["([A-Za-z]+)"\]`).FindAllStringSubmatch(string(src), -1) {
		if !slices.Contains(read, m[1]) {
			read = append(read, m[1])
		}
	}
	slices.Sort(read)
	listed := slices.Sorted(slices.Values(SecureJSONDataKeys))
	if !slices.Equal(read, listed) {
		t.Errorf("settings.go reads secureJsonData %v, SecureJSONDataKeys lists %v", read, listed)
	}
}
