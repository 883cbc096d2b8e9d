// Code generated from the backend's parsers and loaders (pkg/plugin/contract.go). DO NOT EDIT.
// Regenerate: go test ./pkg/plugin -run TestContractFile -update

/** The query model's fields (refId included). */
export const QUERY_FIELDS = [
  "aggregation",
  "device",
  "fill",
  "flux",
  "format",
  "influxql",
  "interval",
  "jsonFields",
  "jsonTimeField",
  "jsonTimeFormat",
  "live",
  "metric",
  "mode",
  "payloadFormat",
  "rawSql",
  "refId",
  "sensor",
  "source",
  "state",
  "template",
  "topic",
  "variable"
] as const;

/** The values each enumerated query field accepts, in the order the editor offers them. */
export const QUERY_VALUES = {
  "aggregation": [
    "none",
    "avg",
    "min",
    "max",
    "last",
    "count",
    "sum"
  ],
  "fill": [
    "none",
    "null",
    "previous",
    "zero"
  ],
  "format": [
    "time_series",
    "table"
  ],
  "jsonTimeFormat": [
    "auto",
    "unix",
    "unix_ms",
    "unix_us",
    "unix_ns",
    "rfc3339"
  ],
  "mode": [
    "builder",
    "code",
    "states"
  ],
  "payloadFormat": [
    "value",
    "json",
    "influx"
  ],
  "source": [
    "sql",
    "flux",
    "influxql",
    "mqtt"
  ],
  "variable": [
    "devices",
    "metrics",
    "sensors"
  ]
} as const;

/** What the backend uses for a query field that is absent. */
export const QUERY_DEFAULTS = {
  "aggregation": "none",
  "fill": "none",
  "format": "time_series",
  "interval": "",
  "jsonTimeFormat": "auto",
  "live": false,
  "mode": "builder",
  "payloadFormat": "value",
  "source": "sql",
  "template": ""
} as const;

/** The jsonData keys the backend reads. */
export const JSON_DATA_KEYS = [
  "enableSecureSocksProxy",
  "influx.bucket",
  "influx.deviceTag",
  "influx.labelTags",
  "influx.org",
  "influx.restrictFlux",
  "influx.sensorTag",
  "influx.tlsAuth",
  "influx.tlsServerName",
  "influx.tlsSkipVerify",
  "influx.tlsWithCACert",
  "influx.url",
  "influx.valueField",
  "liveFrameInterval",
  "liveMaxBufferedRows",
  "liveSeamDelay",
  "maxBytesInFlight",
  "maxResponseBytes",
  "mqtt.allowSysTopics",
  "mqtt.clientId",
  "mqtt.clientIdPrefix",
  "mqtt.qos",
  "mqtt.tlsAuth",
  "mqtt.tlsServerName",
  "mqtt.tlsSkipVerify",
  "mqtt.tlsWithCACert",
  "mqtt.topicPrefixes",
  "mqtt.url",
  "mqtt.username",
  "postgres.database",
  "postgres.host",
  "postgres.maxConns",
  "postgres.sslMode",
  "postgres.table.deviceColumn",
  "postgres.table.metricColumn",
  "postgres.table.metricName",
  "postgres.table.name",
  "postgres.table.notifyChannel",
  "postgres.table.sensorColumn",
  "postgres.table.timeColumn",
  "postgres.table.topicColumn",
  "postgres.table.topicTemplate",
  "postgres.table.valueColumn",
  "postgres.timescale",
  "postgres.tlsServerName",
  "postgres.useRollup",
  "postgres.user",
  "rowLimit",
  "statementTimeout"
] as const;

/** The secureJsonData keys the backend reads. */
export const SECURE_JSON_DATA_KEYS = [
  "influxTLSCACert",
  "influxTLSClientCert",
  "influxTLSClientKey",
  "influxToken",
  "mqttPassword",
  "postgresPassword",
  "postgresTLSCACert",
  "postgresTLSClientCert",
  "postgresTLSClientKey",
  "tlsCACert",
  "tlsClientCert",
  "tlsClientKey"
] as const;

/** The values enumerated settings accept. */
export const SETTINGS_VALUES = {
  "mqtt.qos": [
    0,
    1,
    2
  ],
  "mqtt.url.scheme": [
    "tcp",
    "mqtt",
    "ssl",
    "tls",
    "mqtts",
    "tcps",
    "ws",
    "wss"
  ],
  "postgres.sslMode": [
    "disable",
    "allow",
    "prefer",
    "require",
    "verify-ca",
    "verify-full"
  ],
  "postgres.timescale": [
    "auto",
    "on",
    "off"
  ]
} as const;

/** What the backend uses for an absent setting (postgres.sslModeLoopback: for localhost). */
export const SETTINGS_DEFAULTS = {
  "influx.restrictFlux": true,
  "liveFrameInterval": "100ms",
  "liveMaxBufferedRows": 50000,
  "liveSeamDelay": "5s",
  "maxBytesInFlight": 67108864,
  "maxResponseBytes": 16777216,
  "mqtt.allowSysTopics": false,
  "mqtt.clientIdPrefix": "fieldline-grafana",
  "mqtt.qos": 1,
  "postgres.maxConns": 10,
  "postgres.sslMode": "require",
  "postgres.sslModeLoopback": "disable",
  "postgres.timescale": "auto",
  "postgres.useRollup": true,
  "rowLimit": 1000000,
  "statementTimeout": "30s"
} as const;
