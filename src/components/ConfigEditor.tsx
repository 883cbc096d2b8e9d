import { css } from '@emotion/css';
import React, { ChangeEvent, FormEvent } from 'react';

import { DataSourcePluginOptionsEditorProps, GrafanaTheme2, SelectableValue } from '@grafana/data';
import { ConfigSection, DataSourceDescription } from '@grafana/plugin-ui';
import { config } from '@grafana/runtime';
import {
  Alert,
  Divider,
  Field,
  Input,
  RadioButtonGroup,
  SecretInput,
  SecureSocksProxySettings,
  Select,
  Switch,
  useStyles2,
} from '@grafana/ui';

import {
  FieldlineOptions,
  FieldlineSecureJsonData,
  InfluxSettings,
  MqttSettings,
  PostgresSettings,
  SecureKey,
  MqttQoS,
  SslMode,
  TableSettings,
  TimescaleMode,
} from '../types';
import { SETTINGS_DEFAULTS, SETTINGS_VALUES } from '../contract.gen';
import { PemSecret, TlsFields } from './TlsFields';
import { validateDuration, validateHostPort, validateInfluxUrl, validateMqttUrl } from '../validation';

export type Props = DataSourcePluginOptionsEditorProps<FieldlineOptions, FieldlineSecureJsonData>;

type Text = { label: string; description?: string };

/** Options in the backend's order (src/contract.gen.ts); each Record must name every value, or tsc fails. */
function optionsOf<T extends string | number>(values: readonly T[], text: Record<T, Text>): Array<SelectableValue<T>> {
  return values.map((value) => ({ value, ...text[value] }));
}

const SSL_MODES = optionsOf<SslMode>(SETTINGS_VALUES['postgres.sslMode'], {
  disable: { label: 'disable', description: 'No TLS' },
  allow: { label: 'allow', description: 'Plain first, TLS if the server insists; no certificate check' },
  prefer: { label: 'prefer', description: 'TLS when the server offers it; no certificate check' },
  require: { label: 'require', description: 'TLS, no certificate check' },
  'verify-ca': { label: 'verify-ca', description: 'TLS, server certificate signed by a trusted CA' },
  'verify-full': { label: 'verify-full', description: 'TLS, CA and host name checked' },
});

const QOS_OPTIONS = optionsOf<MqttQoS>(SETTINGS_VALUES['mqtt.qos'], {
  0: { label: 'QoS 0', description: 'At most once: least work per message' },
  1: { label: 'QoS 1', description: 'At least once' },
  2: { label: 'QoS 2', description: 'Exactly once: two more packets per message' },
});

const TIMESCALE_OPTIONS = optionsOf<TimescaleMode>(SETTINGS_VALUES['postgres.timescale'], {
  auto: { label: 'auto', description: 'Use TimescaleDB when the extension is installed' },
  on: { label: 'on' },
  off: { label: 'off', description: 'Plain PostgreSQL SQL even where TimescaleDB is installed' },
});

/** The backend's default for an absent setting, as a placeholder. */
const DEFAULT = SETTINGS_DEFAULTS;

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
  const table: TableSettings = pg.table ?? {};
  const setTable = (patch: Partial<TableSettings>) => setPg({ table: { ...table, ...patch } });

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
            placeholder={`Default: ${DEFAULT['postgres.sslMode']} (${DEFAULT['postgres.sslModeLoopback']} on localhost / 127.0.0.1)`}
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
            value={pg.timescale ?? DEFAULT['postgres.timescale']}
            onChange={(timescale) => setPg({ timescale })}
          />
        </Field>
        <Field
          label="Read rollups"
          description="Aggregated builder queries read the rollup tables (kept for every writer since schema 9). Off: always the raw table."
        >
          <Switch
            id="fl-pg-userollup"
            value={pg.useRollup ?? DEFAULT['postgres.useRollup']}
            onChange={(e) => setPg({ useRollup: e.currentTarget.checked })}
          />
        </Field>
        <Field label="Max connections" description="Size of the connection pool.">
          <Input
            id="fl-pg-maxconns"
            type="number"
            width={WIDTH / 3}
            placeholder={String(DEFAULT['postgres.maxConns'])}
            value={pg.maxConns ?? ''}
            onChange={text((v) => setPg({ maxConns: v === '' ? undefined : Math.round(Number(v)) }))}
          />
        </Field>
        <ConfigSection
          title="Your own table"
          description="Read a table you already have instead of Fieldline's readings: name its time and value columns, and its labels as columns or as a topic column split by a template (e.g. readings(ts, topic, value) with {device}/{metric}/{sensor}). Aggregates are computed from the table (no rollups)."
          isCollapsible
          isInitiallyOpen={!!table.name}
        >
          {(
            [
              ['name', 'Table', 'readings or schema.readings'],
              ['timeColumn', 'Time column', 'ts'],
              ['valueColumn', 'Value column', 'value'],
              ['topicColumn', 'Topic column', 'topic'],
              ['topicTemplate', 'Topic template', '{device}/{metric}/{sensor}'],
              ['deviceColumn', 'Device column', 'when not in the topic'],
              ['metricColumn', 'Metric column', 'when not in the topic'],
              ['sensorColumn', 'Sensor column', 'optional'],
              ['metricName', 'Metric name', 'when the table holds one quantity'],
              ['notifyChannel', 'NOTIFY channel', 'new_reading (its payload: row_to_json(NEW))'],
            ] as Array<[keyof TableSettings, string, string]>
          ).map(([key, label, placeholder]) => (
            <Field key={key} label={label}>
              <Input
                id={`fl-pg-table-${key}`}
                width={WIDTH}
                placeholder={placeholder}
                value={table[key] ?? ''}
                onChange={text((v) => setTable({ [key]: v || undefined }))}
              />
            </Field>
          ))}
        </ConfigSection>
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
        <Field
          label="Device tag"
          description="The tag that names a device, for the Flux builder, variables and pickers (your data: e.g. node)."
        >
          <Input
            id="fl-influx-devicetag"
            width={WIDTH / 2}
            value={influx.deviceTag ?? ''}
            placeholder="device"
            onChange={text((v) => setInflux({ deviceTag: v || undefined }))}
          />
        </Field>
        <Field label="Sensor tag" description="The tag that names a sensor; data without one leaves the default.">
          <Input
            id="fl-influx-sensortag"
            width={WIDTH / 2}
            value={influx.sensorTag ?? ''}
            placeholder="sensor"
            onChange={text((v) => setInflux({ sensorTag: v || undefined }))}
          />
        </Field>
        <Field label="Value field" description="The field the Flux builder reads.">
          <Input
            id="fl-influx-valuefield"
            width={WIDTH / 2}
            value={influx.valueField ?? ''}
            placeholder="value"
            onChange={text((v) => setInflux({ valueField: v || undefined }))}
          />
        </Field>
        <Field
          label="Label tags"
          description="Further tags that tell series apart (e.g. location), comma-separated: each becomes a label, and series that differ in them are never merged."
        >
          <Input
            id="fl-influx-labeltags"
            width={WIDTH}
            value={(influx.labelTags ?? []).join(', ')}
            placeholder="none"
            onChange={text((v) => {
              const labelTags = v
                .split(',')
                .map((x) => x.trim())
                .filter((x) => x !== '');
              setInflux({ labelTags: labelTags.length ? labelTags : undefined });
            })}
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
            placeholder={DEFAULT['mqtt.clientIdPrefix']}
            onChange={text((clientIdPrefix) => setMqtt({ clientIdPrefix }))}
          />
        </Field>
        <Field
          label="Fixed client ID"
          description="For brokers that admit known client ids only: the plugin then keeps one connection with exactly this id (it wins over the prefix), and the health check reuses it. Two Grafana servers with the same fixed id would take turns."
        >
          <Input
            id="fl-mqtt-fixed-clientid"
            width={WIDTH}
            value={mqtt.clientId ?? ''}
            placeholder="Optional"
            onChange={text((v) => setMqtt({ clientId: v || undefined }))}
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
            placeholder={DEFAULT.liveSeamDelay}
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
            placeholder={DEFAULT.liveFrameInterval}
            value={jsonData.liveFrameInterval ?? ''}
            onChange={text((liveFrameInterval) => setJson({ liveFrameInterval }))}
          />
        </Field>
        <Field
          label="Max buffered rows"
          description="Rows one stream may hold between two frames; beyond, the oldest are dropped and the panel says so."
        >
          <Input
            id="fl-live-maxrows"
            type="number"
            width={WIDTH / 3}
            placeholder={String(DEFAULT.liveMaxBufferedRows)}
            value={jsonData.liveMaxBufferedRows ?? ''}
            onChange={text((v) => setJson({ liveMaxBufferedRows: v === '' ? undefined : Math.round(Number(v)) }))}
          />
        </Field>
        <Field label="MQTT QoS" description="QoS of the live MQTT subscriptions.">
          <RadioButtonGroup<0 | 1 | 2>
            id="fl-live-qos"
            options={QOS_OPTIONS}
            value={mqtt.qos ?? DEFAULT['mqtt.qos']}
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
          description="How long one query may run on its database, e.g. 30s or 2m."
          invalid={!!timeoutError}
          error={timeoutError}
        >
          <Input
            id="fl-statement-timeout"
            width={WIDTH / 3}
            placeholder={DEFAULT.statementTimeout}
            value={jsonData.statementTimeout ?? ''}
            onChange={text((v) => setJson({ statementTimeout: v || undefined }))}
          />
        </Field>
        <Field label="Row limit" description="Rows one query may return; the panel says when it was cut.">
          <Input
            id="fl-row-limit"
            type="number"
            width={WIDTH / 3}
            placeholder={String(DEFAULT.rowLimit)}
            value={jsonData.rowLimit ?? ''}
            onChange={text((v) => setJson({ rowLimit: v === '' ? undefined : Math.round(Number(v)) }))}
          />
        </Field>
        <Field
          label="Max response size (MiB)"
          description="What one code query (SQL or Flux) may read from its database; larger answers fail with an error that says so."
        >
          <Input
            id="fl-max-response"
            type="number"
            width={WIDTH / 3}
            placeholder={String(DEFAULT.maxResponseBytes / MIB)}
            value={jsonData.maxResponseBytes ? jsonData.maxResponseBytes / MIB : ''}
            onChange={text((v) => setJson({ maxResponseBytes: v === '' ? undefined : Math.round(Number(v) * MIB) }))}
          />
        </Field>
        <Field
          label="Max in flight (MiB)"
          description="What all code queries of this data source may hold at once; more wait their turn."
        >
          <Input
            id="fl-max-inflight"
            type="number"
            width={WIDTH / 3}
            placeholder={String(DEFAULT.maxBytesInFlight / MIB)}
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
            value={influx.restrictFlux ?? DEFAULT['influx.restrictFlux']}
            onChange={(e) => setInflux({ restrictFlux: e.currentTarget.checked })}
          />
        </Field>
        <Field label="Allow $SYS topics" description="Let Viewers subscribe to the broker's statistics topics.">
          <Switch
            id="fl-allow-sys"
            value={mqtt.allowSysTopics ?? DEFAULT['mqtt.allowSysTopics']}
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

      {config.secureSocksDSProxyEnabled && (
        <>
          <ConfigSection
            title="Private Data source Connect"
            description="PostgreSQL, InfluxDB and the broker (tcp:// or ssl://) are reached through Grafana's secure SOCKS proxy, which resolves their names in the private network."
          >
            <SecureSocksProxySettings options={options} onOptionsChange={onOptionsChange} />
          </ConfigSection>
          <Divider />
        </>
      )}

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
