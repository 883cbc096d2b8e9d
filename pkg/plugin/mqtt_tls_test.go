package plugin

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/grafana/grafana-plugin-sdk-go/backend"

	"github.com/fieldline-iot/fieldline/internal/testsvc"
)

// TestMQTTTLSToggles: against a broker whose certificate only the saved CA trusts, the health check (which
// connects the way the live client does) passes with the CA in use, and fails once the editor's "With CA cert"
// is turned off although Grafana still holds the CA: a toggle that is off leaves nothing in use. Settings
// without the toggle (a provisioned file) use what is saved.
func TestMQTTTLSToggles(t *testing.T) {
	m := testsvc.PrivateMosquitto(t, testsvc.MosquittoOptions{TLS: true})
	ca, err := os.ReadFile(m.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	check := func(mqtt map[string]any) *backend.CheckHealthResult {
		t.Helper()
		mqtt["url"] = "ssl://localhost:" + m.Port
		j, _ := json.Marshal(map[string]any{"mqtt": mqtt})
		inst, err := NewDatasource(context.Background(), backend.DataSourceInstanceSettings{UID: "tls", JSONData: j,
			DecryptedSecureJSONData: map[string]string{"tlsCACert": string(ca)}})
		if err != nil {
			t.Fatal(err)
		}
		d := inst.(*Datasource)
		defer d.Dispose()
		r, err := d.CheckHealth(context.Background(), &backend.CheckHealthRequest{})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	for name, c := range map[string]struct {
		mqtt map[string]any
		ok   bool
	}{
		"CA toggle on":            {map[string]any{"tlsWithCACert": true}, true},
		"no toggle (provisioned)": {map[string]any{}, true},
		"CA toggle off, CA saved": {map[string]any{"tlsWithCACert": false}, false},
		"client auth off, CA on":  {map[string]any{"tlsWithCACert": true, "tlsAuth": false}, true},
	} {
		r := check(c.mqtt)
		if ok := r.Status == backend.HealthStatusOk; ok != c.ok {
			t.Errorf("%s: health %v (%s), want ok=%v", name, r.Status, r.Message, c.ok)
		}
		if !c.ok && !strings.Contains(r.Message, "certificate") {
			t.Errorf("%s: the failure should say the certificate is not trusted: %s", name, r.Message)
		}
	}
}

func TestTLSSecretsToggles(t *testing.T) {
	sec := map[string]string{"tlsCACert": "ca", "tlsClientCert": "c", "tlsClientKey": "k", "mqttPassword": "pw"}
	f, tr := false, true
	if got := tlsSecrets(sec, mqttTLSKeys, nil, nil); string(got.CA) != "ca" || string(got.Cert) != "c" || string(got.Key) != "k" {
		t.Fatalf("no toggles: %+v", got)
	}
	got := tlsSecrets(sec, mqttTLSKeys, &f, &tr)
	if got.CA != nil || string(got.Cert) != "c" {
		t.Fatalf("CA off: %+v", got)
	}
	got = tlsSecrets(sec, mqttTLSKeys, &tr, &f)
	if got.Key != nil || got.Cert != nil || string(got.CA) != "ca" {
		t.Fatalf("client auth off: %+v", got)
	}
	if sec["tlsCACert"] != "ca" || len(sec) != 4 {
		t.Fatal("the instance's secure settings were modified")
	}
}
