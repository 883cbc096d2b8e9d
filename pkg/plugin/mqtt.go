package plugin

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// mqttClientID returns prefix-<random>: unique per connection, so two Grafana replicas never kick each other off.
func mqttClientID(prefix, role string) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return prefix + "-" + role + "-" + hex.EncodeToString(b[:])
}

// mqttOptions are the paho options for a settings block (shared with the streaming client of issue 4).
func mqttOptions(cfg *MQTTSettings, clientID string) *mqtt.ClientOptions {
	o := mqtt.NewClientOptions().
		AddBroker(cfg.URL).
		SetClientID(clientID).
		SetCleanSession(true).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetConnectTimeout(10 * time.Second).
		SetWriteTimeout(10 * time.Second).
		SetOrderMatters(false)
	if cfg.Username != "" {
		o.SetUsername(cfg.Username)
	}
	if cfg.Password != "" {
		o.SetPassword(cfg.Password)
	}
	if cfg.TLS != nil {
		o.SetTLSConfig(cfg.TLS.Clone())
	}
	return o
}

// mqttHealth connects to the broker and disconnects.
func mqttHealth(ctx context.Context, cfg *MQTTSettings) (string, error) {
	c := mqtt.NewClient(mqttOptions(cfg, mqttClientID(cfg.ClientIDPrefix, "health")))
	tok := c.Connect()
	select {
	case <-tok.Done():
	case <-ctx.Done():
		// paho has no cancellable connect: disconnect when it finishes, without waiting here.
		go func() {
			tok.Wait()
			if c.IsConnected() {
				c.Disconnect(0)
			}
		}()
		return "", fmt.Errorf("connect: %w", ctx.Err())
	}
	if err := tok.Error(); err != nil {
		return "", fmt.Errorf("connect: %w", err)
	}
	if !c.IsConnected() {
		return "", errors.New("connect: not connected")
	}
	c.Disconnect(250)
	return "MQTT ok: connected to the broker", nil
}
