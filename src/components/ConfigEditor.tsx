import { css } from '@emotion/css';
import React, { ChangeEvent, FormEvent } from 'react';

import { DataSourcePluginOptionsEditorProps, GrafanaTheme2, SelectableValue } from '@grafana/data';
import { ConfigSection, DataSourceDescription } from '@grafana/plugin-ui';
import { Alert, Divider, Field, Input, RadioButtonGroup, SecretInput, Select, Switch, useStyles2 } from '@grafana/ui';

import {
  FieldlineOptions,
  FieldlineSecureJsonData,
  InfluxSettings,
  MqttSettings,
  PostgresSettings,
  SecureKey,
  SslMode,
  TimescaleMode,
} from '../types';
import { PemSecret, TlsFields } from './TlsFields';
import { validateDuration, validateHostPort, validateInfluxUrl, validateMqttUrl } from '../validation';

export type Props = DataSourcePluginOptionsEditorProps<FieldlineOptions, FieldlineSecureJsonData>;

const SSL_MODES: Array<SelectableValue<SslMode>> = [
  { label: 'disable', value: 'disable', description: 'No TLS' },
  { label: 'require', value: 'require', description: 'TLS, no certificate check' },
  { label: 'verify-ca', value: 'verify-ca', description: 'TLS, server certificate signed by a trusted CA' },
  { label: 'verify-full', value: 'verify-full', description: 'TLS, CA and host name checked' },
];

const QOS_OPTIONS: Array<SelectableValue<0 | 1 | 2>> = [
  { label: 'QoS 0', value: 0, description: 'At most once: least work per message' },
  { label: 'QoS 1', value: 1, description: 'At least once' },
  { label: 'QoS 2', value: 2, description: 'Exactly once: two more packets per message' },
];

const TIMESCALE_OPTIONS: Array<SelectableValue<TimescaleMode>> = [
  { label: 'auto', value: 'auto', description: 'Use TimescaleDB when the extension is installed' },
  { label: 'on', value: 'on' },
  { label: 'off', value: 'off', description: 'Plain PostgreSQL SQL even where TimescaleDB is installed' },
];

const WIDTH = 48;
const MIB = 1 << 20;

export function ConfigEditor(props: Props) {
  const { onOptionsChange, options } = props;
  const styles = useStyles2(getStyles);
  const jsonData = options.jsonData ?? {};
  const pg: PostgresSettings = jsonData.postgres ?? {};
  const influx: InfluxSettings = jsonData.influx ?? {};
  const mqtt: MqttSettings = jsonData.mqtt ?? {};
  const secureFields = (options.secureJsonFields ?? {}) as Record<string, boolean>;
  const secureData = (options.secureJsonData ?? {}) as FieldlineSecureJsonData;

  const setJson = (patch: Partial<FieldlineOptions>) =>
    onOptionsChange({ ...options, jsonData: { ...jsonData, ...patch } });
  const setPg = (patch: Partial<PostgresSettings>) => setJson({ postgres: { ...pg, ...patch } });
  const setInflux = (patch: Partial<InfluxSettings>) => setJson({ influx: { ...influx, ...patch } });
  const setMqtt = (patch: Partial<MqttSettings>) => setJson({ mqtt: { ...mqtt, ...patch } });

  const text = (fn: (v: string) => void) => (e: ChangeEvent<HTMLInputElement>) => fn(e.currentTarget.value);

  const setSecret = (key: SecureKey) => (e: FormEvent<HTMLInputElement | HTMLTextAreaElement>) =>
    onOptionsChange({ ...options, secureJsonData: { ...secureData, [key]: e.currentTarget.value } });

  const resetSecret = (key: SecureKey) => () =>
    onOptionsChange({
      ...options,
      secureJsonFields: { ...secureFields, [key]: false },
      secureJsonData: { ...secureData, [key]: '' },
    });

  const pemSecret = (key: SecureKey): PemSecret => ({
    configured: !!secureFields[key],
    onReset: resetSecret(key),
    onChange: setSecret(key),
  });

  const hostError = validateHostPort(pg.host);
  const influxError = validateInfluxUrl(influx.url);
  const mqttError = validateMqttUrl(mqtt.url);
  const seamError = validateDuration(jsonData.liveSeamDelay);
  const frameError = validateDuration(jsonData.liveFrameInterval);
  const timeoutError = validateDuration(jsonData.statementTimeout);

  return (
    <div className={styles.root}>
      <DataSourceDescription
        dataSourceName="Fieldline"
        docsLink="https://grafana.com/developers/plugin-tools/"
        hasRequiredFields={false}
      />
      <Divider />

      <ConfigSection
        title="PostgreSQL / TimescaleDB"
        description="History and the live tail from the readings table. TimescaleDB is detected automatically; plain PostgreSQL 14+ works too. Sessions are read-only."
      >
        <Field label="Host" description="host:port of the server" invalid={!!hostError} error={hostError}>
          <Input
            id="fl-pg-host"
            width={WIDTH}
            value={pg.host ?? ''}
            placeholder="localhost:5432"
            onChange={text((host) => setPg({ host }))}
          />
        </Field>
        <Field label="Database">
          <Input
            id="fl-pg-database"
            width={WIDTH}
            value={pg.database ?? ''}
            placeholder="fieldline"
            onChange={text((database) => setPg({ database }))}
          />
        </Field>
        <Field label="User" description="A role with SELECT on readings is enough">
          <Input
            id="fl-pg-user"
            width={WIDTH}
            value={pg.user ?? ''}
            placeholder="grafana"
            onChange={text((user) => setPg({ user }))}
          />
        </Field>
        <Field label="Password">
          <SecretInput
            id="fl-pg-password"
            width={WIDTH}
            isConfigured={!!secureFields.postgresPassword}
            value={secureData.postgresPassword ?? ''}
            placeholder="Password"
            onReset={resetSecret('postgresPassword')}
            onChange={setSecret('postgresPassword')}
          />
        </Field>
        <Field label="TLS/SSL mode">
          <Select
            inputId="fl-pg-sslmode"
            width={WIDTH}
            options={SSL_MODES}
            value={pg.sslMode ?? null}
            placeholder="Default: require (disable on localhost / 127.0.0.1)"
            onChange={(v) => setPg({ sslMode: v.value })}
          />
        </Field>
        {pg.sslMode && pg.sslMode !== 'disable' && (
          <TlsFields
            idPrefix="fl-pg"
            peer="server"
            width={WIDTH}
            serverName={pg.tlsServerName}
            onServerName={(tlsServerName) => setPg({ tlsServerName })}
            ca={pemSecret('postgresTLSCACert')}
            clientCert={pemSecret('postgresTLSClientCert')}
            clientKey={pemSecret('postgresTLSClientKey')}
          />
        )}
        <Field label="TimescaleDB" description="auto detects the extension; on or off forces the variant.">
          <RadioButtonGroup<TimescaleMode>
            id="fl-pg-timescale"
            options={TIMESCALE_OPTIONS}
            value={pg.timescale ?? 'auto'}
            onChange={(timescale) => setPg({ timescale })}
          />
        </Field>
        <Field
          label="Read rollups"
          description="Aggregated builder queries read the rollup tables (kept for every writer since schema 9). Off: always the raw table."
        >
          <Switch
            id="fl-pg-userollup"
            value={pg.useRollup ?? true}
            onChange={(e) => setPg({ useRollup: e.currentTarget.checked })}
          />
        </Field>
        <Field label="Max connections" description="Size of the connection pool. Default 10.">
          <Input
            id="fl-pg-maxconns"
            type="number"
            width={WIDTH / 3}
            placeholder="10"
            value={pg.maxConns ?? ''}
            onChange={text((v) => setPg({ maxConns: v === '' ? undefined : Math.round(Number(v)) }))}
          />
        </Field>
      </ConfigSection>
      <Divider />

      <ConfigSection
        title="InfluxDB"
        description="Optional second history store (InfluxDB 2.x, or 1.8+ through its v2 API) queried with Flux."
        isCollapsible
        isInitiallyOpen={true}
      >
        <Field label="URL" invalid={!!influxError} error={influxError}>
          <Input
            id="fl-influx-url"
            width={WIDTH}
            value={influx.url ?? ''}
            placeholder="http://localhost:8086"
            onChange={text((url) => setInflux({ url }))}
          />
        </Field>
        <Field label="Organization">
          <Input
            id="fl-influx-org"
            width={WIDTH}
            value={influx.org ?? ''}
            placeholder="fieldline"
            onChange={text((org) => setInflux({ org }))}
          />
        </Field>
        <Field label="Bucket" description="Available to Flux as v.bucket">
          <Input
            id="fl-influx-bucket"
            width={WIDTH}
            value={influx.bucket ?? ''}
            placeholder="telemetry"
            onChange={text((bucket) => setInflux({ bucket }))}
          />
        </Field>
        <Field label="Token">
          <SecretInput
            id="fl-influx-token"
            width={WIDTH}
            isConfigured={!!secureFields.influxToken}
            value={secureData.influxToken ?? ''}
            placeholder="API token"
            onReset={resetSecret('influxToken')}
            onChange={setSecret('influxToken')}
          />
        </Field>
        <TlsFields
          idPrefix="fl-influx"
          peer="server"
          width={WIDTH}
          toggles={{
            skipVerify: !!influx.tlsSkipVerify,
            withCACert: !!influx.tlsWithCACert,
            auth: !!influx.tlsAuth,
            onSkipVerify: (tlsSkipVerify) => setInflux({ tlsSkipVerify }),
            onWithCACert: (tlsWithCACert) => setInflux({ tlsWithCACert }),
            onAuth: (tlsAuth) => setInflux({ tlsAuth }),
          }}
          serverName={influx.tlsServerName}
          onServerName={(tlsServerName) => setInflux({ tlsServerName })}
          ca={pemSecret('influxTLSCACert')}
          clientCert={pemSecret('influxTLSClientCert')}
          clientKey={pemSecret('influxTLSClientKey')}
        />
      </ConfigSection>
      <Divider />

      <ConfigSection
        title="MQTT"
        description="The broker the sensors publish to. One client per data source; subscriptions are shared."
        isCollapsible
        isInitiallyOpen={true}
      >
        <Field
          label="Broker URL"
          description="tcp:// or mqtt://; ssl://, tls://, mqtts:// or tcps:// (TLS); ws:// or wss://"
          invalid={!!mqttError}
          error={mqttError}
        >
          <Input
            id="fl-mqtt-url"
            width={WIDTH}
            value={mqtt.url ?? ''}
            placeholder="tcp://localhost:1883"
            onChange={text((url) => setMqtt({ url }))}
          />
        </Field>
        <Field label="Client ID prefix" description="A random suffix is added per connection">
          <Input
            id="fl-mqtt-clientid"
            width={WIDTH}
            value={mqtt.clientIdPrefix ?? ''}
            placeholder="grafana-fieldline"
            onChange={text((clientIdPrefix) => setMqtt({ clientIdPrefix }))}
          />
        </Field>
        <Field label="Username">
          <Input
            id="fl-mqtt-username"
            width={WIDTH}
            value={mqtt.username ?? ''}
            placeholder="Optional"
            onChange={text((username) => setMqtt({ username }))}
          />
        </Field>
        <Field label="Password">
          <SecretInput
            id="fl-mqtt-password"
            width={WIDTH}
            isConfigured={!!secureFields.mqttPassword}
            value={secureData.mqttPassword ?? ''}
            placeholder="Optional"
            onReset={resetSecret('mqttPassword')}
            onChange={setSecret('mqttPassword')}
          />
        </Field>
        <TlsFields
          idPrefix="fl-mqtt"
          peer="broker"
          width={WIDTH}
          toggles={{
            skipVerify: !!mqtt.tlsSkipVerify,
            withCACert: !!mqtt.tlsWithCACert,
            auth: !!mqtt.tlsAuth,
            onSkipVerify: (tlsSkipVerify) => setMqtt({ tlsSkipVerify }),
            onWithCACert: (tlsWithCACert) => setMqtt({ tlsWithCACert }),
            onAuth: (tlsAuth) => setMqtt({ tlsAuth }),
          }}
          serverName={mqtt.tlsServerName}
          onServerName={(tlsServerName) => setMqtt({ tlsServerName })}
          ca={pemSecret('tlsCACert')}
          clientCert={pemSecret('tlsClientCert')}
          clientKey={pemSecret('tlsClientKey')}
        />
      </ConfigSection>
      <Divider />

      <ConfigSection
        title="Live"
        description="Live queries show their history, then keep moving: builder SQL queries follow PostgreSQL (LISTEN/NOTIFY on fieldline_readings, one connection per data source), MQTT queries follow the broker (one client per data source)."
      >
        <Field
          label="Seam delay"
          description="How far behind now the history ends and the live tail begins; rows arriving later than this are shown on the next refresh."
          invalid={!!seamError}
          error={seamError}
        >
          <Input
            id="fl-live-seam"
            width={WIDTH / 2}
            placeholder="5s"
            value={jsonData.liveSeamDelay ?? ''}
            onChange={text((liveSeamDelay) => setJson({ liveSeamDelay }))}
          />
        </Field>
        <Field
          label="Frame interval"
          description="Under load, at most one frame per stream per interval, and the broker and database connections are read once per interval; the first reading after a quiet spell goes out at once."
          invalid={!!frameError}
          error={frameError}
        >
          <Input
            id="fl-live-frame"
            width={WIDTH / 2}
            placeholder="100ms"
            value={jsonData.liveFrameInterval ?? ''}
            onChange={text((liveFrameInterval) => setJson({ liveFrameInterval }))}
          />
        </Field>
        <Field
          label="Max buffered rows"
          description="Rows one stream may hold between two frames; beyond, the oldest are dropped and the panel says so. Default 50 000."
        >
          <Input
            id="fl-live-maxrows"
            type="number"
            width={WIDTH / 3}
            placeholder="50000"
            value={jsonData.liveMaxBufferedRows ?? ''}
            onChange={text((v) => setJson({ liveMaxBufferedRows: v === '' ? undefined : Math.round(Number(v)) }))}
          />
        </Field>
        <Field label="MQTT QoS" description="QoS of the live MQTT subscriptions.">
          <RadioButtonGroup<0 | 1 | 2>
            id="fl-live-qos"
            options={QOS_OPTIONS}
            value={mqtt.qos ?? 1}
            onChange={(qos) => setMqtt({ qos })}
          />
        </Field>
        {!pg.host && !mqtt.url && (
          <Alert severity="warning" title="Nothing to follow">
            Live queries need PostgreSQL (builder SQL) or an MQTT broker (MQTT queries) above.
          </Alert>
        )}
      </ConfigSection>
      <Divider />

      <ConfigSection
        title="What Viewers may do"
        description="Anyone who may query this data source can write code SQL and Flux and choose MQTT topics. These bounds keep one Viewer from hurting others, the ingester or the hosts."
      >
        <Field
          label="Statement timeout"
          description="How long one query may run on its database, e.g. 30s (default) or 2m."
          invalid={!!timeoutError}
          error={timeoutError}
        >
          <Input
            id="fl-statement-timeout"
            width={WIDTH / 3}
            placeholder="30s"
            value={jsonData.statementTimeout ?? ''}
            onChange={text((v) => setJson({ statementTimeout: v || undefined }))}
          />
        </Field>
        <Field
          label="Row limit"
          description="Rows one query may return; the panel says when it was cut. Default 1 000 000."
        >
          <Input
            id="fl-row-limit"
            type="number"
            width={WIDTH / 3}
            placeholder="1000000"
            value={jsonData.rowLimit ?? ''}
            onChange={text((v) => setJson({ rowLimit: v === '' ? undefined : Math.round(Number(v)) }))}
          />
        </Field>
        <Field
          label="Max response size (MiB)"
          description="What one code query (SQL or Flux) may read from its database; larger answers fail with an error that says so. Default 16."
        >
          <Input
            id="fl-max-response"
            type="number"
            width={WIDTH / 3}
            placeholder="16"
            value={jsonData.maxResponseBytes ? jsonData.maxResponseBytes / MIB : ''}
            onChange={text((v) => setJson({ maxResponseBytes: v === '' ? undefined : Math.round(Number(v) * MIB) }))}
          />
        </Field>
        <Field
          label="Max in flight (MiB)"
          description="What all code queries of this data source may hold at once; more wait their turn. Default 64."
        >
          <Input
            id="fl-max-inflight"
            type="number"
            width={WIDTH / 3}
            placeholder="64"
            value={jsonData.maxBytesInFlight ? jsonData.maxBytesInFlight / MIB : ''}
            onChange={text((v) => setJson({ maxBytesInFlight: v === '' ? undefined : Math.round(Number(v) * MIB) }))}
          />
        </Field>
        <Field
          label="Restrict code Flux"
          description="Refuse imports that reach outside InfluxDB (http, sql, csv, socket, …) and from/to with host:. Use a read-only token scoped to the bucket as well."
        >
          <Switch
            id="fl-restrict-flux"
            value={influx.restrictFlux ?? true}
            onChange={(e) => setInflux({ restrictFlux: e.currentTarget.checked })}
          />
        </Field>
        <Field label="Allow $SYS topics" description="Let Viewers subscribe to the broker's statistics topics.">
          <Switch
            id="fl-allow-sys"
            value={mqtt.allowSysTopics ?? false}
            onChange={(e) => setMqtt({ allowSysTopics: e.currentTarget.checked })}
          />
        </Field>
        <Field
          label="Allowed topic prefixes"
          description="Comma-separated, e.g. pico/, iiot/ — when set, live MQTT queries and topic lists stay under these. $share/... and $-topics are always refused."
        >
          <Input
            id="fl-topic-prefixes"
            width={WIDTH}
            placeholder="any topic"
            value={(mqtt.topicPrefixes ?? []).join(', ')}
            onChange={text((v) => {
              const topicPrefixes = v
                .split(',')
                .map((p) => p.trim())
                .filter((p) => p !== '');
              setMqtt({ topicPrefixes: topicPrefixes.length ? topicPrefixes : undefined });
            })}
          />
        </Field>
      </ConfigSection>
      <Divider />

      <Alert severity="info" title="Check the connections">
        Click <strong>Save &amp; test</strong> below: it saves these settings and checks each configured connection
        (PostgreSQL, InfluxDB, MQTT) with a short timeout, reporting each one separately.
      </Alert>
    </div>
  );
}

const getStyles = (theme: GrafanaTheme2) => ({
  root: css({
    maxWidth: theme.spacing(100),
  }),
});
