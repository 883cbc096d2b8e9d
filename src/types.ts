import { DataQuery, DataSourceJsonData } from '@grafana/schema';

/** Where a query reads from: TimescaleDB/PostgreSQL (SQL), InfluxDB (Flux) or the MQTT broker (live only). */
export type QuerySource = 'sql' | 'flux' | 'mqtt';
/** Builder: the backend builds a parameterised query from device/metric/sensor. Code: the user's own text. */
export type QueryMode = 'builder' | 'code';
/** 'none' (or '', as older queries and provisioning write it): every reading, no buckets — the only builder
 * aggregation the live tail streams. */
export type Aggregation = 'none' | 'avg' | 'min' | 'max' | 'last' | 'count' | 'sum';
export type PayloadFormat = 'value' | 'json' | 'influx';
export type ResultFormat = 'time_series' | 'table';
/** What empty buckets of an aggregated builder query become (default none: only buckets with readings). */
export type FillMode = 'none' | 'null' | 'previous' | 'zero';
/** Query variables the backend answers through QueryData (one string field per value). */
export type VariableKind = 'devices' | 'metrics' | 'sensors';

/**
 * The query model: the JSON the frontend sends (docs/plugin.md, "Queries").
 *
 * `device` and `sensor` may hold template variables; after interpolation a multi-value variable
 * becomes a comma separated list (`a,b`), which the backend splits on ','.
 */
export interface FieldlineQuery extends DataQuery {
  source: QuerySource;
  mode: QueryMode;
  device?: string;
  metric?: string;
  sensor?: string;
  aggregation?: Aggregation;
  /** Bucket width; "" means $__interval. */
  interval?: string;
  /** History for the range followed by a live tail over a Grafana Live channel. */
  live?: boolean;
  rawSql?: string;
  flux?: string;
  /** MQTT topic filter, wildcards + and # allowed. */
  topic?: string;
  payloadFormat?: PayloadFormat;
  /** Topic template giving labels, e.g. {device}/{metric}/{sensor}. */
  template?: string;
  format?: ResultFormat;
  fill?: FillMode;
  /** Only for variable queries: which list to return. */
  variable?: VariableKind;
}

export const DEFAULT_QUERY: Partial<FieldlineQuery> = {
  source: 'sql',
  mode: 'builder',
  aggregation: 'avg',
  interval: '',
  live: false,
  payloadFormat: 'value',
  template: '{device}/{metric}/{sensor}',
  format: 'time_series',
};

export type SslMode = 'disable' | 'require' | 'verify-ca' | 'verify-full';

export type TimescaleMode = 'auto' | 'on' | 'off';

export interface PostgresSettings {
  host?: string;
  database?: string;
  user?: string;
  sslMode?: SslMode;
  /** auto (default) detects TimescaleDB; on/off force the variant. */
  timescale?: TimescaleMode;
  /** Aggregated builder queries read the rollups (default true). */
  useRollup?: boolean;
  /** Connection pool size (default 10). */
  maxConns?: number;
  /** Name the server certificate is checked against (verify-full) instead of the host. */
  tlsServerName?: string;
}

export interface InfluxSettings {
  url?: string;
  org?: string;
  bucket?: string;
  /** Code Flux may import only packages that stay inside InfluxDB, and no from/to with host: (default true). */
  restrictFlux?: boolean;
  tlsSkipVerify?: boolean;
  /** Name the server certificate is checked against instead of the URL's host. */
  tlsServerName?: string;
  tlsAuth?: boolean;
  tlsWithCACert?: boolean;
}

export interface MqttSettings {
  url?: string;
  clientIdPrefix?: string;
  username?: string;
  tlsSkipVerify?: boolean;
  /** Name the broker certificate is checked against instead of the URL's host. */
  tlsServerName?: string;
  tlsAuth?: boolean;
  tlsWithCACert?: boolean;
  /** QoS of the live client's subscriptions (default 1). */
  qos?: 0 | 1 | 2;
  /** Let Viewers use $SYS/... filters (broker statistics) in live queries and /topics (default false). */
  allowSysTopics?: boolean;
  /** When set, the topic prefixes user filters must stay under (e.g. ["pico/", "iiot/"]). */
  topicPrefixes?: string[];
}

/** Data-source settings stored in jsonData. */
export interface FieldlineOptions extends DataSourceJsonData {
  postgres?: PostgresSettings;
  influx?: InfluxSettings;
  mqtt?: MqttSettings;
  /** How far behind now the history of a live query ends and its stream begins (default 5s). */
  liveSeamDelay?: string;
  /** At most one live frame per this interval per stream (default 100ms). */
  liveFrameInterval?: string;
  /** Rows one stream may hold between two frames (default 50 000). */
  liveMaxBufferedRows?: number;
  /** How long one query may run, e.g. "30s" (default). */
  statementTimeout?: string;
  /** Rows one query may return (default 1 000 000). */
  rowLimit?: number;
  /** Bytes one code query (SQL or Flux) may read from its database (default 16 MiB). */
  maxResponseBytes?: number;
  /** Bytes all code queries of the data source may hold at once (default 64 MiB). */
  maxBytesInFlight?: number;
}

/** Values stored encrypted in secureJsonData; the frontend only ever sees secureJsonFields flags. */
export interface FieldlineSecureJsonData {
  postgresPassword?: string;
  influxToken?: string;
  mqttPassword?: string;
  tlsCACert?: string;
  tlsClientCert?: string;
  tlsClientKey?: string;
  postgresTLSCACert?: string;
  postgresTLSClientCert?: string;
  postgresTLSClientKey?: string;
  influxTLSCACert?: string;
  influxTLSClientCert?: string;
  influxTLSClientKey?: string;
}

export type SecureKey = keyof FieldlineSecureJsonData;
