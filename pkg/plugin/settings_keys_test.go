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
	// sec["key"], and the TLS key triples tlsSecrets reads: tlsKeys{"ca", "cert", "key"}.
	for _, m := range regexp.MustCompile(`sec\["([A-Za-z]+)"\]|tlsKeys\{"([A-Za-z]+)", "([A-Za-z]+)", "([A-Za-z]+)"\}`).FindAllStringSubmatch(string(src), -1) {
		for _, k := range m[1:] {
			if k != "" && !slices.Contains(read, k) {
				read = append(read, k)
			}
		}
	}
	slices.Sort(read)
	listed := slices.Sorted(slices.Values(SecureJSONDataKeys))
	if !slices.Equal(read, listed) {
		t.Errorf("settings.go reads secureJsonData %v, SecureJSONDataKeys lists %v", read, listed)
	}
}
