package plugin

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/fieldline-iot/fieldline/internal/mqttconn"
	"github.com/fieldline-iot/fieldline/pkg/live"
	"github.com/fieldline-iot/fieldline/pkg/live/mqttlive"
)

// mqttClientID returns the configured fixed id, else prefix-role-<random>: unique per connection, so two
// Grafana replicas never kick each other off.
func mqttClientID(cfg *MQTTSettings, role string) string {
	if cfg.ClientID != "" {
		return cfg.ClientID
	}
	prefix := cfg.ClientIDPrefix
	var b [4]byte
	_, _ = rand.Read(b[:])
	return prefix + "-" + role + "-" + hex.EncodeToString(b[:])
}

// mqttOptions are the connection options of a settings block, for the live client and the health check.
func mqttOptions(cfg *MQTTSettings, clientID string) *mqtt.ClientOptions {
	return mqttconn.Broker{
		URL: cfg.URL, ClientID: clientID, Username: cfg.Username, Password: cfg.Password, TLS: cfg.TLS,
		ConnectTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second,
	}.ClientOptions().
		SetCleanSession(true).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetOrderMatters(false)
}

// mqttHealth connects to the broker with the live client's own code path and disconnects. With a fixed client id
// and the live connection up it reports that connection instead: a second connection with the same id would
// make the broker drop the live one.
func mqttHealth(ctx context.Context, cfg *MQTTSettings, dial mqttconn.ContextDialer, liveUp bool) (string, error) {
	if cfg.ClientID != "" && liveUp {
		return "MQTT ok: the live connection (client id " + cfg.ClientID + ") is up", nil
	}
	err := mqttlive.Check(ctx, mqttlive.Config{Options: mqttOptions(cfg, mqttClientID(cfg, "health")), Dial: dial, Logger: live.Logger()})
	if err != nil {
		return "", err
	}
	return "MQTT ok: connected to the broker", nil
}
