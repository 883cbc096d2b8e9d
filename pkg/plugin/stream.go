package plugin

// Live streaming (issue 4) attaches to Datasource, the one instance per data source that already owns the
// PostgreSQL pool and the settings:
//
//   - add SubscribeStream, PublishStream and RunStream methods on *Datasource (backend.StreamHandler); the
//     SDK's datasource.Manage already serves StreamHandler and routes it to the instance when the instance
//     implements it, so main.go does not change;
//   - start the instance's single LISTEN connection (postgres live source) or MQTT client (mqtt live source)
//     lazily on the first subscription, as goroutines tracked by Datasource.goroutines and stopped by
//     Datasource.baseCtx, which Dispose cancels and waits for;
//   - reuse mqttOptions for the MQTT client, and the builder statements (sqlquery.Build) for the read-back of
//     a watermark-only notification.
//
// Query handling for live queries is already in place: "live": true builder queries answer their history
// through QueryData like any other query, and source "mqtt" queries return an empty frame with a notice when
// live, or a clear error when not.
