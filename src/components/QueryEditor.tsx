import { css } from '@emotion/css';
import React, { ChangeEvent, useEffect, useMemo, useState } from 'react';

import { GrafanaTheme2, QueryEditorProps, SelectableValue } from '@grafana/data';
import {
  Alert,
  Collapse,
  InlineField,
  InlineFieldRow,
  InlineSwitch,
  Input,
  RadioButtonGroup,
  Select,
  useStyles2,
} from '@grafana/ui';

import { SQL_MACROS } from '../completion';
import { QUERY_DEFAULTS, QUERY_VALUES } from '../contract.gen';
import { DataSource, QueryPreview, resourceError } from '../datasource';
import { aggregationOf, liveStreams, topicFromSelector } from '../preview';
import {
  Aggregation,
  FillMode,
  JsonTimeFormat,
  FieldlineOptions,
  FieldlineQuery,
  PayloadFormat,
  QueryMode,
  QuerySource,
  ResultFormat,
} from '../types';
import { CodeQueryEditor } from './CodeQueryEditor';
import { NamePicker } from './NamePicker';

export type Props = QueryEditorProps<DataSource, FieldlineQuery, FieldlineOptions>;

type Text = { label: string; description?: string };

/** Options in the backend's order (src/contract.gen.ts); each Record must name every value, or tsc fails. */
function optionsOf<T extends string>(values: readonly T[], text: Record<T, Text>): Array<SelectableValue<T>> {
  return values.map((value) => ({ value, ...text[value] }));
}

const SOURCES = optionsOf<QuerySource>(QUERY_VALUES.source, {
  sql: { label: 'SQL', description: 'PostgreSQL / TimescaleDB' },
  flux: { label: 'Flux', description: 'InfluxDB' },
  influxql: { label: 'InfluxQL', description: 'InfluxDB 1.x query language (v1 API; InfluxDB 2.x and 3 too)' },
  mqtt: { label: 'MQTT', description: 'Broker, live only' },
});

const MODES = optionsOf<QueryMode>(QUERY_VALUES.mode, {
  builder: { label: 'Builder' },
  code: { label: 'Code' },
  states: {
    label: 'States',
    description: 'Text and on/off values (device status, relays, doors, versions): each series’ state changes',
  },
});
/** States live in PostgreSQL: other sources offer builder and code. */
const modesFor = (source: QuerySource) => (source === 'sql' ? MODES : MODES.filter((m) => m.value !== 'states'));

const AGGREGATIONS = optionsOf<Aggregation>(QUERY_VALUES.aggregation, {
  none: { label: 'none (raw)', description: 'Every reading (live: each reading as it arrives)' },
  avg: { label: 'avg' },
  min: { label: 'min' },
  max: { label: 'max' },
  last: { label: 'last' },
  count: { label: 'count' },
  sum: { label: 'sum' },
});

const FILLS = optionsOf<FillMode>(QUERY_VALUES.fill, {
  none: { label: 'none', description: 'Only buckets that have readings' },
  null: { label: 'null', description: 'Every bucket; empty ones null (gaps in the line)' },
  previous: { label: 'previous', description: 'Every bucket; empty ones repeat the last value' },
  zero: { label: 'zero', description: 'Every bucket; empty ones 0' },
});

const FORMATS = optionsOf<ResultFormat>(QUERY_VALUES.format, {
  time_series: { label: 'Time series' },
  table: { label: 'Table' },
});

const PAYLOADS = optionsOf<PayloadFormat>(QUERY_VALUES.payloadFormat, {
  value: { label: 'Value', description: 'ASCII number, e.g. "22.4"' },
  json: { label: 'JSON', description: 'Numeric fields, each a metric' },
  influx: { label: 'Influx', description: 'Line protocol' },
});

const JSON_TIME_FORMATS = optionsOf<JsonTimeFormat>(QUERY_VALUES.jsonTimeFormat, {
  auto: { label: 'auto', description: 'RFC 3339 text, or a number whose size tells s/ms/µs/ns' },
  unix: { label: 'unix s' },
  unix_ms: { label: 'unix ms' },
  unix_us: { label: 'unix µs' },
  unix_ns: { label: 'unix ns' },
  rfc3339: { label: 'RFC 3339' },
});

/** How long the editor waits after the last change before asking the backend for the preview. */
export const PREVIEW_DEBOUNCE_MS = 250;

const LABEL = 12;
const LIVE_LABEL = 8;

export function QueryEditor(props: Props) {
  const { datasource, onChange, onRunQuery, range } = props;
  // a saved query's absent fields are what the backend makes of them (src/contract.gen.ts), not a new query's
  const query: FieldlineQuery = { ...QUERY_DEFAULTS, ...props.query } as FieldlineQuery;
  const styles = useStyles2(getStyles);
  const [macrosOpen, setMacrosOpen] = useState(false);
  const variables = useMemo(() => datasource.getVariableOptions(), [datasource]);

  const update = (patch: Partial<FieldlineQuery>, run = true) => {
    onChange({ ...query, ...patch });
    if (run) {
      onRunQuery();
    }
  };

  // the builder over text and on/off values (PostgreSQL's states table)
  const states = query.source === 'sql' && query.mode === 'states';

  const onSource = (source: QuerySource) => {
    const patch: Partial<FieldlineQuery> = { source };
    if (source !== 'sql' && query.mode === 'states') {
      patch.mode = 'builder'; // states are in PostgreSQL only
    }
    // keep what we can: an MQTT topic filter from the builder's selector
    if (source === 'mqtt' && !query.topic && query.metric) {
      patch.topic = topicFromSelector(query);
    }
    update(patch);
  };

  const onMode = async (mode: QueryMode) => {
    const patch: Partial<FieldlineQuery> = { mode };
    // keep what we can: seed the code with what the builder ran, written by the backend (the /preview resource's
    // code); metric/device/sensor stay in the model
    const empty = query.source === 'flux' ? !query.flux?.trim() : !query.rawSql?.trim();
    if (mode === 'code' && query.metric && query.source !== 'mqtt' && empty) {
      try {
        const p = await datasource.preview({ ...query, mode: query.mode === 'states' ? 'states' : 'builder' }, range);
        if (p.code) {
          patch[query.source === 'flux' ? 'flux' : 'rawSql'] = p.code;
        }
      } catch (err) {
        setPreview({ error: `Could not seed the code from the builder: ${resourceError(err)}` });
      }
    }
    update(patch);
  };

  // The preview is what the backend will run, built by the backend: asked again (debounced) when the query or
  // the panel's range changes.
  const [preview, setPreview] = useState<Partial<QueryPreview> & { error?: string }>({});
  const previewKey =
    (query.mode === 'builder' || states) && (query.source === 'sql' || query.source === 'flux') && query.metric
      ? JSON.stringify([
          query.mode,
          query.state,
          query.source,
          query.metric,
          query.device,
          query.sensor,
          query.aggregation,
          query.interval,
          query.live,
          query.format,
          range?.from.valueOf(),
          range?.to.valueOf(),
        ])
      : '';
  useEffect(() => {
    if (previewKey === '') {
      setPreview({});
      return;
    }
    let cancelled = false;
    const timer = setTimeout(() => {
      datasource
        .preview(query, range)
        .then((p) => !cancelled && setPreview(p))
        .catch((err) => !cancelled && setPreview({ error: resourceError(err) }));
    }, PREVIEW_DEBOUNCE_MS);
    return () => {
      cancelled = true;
      clearTimeout(timer);
    };
    // previewKey holds every input of the preview
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [previewKey, datasource]);

  return (
    <div className={styles.root} data-testid="fieldline-query-editor">
      <InlineFieldRow>
        <InlineField label="Source" labelWidth={LABEL}>
          <RadioButtonGroup<QuerySource> options={SOURCES} value={query.source} onChange={onSource} size="sm" />
        </InlineField>
        {(query.source === 'sql' || query.source === 'flux') && (
          <InlineField label="Mode" labelWidth={8}>
            <RadioButtonGroup<QueryMode>
              options={modesFor(query.source)}
              value={query.mode}
              onChange={onMode}
              size="sm"
            />
          </InlineField>
        )}
        {query.source !== 'mqtt' && (
          <InlineField label="Format" labelWidth={8}>
            <Select<ResultFormat>
              inputId="fl-format"
              width={16}
              options={FORMATS}
              value={query.format ?? 'time_series'}
              onChange={(v) => update({ format: v.value })}
            />
          </InlineField>
        )}
      </InlineFieldRow>

      {(((query.source === 'sql' || query.source === 'flux') && query.mode === 'builder') || states) && (
        <>
          <InlineFieldRow>
            <InlineField label="Metric" labelWidth={LABEL} tooltip="Measurement, e.g. temperature">
              <NamePicker
                inputId="fl-metric"
                width={26}
                value={query.metric}
                placeholder="Choose a metric"
                variables={variables}
                load={() =>
                  datasource.getMetrics({
                    device: query.device,
                    sensor: query.sensor,
                    source: query.source,
                    mode: query.mode,
                  })
                }
                onChange={(metric) => update({ metric })}
              />
            </InlineField>
            <InlineField label="Device" labelWidth={8} tooltip="One device, a,b, or a multi-value variable">
              <NamePicker
                inputId="fl-device"
                width={26}
                value={query.device}
                placeholder="All devices"
                variables={variables}
                load={() =>
                  datasource.getDevices({
                    metric: query.metric,
                    sensor: query.sensor,
                    source: query.source,
                    mode: query.mode,
                  })
                }
                onChange={(device) => update({ device })}
              />
            </InlineField>
            <InlineField label="Sensor" labelWidth={8}>
              <NamePicker
                inputId="fl-sensor"
                width={26}
                value={query.sensor}
                placeholder="All sensors"
                variables={variables}
                load={() =>
                  datasource.getSensors({
                    device: query.device,
                    metric: query.metric,
                    source: query.source,
                    mode: query.mode,
                  })
                }
                onChange={(sensor) => update({ sensor })}
              />
            </InlineField>
          </InlineFieldRow>
          <InlineFieldRow>
            {states ? (
              <InlineField
                label="Only changes to"
                labelWidth={16}
                tooltip="Keep only the changes to this value, e.g. offline (for an annotation). Empty: every change"
              >
                <Input
                  id="fl-state"
                  width={20}
                  placeholder="every change"
                  defaultValue={query.state ?? ''}
                  onBlur={(e: ChangeEvent<HTMLInputElement>) => {
                    if (e.currentTarget.value !== (query.state ?? '')) {
                      update({ state: e.currentTarget.value });
                    }
                  }}
                />
              </InlineField>
            ) : (
              <>
                <InlineField label="Aggregation" labelWidth={LABEL}>
                  <Select<Aggregation>
                    inputId="fl-aggregation"
                    width={12}
                    options={AGGREGATIONS}
                    value={aggregationOf(query)}
                    onChange={(v) => update({ aggregation: v.value })}
                  />
                </InlineField>
                <InlineField label="Interval" labelWidth={10} tooltip="Bucket width, e.g. 1m. Empty: $__interval">
                  <Input
                    id="fl-interval"
                    width={12}
                    placeholder="$__interval"
                    defaultValue={query.interval ?? ''}
                    onBlur={(e: ChangeEvent<HTMLInputElement>) => {
                      if (e.currentTarget.value !== (query.interval ?? '')) {
                        update({ interval: e.currentTarget.value });
                      }
                    }}
                  />
                </InlineField>
                {aggregationOf(query) !== 'none' && (
                  <InlineField label="Fill" labelWidth={6} tooltip="What empty buckets become">
                    <Select<FillMode>
                      inputId="fl-fill"
                      width={12}
                      options={FILLS}
                      value={query.fill ?? 'none'}
                      onChange={(v) => update({ fill: v.value })}
                    />
                  </InlineField>
                )}
              </>
            )}
            <InlineField
              label="Live"
              labelWidth={LIVE_LABEL}
              tooltip="History for the range, then new readings pushed over Grafana Live"
            >
              <InlineSwitch
                id="fl-live"
                value={!!query.live}
                onChange={(e) => update({ live: e.currentTarget.checked })}
              />
            </InlineField>
          </InlineFieldRow>
          {query.live && !liveStreams(query) && (
            <Alert severity="info" title="History only">
              {query.source === 'flux'
                ? 'The live tail follows PostgreSQL (SQL source); a Flux query shows the history for the range.'
                : 'The table format shows the history for the range; choose Time series for a live tail.'}
            </Alert>
          )}
          <div className={styles.preview}>
            <div className={styles.previewTitle}>
              {query.source === 'flux' ? 'Flux' : 'SQL'} the backend runs for this panel
              {preview.params?.length ? ' (values are bound as parameters)' : ''}
            </div>
            {preview.error ? (
              <Alert severity="warning" title="No preview" data-testid="fieldline-preview-error">
                {preview.error}
              </Alert>
            ) : (
              <pre data-testid="fieldline-preview" className={styles.pre}>
                {[
                  preview.text ?? (query.metric ? '' : 'Choose a metric'),
                  ...(preview.params?.length ? ['-- ' + preview.params.join(', ')] : []),
                  ...(preview.notes ?? []).map((n) => '-- ' + n),
                ].join('\n')}
              </pre>
            )}
          </div>
        </>
      )}

      {query.source === 'sql' && query.mode === 'code' && (
        <>
          <CodeQueryEditor
            source="sql"
            id="fl-rawsql"
            label="SQL query"
            value={query.rawSql ?? ''}
            datasource={datasource}
            onChange={(rawSql) => update({ rawSql }, false)}
            onBlur={(rawSql) => update({ rawSql })}
          />
          <InlineFieldRow>
            <InlineField
              label="Live"
              labelWidth={LIVE_LABEL}
              tooltip="History for the range, then new readings pushed over Grafana Live"
            >
              <InlineSwitch
                id="fl-live-code"
                value={!!query.live}
                onChange={(e) => update({ live: e.currentTarget.checked })}
              />
            </InlineField>
          </InlineFieldRow>
          {query.live && (
            <Alert severity="info" title="Code SQL is not streamed">
              Code SQL queries show the history for the range (refresh to update). For a live tail, use a builder query
              (raw or aggregated) or an MQTT query.
            </Alert>
          )}
          <div className={styles.help}>
            Ctrl+Space (or typing $__) completes macros and metric, device and sensor names.
          </div>
          <Collapse label="Macros" collapsible isOpen={macrosOpen} onToggle={() => setMacrosOpen(!macrosOpen)}>
            <table className={styles.macros}>
              <tbody>
                {SQL_MACROS.map((m) => (
                  <tr key={m.name}>
                    <td>
                      <code>{m.signature}</code>
                    </td>
                    <td>{m.documentation}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </Collapse>
        </>
      )}

      {query.source === 'influxql' && (
        <>
          <CodeQueryEditor
            source="influxql"
            id="fl-influxql"
            label="InfluxQL query"
            value={query.influxql ?? ''}
            datasource={datasource}
            onChange={(influxql) => update({ influxql }, false)}
            onBlur={(influxql) => update({ influxql })}
          />
          <div className={styles.help}>
            Read statements only (SELECT, SHOW). Available: <code>$timeFilter</code>, <code>$__interval</code>,{' '}
            <code>$__interval_ms</code>, <code>$__timeFrom</code>, <code>$__timeTo</code> and dashboard variables. The
            database is the configured bucket (db or db/rp).
          </div>
        </>
      )}

      {query.source === 'flux' && query.mode === 'code' && (
        <>
          <CodeQueryEditor
            source="flux"
            id="fl-flux"
            label="Flux query"
            value={query.flux ?? ''}
            datasource={datasource}
            onChange={(flux) => update({ flux }, false)}
            onBlur={(flux) => update({ flux })}
          />
          <div className={styles.help}>
            Available: <code>v.timeRangeStart</code>, <code>v.timeRangeStop</code>, <code>v.windowPeriod</code>,{' '}
            <code>v.bucket</code> (the configured bucket). Ctrl+Space completes them and metric, device and sensor
            names.
          </div>
        </>
      )}

      {query.source === 'mqtt' && (
        <>
          <InlineFieldRow>
            <InlineField
              label="Topic"
              labelWidth={LABEL}
              tooltip="Topic filter; + and # wildcards give one series per topic"
            >
              <NamePicker
                inputId="fl-topic"
                width={40}
                value={query.topic}
                placeholder="pico/temperature/#"
                variables={variables}
                load={() => datasource.getTopics()}
                onChange={(topic) => update({ topic })}
              />
            </InlineField>
          </InlineFieldRow>
          <InlineFieldRow>
            <InlineField label="Payload" labelWidth={LABEL}>
              <RadioButtonGroup<PayloadFormat>
                options={PAYLOADS}
                value={query.payloadFormat ?? 'value'}
                onChange={(payloadFormat) => update({ payloadFormat })}
                size="sm"
              />
            </InlineField>
            <InlineField
              label="Template"
              labelWidth={10}
              tooltip="Labels from the topic, e.g. {device}/{metric}/{sensor}"
            >
              <Input
                id="fl-template"
                width={32}
                defaultValue={query.template ?? ''}
                placeholder="{device}/{metric}/{sensor}"
                onBlur={(e: ChangeEvent<HTMLInputElement>) => update({ template: e.currentTarget.value })}
              />
            </InlineField>
          </InlineFieldRow>
          {query.payloadFormat === 'json' && (
            <InlineFieldRow>
              <InlineField
                label="JSON fields"
                labelWidth={LABEL}
                tooltip="Dotted paths to read, comma-separated (e.g. temp, env.hum); each is a series named by its path. Empty: every numeric field."
              >
                <Input
                  id="fl-json-fields"
                  width={32}
                  defaultValue={query.jsonFields ?? ''}
                  placeholder="every numeric field"
                  onBlur={(e: ChangeEvent<HTMLInputElement>) => update({ jsonFields: e.currentTarget.value })}
                />
              </InlineField>
              <InlineField
                label="Time field"
                labelWidth={10}
                tooltip="Dotted path of the payload's time; not a series. Empty: the time the message arrived."
              >
                <Input
                  id="fl-json-time"
                  width={16}
                  defaultValue={query.jsonTimeField ?? ''}
                  placeholder="receive time"
                  onBlur={(e: ChangeEvent<HTMLInputElement>) => update({ jsonTimeField: e.currentTarget.value })}
                />
              </InlineField>
              <InlineField label="Format" labelWidth={8}>
                <Select<JsonTimeFormat>
                  inputId="fl-json-time-format"
                  width={14}
                  options={JSON_TIME_FORMATS}
                  value={query.jsonTimeFormat ?? QUERY_DEFAULTS.jsonTimeFormat}
                  onChange={(v) => update({ jsonTimeFormat: v.value })}
                />
              </InlineField>
            </InlineFieldRow>
          )}
          <div className={styles.help}>
            MQTT queries are live only: they show messages from the moment the panel subscribes.
          </div>
        </>
      )}
    </div>
  );
}

const getStyles = (theme: GrafanaTheme2) => ({
  root: css({
    display: 'flex',
    flexDirection: 'column',
    gap: theme.spacing(0.5),
  }),
  preview: css({
    marginTop: theme.spacing(0.5),
  }),
  previewTitle: css({
    color: theme.colors.text.secondary,
    fontSize: theme.typography.bodySmall.fontSize,
    marginBottom: theme.spacing(0.5),
  }),
  pre: css({
    fontFamily: theme.typography.fontFamilyMonospace,
    fontSize: theme.typography.bodySmall.fontSize,
    margin: 0,
    whiteSpace: 'pre-wrap',
  }),
  help: css({
    color: theme.colors.text.secondary,
    fontSize: theme.typography.bodySmall.fontSize,
  }),
  macros: css({
    td: {
      padding: theme.spacing(0.25, 1),
      verticalAlign: 'top',
    },
  }),
});
