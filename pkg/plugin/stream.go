package plugin

// Live streaming (issue 4) lives in live*.go: live.go (SubscribeStream / PublishStream / RunStream on
// *Datasource, the instance's one PostgreSQL listener and one MQTT client, started lazily and stopped by
// Dispose through baseCtx and the goroutines WaitGroup), live_channel.go (channel paths), live_pg.go (the
// seam and the PostgreSQL stream), live_mqtt.go (the MQTT stream) and live_settings.go. The helper packages
// are pkg/live/pglisten (one LISTEN connection, fan-out, reconnect), pkg/live/mqttlive (one shared, reference-counted
// MQTT client with a last-message cache) and pkg/live/pacer (frame coalescing with a bounded buffer).
