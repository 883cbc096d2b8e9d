package plugin

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
)

const healthTimeout = 15 * time.Second

// partHealth is the result of one configured backend's check.
type partHealth struct {
	Name    string `json:"name"`
	OK      bool   `json:"ok"`
	Message string `json:"message"`
}

// CheckHealth checks every configured backend concurrently — PostgreSQL (reachable, readings present,
// TimescaleDB or plain, read-only session), InfluxDB (reachable, bucket present), MQTT (connects) — and
// returns one message naming each part and, for a broken one, why. Secrets are redacted.
func (d *Datasource) CheckHealth(ctx context.Context, _ *backend.CheckHealthRequest) (*backend.CheckHealthResult, error) {
	if d.settingsErr != nil {
		return &backend.CheckHealthResult{Status: backend.HealthStatusError, Message: d.settingsErr.Error()}, nil
	}
	if d.disposed.Load() {
		return &backend.CheckHealthResult{Status: backend.HealthStatusError, Message: errDisposed.Error()}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, healthTimeout)
	defer cancel()

	type check struct {
		name string
		fn   func(context.Context) (string, error)
	}
	var checks []check
	if d.pg != nil {
		checks = append(checks, check{"PostgreSQL", d.pg.health})
	}
	if d.influx != nil {
		checks = append(checks, check{"InfluxDB", d.influx.health})
	}
	if m := d.settings.MQTT; m != nil {
		checks = append(checks, check{"MQTT", func(ctx context.Context) (string, error) {
			return mqttHealth(ctx, m, d.socks.mqtt(), d.live.MQTTConnected())
		}})
	}
	parts := make([]partHealth, len(checks))
	var wg sync.WaitGroup
	for i, c := range checks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			msg, err := c.fn(ctx)
			if err != nil {
				parts[i] = partHealth{Name: c.name, Message: d.redact(fmt.Sprintf("%s failed: %v", c.name, err))}
				return
			}
			parts[i] = partHealth{Name: c.name, OK: true, Message: d.redact(msg)}
		}()
	}
	wg.Wait()

	status := backend.HealthStatusOk
	msgs := make([]string, 0, len(parts))
	for _, p := range parts {
		if !p.OK {
			status = backend.HealthStatusError
		}
		msgs = append(msgs, p.Message)
	}
	details, _ := json.Marshal(map[string]any{"parts": parts})
	logger := backend.Logger.FromContext(ctx)
	if status == backend.HealthStatusOk {
		logger.Debug("Health check passed", "parts", len(parts))
	} else {
		logger.Warn("Health check failed", "message", strings.Join(msgs, "; "))
	}
	return &backend.CheckHealthResult{Status: status, Message: strings.Join(msgs, "; "), JSONDetails: details}, nil
}
