import { DataQuery, DataSourceJsonData } from '@grafana/schema';

import { QUERY_FIELDS, QUERY_VALUES, SECURE_JSON_DATA_KEYS, SETTINGS_VALUES } from './contract.gen';

// The enumerations come from src/contract.gen.ts, which Go writes from the backend's parsers (a Go test fails when
// it is stale): a value added on one side is a tsc error on the other.

/** Where a query reads from: TimescaleDB/PostgreSQL (SQL), InfluxDB (Flux) or the MQTT broker (live only). */
export type QuerySource = (typeof QUERY_VALUES.source)[number];
/** Builder: the backend builds a parameterised query from device/metric/sensor. Code: the user's own text. */
export type QueryMode = (typeof QUERY_VALUES.mode)[number];
/** 'none' (or '', as older queries and provisioning write it, or absent): every reading, no buckets. */
export type Aggregation = (typeof QUERY_VALUES.aggregation)[number];
export type PayloadFormat = (typeof QUERY_VALUES.payloadFormat)[number];
export type JsonTimeFormat = (typeof QUERY_VALUES.jsonTimeFormat)[number];
export type ResultFormat = (typeof QUERY_VALUES.format)[number];
/** What empty buckets of an aggregated builder query become (default none: only buckets with readings). */
export type FillMode = (typeof QUERY_VALUES.fill)[number];
/** Query variables the backend answers through QueryData (one string field per value). */
export type VariableKind = (typeof QUERY_VALUES.variable)[number];

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
  /** Code InfluxQL (source influxql). */
  influxql?: string;
  /** MQTT topic filter, wildcards + and # allowed. */
  topic?: string;
  payloadFormat?: PayloadFormat;
  /** Topic template giving labels, e.g. {device}/{metric}/{sensor}. */
  template?: string;
  /** JSON payloads: dotted field paths to read, comma-separated (empty: every numeric field). */
  jsonFields?: string;
  /** JSON payloads: dotted path of the payload's time (empty: receive time). */
  jsonTimeField?: string;
  jsonTimeFormat?: JsonTimeFormat;
  format?: ResultFormat;
  fill?: FillMode;
  /** Only for variable queries: which list to return. */
  variable?: VariableKind;
  /** States mode: keep only the changes to this value (e.g. offline, for an annotation); empty: every change. */
  state?: string;
}

/** True when A and B are the same set of keys. */
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;

/** Compile-time check: FieldlineQuery has exactly the backend's query fields (DataQuery's own besides refId aside). */
export const QUERY_FIELDS_AGREE: Same<
  Exclude<keyof FieldlineQuery, 'hide' | 'key' | 'queryType' | 'datasource'>,
  (typeof QUERY_FIELDS)[number]
> = true;

/**
 * What a new query starts with (Grafana's getDefaultQuery). Not the backend's defaults for absent fields: those
 * are QUERY_DEFAULTS in src/contract.gen.ts, which the editors merge under a saved query.
 */
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

export type SslMode = (typeof SETTINGS_VALUES)['postgres.sslMode'][number];

export type TimescaleMode = (typeof SETTINGS_VALUES)['postgres.timescale'][number];

export type MqttQoS = (typeof SETTINGS_VALUES)['mqtt.qos'][number];

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
  /** The user's own table instead of Fieldline's readings (docs/plugin.md, "Your own table"). */
  table?: TableSettings;
}

/** jsonData.postgres.table: a table the user already has, mapped onto time, value and the labels. */
export interface TableSettings {
  name?: string;
  timeColumn?: string;
  valueColumn?: string;
  deviceColumn?: string;
  metricColumn?: string;
  sensorColumn?: string;
  topicColumn?: string;
  topicTemplate?: string;
  metricName?: string;
  notifyChannel?: string;
}

export interface InfluxSettings {
  url?: string;
  org?: string;
  bucket?: string;
  /** Code Flux may import only packages that stay inside InfluxDB, and no from/to with host: (default true). */
  restrictFlux?: boolean;
  /** Tag naming the device for the Flux builder, variables and pickers (default device). */
  deviceTag?: string;
  /** Tag naming the sensor (default sensor). */
  sensorTag?: string;
  /** Field the Flux builder reads (default value). */
  valueField?: string;
  /** Further tags that tell series apart; each becomes a label. */
  labelTags?: string[];
  tlsSkipVerify?: boolean;
  /** Name the server certificate is checked against instead of the URL's host. */
  tlsServerName?: string;
  tlsAuth?: boolean;
  tlsWithCACert?: boolean;
}

export interface MqttSettings {
  url?: string;
  clientIdPrefix?: string;
  /** Exact client id of the plugin's one broker connection (wins over clientIdPrefix). */
  clientId?: string;
  username?: string;
  tlsSkipVerify?: boolean;
  /** Name the broker certificate is checked against instead of the URL's host. */
  tlsServerName?: string;
  tlsAuth?: boolean;
  tlsWithCACert?: boolean;
  /** QoS of the live client's subscriptions (default 1). */
  qos?: MqttQoS;
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
  /** Private Data source Connect: every connection through Grafana's secure SOCKS proxy (@grafana/ui's switch). */
  enableSecureSocksProxy?: boolean;
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

/** Compile-time check: the secure keys are exactly the backend's. */
export const SECURE_KEYS_AGREE: Same<SecureKey, (typeof SECURE_JSON_DATA_KEYS)[number]> = true;
