package plugin

import (
	"reflect"
	"slices"
	"sort"
	"strings"

	"github.com/fieldline-iot/fieldline/pkg/live"
)

// SecureJSONDataKeys are the secureJsonData keys LoadSettings reads.
var SecureJSONDataKeys = []string{"postgresPassword", "influxToken", "mqttPassword", "tlsCACert", "tlsClientCert", "tlsClientKey",
	"postgresTLSCACert", "postgresTLSClientCert", "postgresTLSClientKey", "influxTLSCACert", "influxTLSClientCert", "influxTLSClientKey"}

// JSONDataKeys lists the jsonData leaf paths LoadSettings and live.LoadSettings read ("postgres.host",
// "liveSeamDelay"), derived from the structs they decode into, so the list cannot drift from the loaders. Provisioning checks use it to refuse keys the plugin
// would silently ignore.
func JSONDataKeys() []string {
	var out []string
	var walk func(prefix string, t reflect.Type)
	walk = func(prefix string, t reflect.Type) {
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "" || name == "-" {
				continue
			}
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				walk(prefix+name+".", ft)
				continue
			}
			out = append(out, prefix+name)
		}
	}
	walk("", reflect.TypeFor[jsonSettings]())
	walk("", reflect.TypeFor[live.JSONSettings]())
	sort.Strings(out)
	return slices.Compact(out)
}
