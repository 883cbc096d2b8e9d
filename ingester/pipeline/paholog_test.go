package pipeline

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

func TestPahoLogsReachSlogWithoutThePassword(t *testing.T) {
	var buf bytes.Buffer
	old := [3]mqtt.Logger{mqtt.ERROR, mqtt.CRITICAL, mqtt.WARN}
	defer func() { mqtt.ERROR, mqtt.CRITICAL, mqtt.WARN = old[0], old[1], old[2] }()
	WirePahoLogs(slog.New(slog.NewTextHandler(&buf, nil)), "Pa55-word")
	mqtt.CRITICAL.Println("[pinger]", "pingresp not received, disconnecting")
	mqtt.ERROR.Printf("connect to %s failed", "tcp://u:Pa55-word@broker:1883")
	out := buf.String()
	for _, want := range []string{"level=ERROR", "pingresp not received", "component=paho", "u:xxxxx@broker"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "Pa55-word") {
		t.Errorf("password logged:\n%s", out)
	}
}
