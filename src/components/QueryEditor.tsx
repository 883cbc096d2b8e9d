import { css } from '@emotion/css';
import React, { ChangeEvent, useMemo, useState } from 'react';

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
import { DataSource } from '../datasource';
import {
  aggregationOf,
  buildFluxPreview,
  buildPreview,
  builderToRawSql,
  liveStreams,
  topicFromSelector,
} from '../preview';
import {
  Aggregation,
  FillMode,
  DEFAULT_QUERY,
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

const SOURCES: Array<SelectableValue<QuerySource>> = [
  { label: 'SQL', value: 'sql', description: 'PostgreSQL / TimescaleDB' },
  { label: 'Flux', value: 'flux', description: 'InfluxDB' },
  { label: 'MQTT', value: 'mqtt', description: 'Broker, live only' },
];

const MODES: Array<SelectableValue<QueryMode>> = [
  { label: 'Builder', value: 'builder' },
  { label: 'Code', value: 'code' },
];

const AGGREGATIONS: Array<SelectableValue<Aggregation>> = [
  { label: 'none (raw)', value: 'none', description: 'Every reading (live: each reading as it arrives)' },
  { label: 'avg', value: 'avg' },
  { label: 'min', value: 'min' },
  { label: 'max', value: 'max' },
  { label: 'last', value: 'last' },
  { label: 'count', value: 'count' },
  { label: 'sum', value: 'sum' },
];

const FILLS: Array<SelectableValue<FillMode>> = [
  { label: 'none', value: 'none', description: 'Only buckets that have readings' },
  { label: 'null', value: 'null', description: 'Every bucket; empty ones null (gaps in the line)' },
  { label: 'previous', value: 'previous', description: 'Every bucket; empty ones repeat the last value' },
  { label: 'zero', value: 'zero', description: 'Every bucket; empty ones 0' },
];

const FORMATS: Array<SelectableValue<ResultFormat>> = [
  { label: 'Time series', value: 'time_series' },
  { label: 'Table', value: 'table' },
];

const PAYLOADS: Array<SelectableValue<PayloadFormat>> = [
  { label: 'Value', value: 'value', description: 'ASCII number, e.g. "22.4"' },
  { label: 'JSON', value: 'json', description: 'Numeric fields, each a metric' },
  { label: 'Influx', value: 'influx', description: 'Line protocol' },
];

const LABEL = 12;
const LIVE_LABEL = 8;

export function QueryEditor(props: Props) {
  const { datasource, onChange, onRunQuery } = props;
  const query: FieldlineQuery = { ...DEFAULT_QUERY, ...props.query } as FieldlineQuery;
  const styles = useStyles2(getStyles);
  const [macrosOpen, setMacrosOpen] = useState(false);
  const variables = useMemo(() => datasource.getVariableOptions(), [datasource]);

  const update = (patch: Partial<FieldlineQuery>, run = true) => {
    onChange({ ...query, ...patch });
    if (run) {
      onRunQuery();
    }
  };

  const onSource = (source: QuerySource) => {
    const patch: Partial<FieldlineQuery> = { source };
    // keep what we can: an MQTT topic filter from the builder's selector
    if (source === 'mqtt' && !query.topic && query.metric) {
      patch.topic = topicFromSelector(query);
    }
    update(patch);
  };

  const onMode = (mode: QueryMode) => {
    const patch: Partial<FieldlineQuery> = { mode };
    // keep what we can: seed the code with the builder's query; metric/device/sensor stay in the model
    if (mode === 'code' && query.metric) {
      if (query.source === 'sql' && !query.rawSql?.trim()) {
        patch.rawSql = builderToRawSql(query);
      }
      if (query.source === 'flux' && !query.flux?.trim()) {
        patch.flux = buildFluxPreview(query);
      }
    }
    update(patch);
  };

  const preview = query.mode === 'builder' ? buildPreview(query) : '';

  return (
    <div className={styles.root} data-testid="fieldline-query-editor">
      <InlineFieldRow>
        <InlineField label="Source" labelWidth={LABEL}>
          <RadioButtonGroup<QuerySource> options={SOURCES} value={query.source} onChange={onSource} size="sm" />
        </InlineField>
        {query.source !== 'mqtt' && (
          <InlineField label="Mode" labelWidth={8}>
            <RadioButtonGroup<QueryMode> options={MODES} value={query.mode} onChange={onMode} size="sm" />
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

      {query.source !== 'mqtt' && query.mode === 'builder' && (
        <>
          <InlineFieldRow>
            <InlineField label="Metric" labelWidth={LABEL} tooltip="Measurement, e.g. temperature">
              <NamePicker
                inputId="fl-metric"
                width={26}
                value={query.metric}
                placeholder="Choose a metric"
                variables={variables}
                load={() => datasource.getMetrics({ device: query.device, sensor: query.sensor })}
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
                load={() => datasource.getDevices({ metric: query.metric, sensor: query.sensor })}
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
                load={() => datasource.getSensors({ device: query.device, metric: query.metric })}
                onChange={(sensor) => update({ sensor })}
              />
            </InlineField>
          </InlineFieldRow>
          <InlineFieldRow>
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
              {query.source === 'flux' ? 'Flux' : 'SQL'} preview (values are bound as parameters)
            </div>
            <pre data-testid="fieldline-preview" className={styles.pre}>
              {preview}
            </pre>
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
